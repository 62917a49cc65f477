// Tests of engine/reader: framing (CRLF, BOM, no final newline, lines longer than the read
// chunk), zstd frames and gzip members (concatenated, truncated, garbage after), JSON field
// extraction (escapes, surrogate pairs, bad JSON, invalid UTF-8, nested and repeated keys, ids
// written as orjson writes them), window cuts, skip_lines and max_lines. Run plain and under ASan/UBSan, TSan.
// Parity with the Python reader on real and random data is tested in tests/test_native_reader.py.
#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "reader/json_record.h"
#include "reader/window_reader.h"

#include "check.h"

using ignite::reader::Compression;
using ignite::reader::ReaderOptions;
using ignite::reader::RecordWindow;
using ignite::reader::Status;
using ignite::reader::WindowReader;

namespace {

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/ignite_test_reader_" + std::to_string(::getpid()) + "_" + name;
}

std::string write_file(const std::string& name, const std::string& bytes) {
  const std::string path = temp_path(name);
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::string zstd(const std::string& data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  out.resize(ZSTD_compress(&out[0], out.size(), data.data(), data.size(), 3));
  return out;
}

std::string gzip(const std::string& data) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

struct Records {
  std::vector<std::string> texts, ids;
  std::vector<std::int64_t> lines;
  std::vector<Status> status;
  std::vector<std::size_t> window_sizes;
  std::vector<std::uint64_t> end_offsets;
  bool last = false;
  bool damaged = false;
  std::int64_t damage_line = 0;
  std::string damage_reason;
};

Records read_all(ReaderOptions options) {
  WindowReader reader(options);
  Records r;
  RecordWindow w;
  while (reader.next(w)) {
    for (std::size_t i = 0; i < w.size(); ++i) {
      r.texts.emplace_back(w.text, static_cast<std::size_t>(w.text_offsets[i]),
                           static_cast<std::size_t>(w.text_offsets[i + 1] - w.text_offsets[i]));
      r.ids.push_back(w.has_id[i] ? w.id_bytes.substr(static_cast<std::size_t>(w.id_offsets[i]),
                                                      static_cast<std::size_t>(w.id_offsets[i + 1] - w.id_offsets[i]))
                                  : "<none>");
      r.lines.push_back(w.lines[i]);
      r.status.push_back(static_cast<Status>(w.status[i]));
    }
    r.window_sizes.push_back(w.size());
    r.end_offsets.push_back(w.end_offset);
    r.last = w.last;
    if (w.damaged) {
      r.damaged = true;
      r.damage_line = w.damage_line;
      r.damage_reason = w.damage_reason;
    }
  }
  CHECK(reader.damaged() == r.damaged || r.window_sizes.empty());
  return r;
}

ReaderOptions options_for(const std::string& path, Compression compression = Compression::kNone) {
  ReaderOptions o;
  o.path = path;
  o.compression = compression;
  o.id_field = "id";
  return o;
}

void test_txt_framing() {
  auto o = options_for(write_file("a.txt", "\xEF\xBB\xBFone\r\ntwo\n\nfour\r\nfi\xFFve\r\n\rsix"));
  o.jsonl = false;
  o.read_chunk = 3;  // every line crosses a chunk boundary
  const Records r = read_all(o);
  CHECK((r.texts == std::vector<std::string>{"one", "two", "", "four", "", "\rsix"}));  // one CR is a line end
  CHECK((r.lines == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6}));
  CHECK(r.status[4] == Status::kInvalidUtf8 && r.status[5] == Status::kOk && r.last);
  CHECK(r.ids[0] == "<none>");
}

void test_jsonl_framing_and_windows() {
  std::string data;
  for (int i = 0; i < 25; ++i) data += "{\"text\": \"t" + std::to_string(i) + "\", \"id\": " + std::to_string(i) + "}\r\n";
  data += " \t\x0b\x0c\n\n";  // blank lines: not records, but counted
  data += "{\"text\": \"end\"}";  // no final newline
  const std::string path = write_file("w.jsonl", data);
  auto o = options_for(path);
  o.window_records = 10;
  const Records r = read_all(o);
  CHECK((r.window_sizes == std::vector<std::size_t>{10, 10, 6}));
  CHECK(r.texts.back().empty() && r.lines.back() == 28 && r.status.back() == Status::kMissingId);
  CHECK(r.ids[3] == "3" && r.texts[24] == "t24" && r.last);
  CHECK(r.end_offsets.back() == data.size());
  o.skip_lines = 24;
  const Records s = read_all(o);
  CHECK(s.texts.size() == 2 && s.lines[0] == 25 && s.texts[0] == "t24");
  o.skip_lines = 1000;
  CHECK(read_all(o).texts.empty());
  // A shard's line range: lines 21..26 (two of them blank); the range's end is the file's end.
  o.skip_lines = 20;
  o.max_lines = 6;
  o.window_records = 2;
  const Records range = read_all(o);
  CHECK((range.lines == std::vector<std::int64_t>{21, 22, 23, 24, 25}) && range.last);
  CHECK((range.window_sizes == std::vector<std::size_t>{2, 2, 1}));
  o.max_lines = 0;
  CHECK(read_all(o).texts.empty());
}

void test_long_lines() {
  const std::string ok = "{\"text\": \"" + std::string(20, 'x') + "\"}";
  const std::string too_long = "{\"text\": \"" + std::string(100, 'y') + "\"}";
  auto o = options_for(write_file("long.jsonl", ok + "\n" + too_long + "\n" + ok + "\n" + too_long));
  o.id_field.clear();
  o.read_chunk = 7;
  o.max_line_bytes = 40;
  const Records r = read_all(o);
  CHECK((r.status == std::vector<Status>{Status::kOk, Status::kLineTooLong, Status::kOk, Status::kLineTooLong}));
  CHECK(r.texts[2] == std::string(20, 'x') && r.texts[1].empty() && r.lines[3] == 4);
  // A line held whole in one chunk is only cut at chunk ends, as the Python reader does.
  o.read_chunk = 1 << 20;
  CHECK(read_all(o).status[1] == Status::kOk);
}

std::string numbered(int from, int to) {
  std::string s;
  for (int i = from; i < to; ++i) s += "{\"text\": \"r" + std::to_string(i) + "\"}\n";
  return s;
}

void test_compressed() {
  const std::string a = numbered(0, 300), b = numbered(300, 700);
  for (const auto compression : {Compression::kZstd, Compression::kGzip}) {
    const auto pack = [&](const std::string& d) { return compression == Compression::kZstd ? zstd(d) : gzip(d); };
    const char* name = compression == Compression::kZstd ? "zstd" : "gzip";
    // Concatenated frames / members, split inside a line.
    const std::string first = pack(a + b.substr(0, 5));
    const std::string whole = first + pack(b.substr(5));
    auto o = options_for(write_file(std::string("multi.") + name, whole), compression);
    o.id_field.clear();
    o.read_chunk = 100;
    Records r = read_all(o);
    CHECK(r.texts.size() == 700 && r.texts[300] == "r300" && r.texts[699] == "r699" && !r.damaged);
    CHECK(r.end_offsets.back() == whole.size());

    // Truncated: every record decoded before the cut, then the damage.
    o.path = write_file(std::string("cut.") + name, whole.substr(0, (first.size() + whole.size()) / 2));
    r = read_all(o);
    CHECK(r.damaged && r.damage_reason == std::string(name) + " stream ends inside a frame (truncated file?)");
    CHECK(r.texts.size() >= 300 && r.texts.size() < 700 && r.texts.back() == "r" + std::to_string(r.texts.size() - 1));
    CHECK(r.damage_line == static_cast<std::int64_t>(r.texts.size()));

    // Garbage after the last frame.
    o.path = write_file(std::string("garbage.") + name, whole + "garbage tail");
    r = read_all(o);
    CHECK(r.damaged && r.texts.size() == 700 && r.damage_line == 700);
    CHECK(r.damage_reason == (compression == Compression::kZstd
                                  ? "zstd decompressor error: Unknown frame descriptor"
                                  : "Error -3 while decompressing data: incorrect header check"));
  }
}

Records parse_lines(const std::string& data, const std::string& field = "text", const std::string& id = "id") {
  auto o = options_for(write_file("json.jsonl", data));
  o.field = field;
  o.id_field = id;
  return read_all(o);
}

void test_json_values() {
  const Records r = parse_lines(
      "{\"text\": \"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 \\ud83d\\ude00 \\u0000\", \"id\": \"s\"}\n"
      "{\"text\": \"lone \\ud800\"}\n"
      "{\"text\": \"low \\udc00\"}\n"
      "{\"text\": \"bad \xFF\"}\n"
      "{\"text\": \"x\",}\n"
      "[1]\n"
      "{\"text\": null, \"id\": 1}\n"
      "{\"text\": 5, \"id\": true}\n"
      "{\"text\": \"a\", \"text\": \"last\", \"id\": {\"b\": 1, \"a\": [1.5, null, \"\\u0001\"], \"b\": 2}}\n"
      "{\"text\": \"t\", \"id\": [1e16, 1e15, 1e-5, 1e-6, -0.0, 0.1, 123456789012345678901234567890]}\n"
      "{\"text\": \"t\", \"id\": 18446744073709551615}\n"
      "{\"text\": \"t\", \"id\": -9223372036854775809}\n"
      "{\"text\": \"t\", \"id\": 1e400}\n"
      "{\"id\": \"no text\"}\n");
  CHECK(r.texts[0] == "q\" b\\ s/ \b\f\n\r\t \xC3\xA9 \xF0\x9F\x98\x80 " + std::string(1, '\0'));
  CHECK(r.status[1] == Status::kBadJson && r.status[2] == Status::kBadJson);
  CHECK(r.status[3] == Status::kInvalidUtf8 && r.status[4] == Status::kBadJson);
  CHECK(r.status[5] == Status::kNotAnObject && r.ids[5] == "<none>");
  CHECK(r.status[6] == Status::kFieldNull && r.ids[6] == "1");
  CHECK(r.status[7] == Status::kFieldNotString && r.ids[7] == "true");
  CHECK(r.texts[8] == "last" && r.ids[8] == "{\"b\":2,\"a\":[1.5,null,\"\\u0001\"]}");
  CHECK(r.ids[9] == "[1e+16,1000000000000000.0,0.00001,1e-6,-0.0,0.1,1.2345678901234568e+29]");
  CHECK(r.ids[10] == "18446744073709551615" && r.ids[11] == "-9.223372036854776e+18");
  CHECK(r.status[12] == Status::kBadJson);
  CHECK(r.status[13] == Status::kMissingField && r.ids[13] == "no text");

  const Records nested = parse_lines(
      "{\"doc\": {\"body\": \"deep\", \"meta\": {\"k\": 7}}}\n"
      "{\"doc\": \"flat\"}\n"
      "{\"doc\": {\"body\": \"x\"}, \"doc\": {\"other\": 1}}\n",
      "doc.body", "doc.meta.k");
  CHECK(nested.texts[0] == "deep" && nested.ids[0] == "7");
  CHECK(nested.status[1] == Status::kMissingId && nested.status[2] == Status::kMissingId);
  CHECK(parse_lines("{\"doc\": {\"body\": \"x\"}, \"doc\": {\"other\": 1}}\n", "doc.body", "").status[0] ==
        Status::kMissingField);
}

void test_errors() {
  bool not_found = false;
  try {
    WindowReader reader(options_for(temp_path("does-not-exist")));
  } catch (const ignite::NotFound&) {
    not_found = true;
  }
  CHECK(not_found);
  CHECK(std::string(ignite::reader::status_name(Status::kLineTooLong)) == "line_too_long");
}

}  // namespace

int main() {
  test_txt_framing();
  test_jsonl_framing_and_windows();
  test_long_lines();
  test_compressed();
  test_json_values();
  test_errors();
  return ignite_test::finish("test_reader");
}
