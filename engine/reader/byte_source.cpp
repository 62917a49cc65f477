#include "reader/byte_source.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <sys/stat.h>

#include "core/error.h"

namespace ignite {
namespace reader {

namespace {

// The Python reader's messages (python-zstandard, CPython's zlib module, _FrameStream), so a
// damaged file reads the same whichever reader met it.
std::string os_error(int err) { return "[Errno " + std::to_string(err) + "] " + std::strerror(err); }

}  // namespace

// Decodes the bytes of one frame at a time, like one Python decompressobj: decode() takes
// input until the frame ends or the input is used up, writing all it can output into `out`
// from `used` on (growing it; `out` is a buffer, its size is not the data's). On error it throws
// DecodeError with the Python message; the caller drops that call's output, as Python raises
// without returning it.
class ByteSource::Decoder {
 public:
  struct DecodeError {
    std::string message;
  };
  virtual ~Decoder() = default;
  // Returns true when the frame ended; `in` keeps the bytes after it, `used` grows.
  virtual bool decode(std::string_view& in, std::string& out, std::size_t& used) = 0;
  virtual void reset() = 0;
  virtual const char* name() const = 0;

 protected:
  // Room for at least `want` bytes after `used` in `out`, kept between chunks so it is
  // allocated (and zero-filled) once; returns the room there is.
  static std::size_t grow(std::string& out, std::size_t used, std::size_t want) {
    if (out.size() < used + want) out.resize(std::max(used + want, out.size() * 2));
    return out.size() - used;
  }
};

namespace {

class ZstdDecoder : public ByteSource::Decoder {
 public:
  ZstdDecoder() : dctx_(ZSTD_createDCtx()) {
    if (!dctx_) throw Error("zstd: out of memory");
  }
  bool decode(std::string_view& in, std::string& out, std::size_t& used) override {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    for (;;) {
      const std::size_t room = grow(out, used, ZSTD_DStreamOutSize());
      ZSTD_outBuffer output{&out[used], room, 0};
      const std::size_t r = ZSTD_decompressStream(dctx_.get(), &output, &input);
      if (ZSTD_isError(r)) throw DecodeError{std::string("zstd decompressor error: ") + ZSTD_getErrorName(r)};
      used += output.pos;
      if (r == 0 || (input.pos == input.size && output.pos < output.size)) {
        in.remove_prefix(input.pos);
        return r == 0;
      }
    }
  }
  void reset() override { ZSTD_DCtx_reset(dctx_.get(), ZSTD_reset_session_only); }
  const char* name() const override { return "zstd"; }

 private:
  struct Free {
    void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
  };
  std::unique_ptr<ZSTD_DCtx, Free> dctx_;
};

class GzipDecoder : public ByteSource::Decoder {
 public:
  GzipDecoder() {
    if (inflateInit2(&zs_, 31) != Z_OK) throw Error("zlib: inflateInit2 failed");
  }
  ~GzipDecoder() override { inflateEnd(&zs_); }
  GzipDecoder(const GzipDecoder&) = delete;
  GzipDecoder& operator=(const GzipDecoder&) = delete;

  bool decode(std::string_view& in, std::string& out, std::size_t& used) override {
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    int err = Z_OK;
    do {
      const auto room = static_cast<uInt>(std::min<std::size_t>(grow(out, used, 1 << 16), 1u << 30));
      zs_.next_out = reinterpret_cast<Bytef*>(&out[used]);
      zs_.avail_out = room;
      err = inflate(&zs_, Z_SYNC_FLUSH);
      used += room - zs_.avail_out;
      if (err != Z_OK && err != Z_BUF_ERROR && err != Z_STREAM_END) throw DecodeError{message(err)};
    } while (err != Z_STREAM_END && zs_.avail_out == 0);
    in.remove_prefix(in.size() - zs_.avail_in);
    return err == Z_STREAM_END;
  }
  void reset() override { inflateReset(&zs_); }
  const char* name() const override { return "gzip"; }

 private:
  std::string message(int err) const {
    const char* detail = zs_.msg;
    if (!detail && err == Z_BUF_ERROR) detail = "incomplete or truncated stream";
    if (!detail && err == Z_STREAM_ERROR) detail = "inconsistent stream state";
    if (!detail && err == Z_DATA_ERROR) detail = "invalid input data";
    std::string text = "Error " + std::to_string(err) + " while decompressing data";
    return detail ? text + ": " + detail : text;
  }
  z_stream zs_{};
};

}  // namespace

ByteSource::ByteSource(const std::string& path, Compression compression, std::size_t read_chunk)
    : file_(std::fopen(path.c_str(), "rb")), read_chunk_(read_chunk ? read_chunk : 1) {
  if (!file_) {
    const int err = errno;
    if (err == ENOENT) throw NotFound(path + ": no such file");
    throw IoError(path + ": " + os_error(err));
  }
  if (compression == Compression::kZstd) decoder_ = std::make_unique<ZstdDecoder>();
  if (compression == Compression::kGzip) decoder_ = std::make_unique<GzipDecoder>();
  // The first buffer fits the file (one byte more, to see its end): a chunk-sized buffer per
  // file (1 MiB, mapped and faulted in) cost ~30 µs, the whole cost of reading a one-record
  // file. read_input() grows it for a file that is larger than it said.
  std::size_t first = read_chunk_;
  struct stat st {};
  if (::fstat(::fileno(file_.get()), &st) == 0 && S_ISREG(st.st_mode)) {
    first = std::min(read_chunk_, static_cast<std::size_t>(st.st_size) + 1);
  }
  in_.resize(first + kPadding);
}

void ByteSource::pad_chunk(std::size_t used) {
  if (out_.size() < used + kPadding) out_.resize(used + kPadding);
  std::memset(&out_[used], 0, kPadding);
}

ByteSource::~ByteSource() = default;

std::size_t ByteSource::read_input() {
  std::size_t got = 0;
  while (got < read_chunk_) {
    if (got + kPadding == in_.size()) in_.resize(std::min(read_chunk_, 2 * got) + kPadding);
    const std::size_t n = std::fread(&in_[got], 1, in_.size() - kPadding - got, file_.get());
    got += n;
    if (n == 0) {
      if (std::ferror(file_.get())) damage_ = os_error(errno ? errno : EIO);
      break;
    }
  }
  consumed_ += got;
  return got;
}

bool ByteSource::next_plain(Chunk& out) {
  const std::size_t n = read_input();
  if (n == 0) return false;
  std::memset(&in_[n], 0, kPadding);
  out = {std::string_view(in_.data(), n), consumed_};
  return true;
}

bool ByteSource::next(Chunk& out) {
  if (ended_) return false;
  if (!decoder_) {
    if (next_plain(out)) return true;
    ended_ = true;
    return false;
  }
  for (;;) {
    const std::size_t n = damage_.empty() ? read_input() : 0;
    if (!damage_.empty() || n == 0) {
      if (damage_.empty() && in_frame_) {
        damage_ = std::string(decoder_->name()) + " stream ends inside a frame (truncated file?)";
      }
      ended_ = true;
      return false;
    }
    std::size_t used = 0;
    std::string_view data(in_.data(), n);
    while (!data.empty()) {
      in_frame_ = true;
      const std::size_t mark = used;
      try {
        if (decoder_->decode(data, out_, used)) {
          decoder_->reset();
          in_frame_ = false;
        } else {
          data = {};
        }
      } catch (const Decoder::DecodeError& e) {
        used = mark;
        damage_ = e.message;
        break;
      }
    }
    if (used) {
      pad_chunk(used);
      out = {std::string_view(out_.data(), used), consumed_};
      return true;
    }
  }
}

}  // namespace reader
}  // namespace ignite
