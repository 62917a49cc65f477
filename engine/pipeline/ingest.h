// Owns the native ingest pipeline: a reader thread, a persistent pool of tokenizer threads and
// the packer thread(s), joined by bounded rings that carry owned windows and batches. Device
// workers take batches (next_batch) and hand their embeddings back (complete), which scatters
// them into the batch's window; the writer takes complete windows in input order
// (next_committable). A window gathers records across files, so many small files batch like one
// big file; every record keeps its file index and line.
//
// Errors: the first exception of any stage (or fail() from a worker) cancels the run: rings
// close, stages stop, and next_committable rethrows it. stop() ends reading; the windows the
// packer has started (and any before them) flow through and can be committed, later ones are
// dropped (a resume reads them again).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <limits>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "concurrency/ring.h"
#include "pipeline/buffer_pool.h"
#include "pipeline/embedding_pool.h"
#include "pipeline/recycler.h"
#include "reader/byte_source.h"
#include "reader/json_record.h"
#include "tokenizer/tokenizer.h"

namespace ignite {
namespace pipeline {

// A record's status: the reader's codes (reader::Status), then those set downstream.
constexpr std::uint8_t kStatusBackendError = reader::kStatusCount;
constexpr int kStatusCount = reader::kStatusCount + 1;
const char* status_name(std::uint8_t code);

struct InputFile {
  std::string path;
  reader::Compression compression = reader::Compression::kNone;
  bool jsonl = true;
  std::int32_t index = 0;  // in the run's list of inputs (a resumed run starts past 0)
  std::uint64_t size = 0;  // bytes on disk; a small file gets a read buffer of its size
  std::uint64_t skip_lines = 0;  // lines already committed (resume), or before a shard's line range
  // The file ends after line skip_lines + max_lines (a shard's line range; see reader::ReaderOptions).
  std::uint64_t max_lines = std::numeric_limits<std::uint64_t>::max();
};

// What the backend accepts, which the packer obeys.
struct PackLimits {
  std::int64_t budget = 65536;  // padded tokens per batch (rows x width)
  std::int64_t max_rows = 1024;
  std::int64_t max_width = 0;  // 0: no limit beyond the tokenizer's max length
  std::int64_t pad_multiple = 1;
};

enum class Stage { kRead, kTokenize, kPack };

// Re-encodes texts the native tokenizer flags uncertain (Unicode-version-dependent code points):
// out[i] gets the full ids of texts[i] (special tokens included, truncated).
using Retokenize = std::function<void(const std::vector<std::string_view>& texts,
                                      std::vector<std::vector<std::int32_t>>& out)>;

struct Options {
  std::vector<InputFile> files;
  std::string field = "text";  // dotted path (JSONL)
  std::string id_field;  // dotted path; empty: no ids
  std::size_t window_records = 65536;
  std::size_t read_chunk = 1 << 20;
  std::size_t max_line_bytes = std::size_t{64} << 20;
  std::string prefix;  // put before every text (a model's query/passage prompt)
  unsigned tokenizer_threads = 1;
  unsigned packer_threads = 1;
  PackLimits limits;
  std::size_t dim = 0;  // embedding size
  std::int64_t first_window = 0;  // index and output row of the first window (resume)
  std::int64_t first_row = 0;
  std::size_t windows_in_flight = 8;  // read and not yet taken by the writer: bounds memory
  std::size_t batch_ring = 16;
  Retokenize retokenize;  // null: uncertain texts keep the native ids
  // Tests: called once per window in each stage with its index; may sleep or throw.
  std::function<void(Stage, std::int64_t)> probe;
};

struct Damage {
  std::int32_t file = 0;
  std::int64_t line = 0;
  std::string reason;
};

// Records of one or more consecutive files, moved from stage to stage as a unique_ptr.
struct Window {
  std::int64_t index = 0;
  std::int64_t start_row = 0;
  // The records: text arena (freed once tokenized), ids, source position, status. Until a
  // tokenizer thread parses them, records flagged in `raw` hold their JSONL line in the arena
  // and no id, and their status is not final (see parse_raw_records in ingest.cpp).
  std::string text;
  std::vector<std::int64_t> text_offsets{0};
  std::string id_bytes;
  std::vector<std::int64_t> id_offsets{0};
  std::vector<std::uint8_t> has_id;
  std::vector<std::int32_t> files;
  std::vector<std::int64_t> lines;
  std::vector<std::uint8_t> status;
  std::vector<std::uint8_t> raw;  // 1: a JSONL line still to parse; emptied once parsed
  // The input position once this window is committed: file `end_file` is read up to line
  // `end_line` (when end_records > 0, the number of its records here) and `end_offset` bytes,
  // completely when `end_done`; files before it are read completely.
  std::int32_t end_file = 0;
  std::int64_t end_line = 0;
  std::int64_t end_records = 0;
  std::uint64_t end_offset = 0;
  bool end_done = false;
  std::vector<Damage> damage;  // files that stopped early at damaged bytes
  // The tokenizer's: ids of row r are tokens[token_offsets[r], token_offsets[r+1]) (none for a
  // bad record); freed once the batches are filled.
  std::vector<std::int32_t> tokens;
  std::vector<std::int64_t> token_offsets;
  // The packer's and the workers'.
  EmbeddingPool::Buffer embeddings;  // [size(), dim], zeros where no embedding
  std::size_t batches = 0;
  std::size_t batches_done = 0;  // under the pipeline's lock
  std::int64_t real_tokens = 0;
  std::int64_t padded_tokens = 0;

  std::size_t size() const { return lines.size(); }
};

// Rows of one window, padded to `width` tokens, in a pooled ids/mask pair.
struct Batch {
  Window* window = nullptr;  // owned by the pipeline until the writer takes it
  std::vector<std::int64_t> rows;
  BufferPool::Lease buffers;
  std::int64_t width = 0;
  std::int64_t real_tokens = 0;
  bool completed = false;

  std::size_t size() const { return rows.size(); }
  const std::int32_t* ids() const { return buffers.ids(); }
  const std::int32_t* mask() const { return buffers.mask(); }
};

class IngestPipeline {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts the threads. The tokenizer must outlive the pipeline; batches must not outlive it.
  IngestPipeline(Options options, const Tokenizer& tokenizer);
  ~IngestPipeline();  // cancels and joins
  IngestPipeline(const IngestPipeline&) = delete;
  IngestPipeline& operator=(const IngestPipeline&) = delete;

  // The next batch; null on timeout, or once every batch was handed out (then `finished`).
  // Throws Cancelled when the run was cancelled.
  std::unique_ptr<Batch> next_batch(Clock::duration timeout, bool& finished);

  // Scatters a batch's [size(), dim] embeddings into its window; rows listed in `failed`
  // (positions in the batch) get status backend_error instead. InvalidArgument on misuse.
  void complete(Batch& batch, const float* embeddings, const std::int64_t* failed, std::size_t n_failed);

  // The next window in input order once all its batches are complete; null on timeout, or once
  // every window was taken (then `finished`). Rethrows the first stage error; Cancelled after
  // fail() or cancel() without one.
  std::unique_ptr<Window> next_committable(Clock::duration timeout, bool& finished);

  // Stop reading and starting windows; the windows being packed still flow through.
  void stop();
  // Cancel the run with `error` (the first one is kept); null: a plain cancel.
  void fail(std::exception_ptr error);
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // Cancel and join the threads; the object stays valid for the batches still out.
  void close();

  std::size_t dim() const { return options_.dim; }  // of the embeddings complete() takes
  std::size_t buffers_allocated() const { return pool_.allocated(); }
  // CPU seconds each stage's threads have used, counted as each thread ends (so final once
  // close() has joined them).
  double cpu_seconds(Stage stage) const;
  std::int64_t records_read() const { return records_read_.load(std::memory_order_relaxed); }
  // Live, for a metrics collector (lock-free reads): wall seconds each stage's threads have spent
  // working, waits on rings and on the writer left out, published window by window; input bytes
  // read; items in each ring and its capacity (read -> tokenize -> pack -> workers).
  double busy_seconds(Stage stage) const;
  std::int64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }
  struct RingLevel {
    const char* name;
    std::size_t size, capacity;
  };
  std::vector<RingLevel> ring_levels() const;
  unsigned threads(Stage stage) const;

 private:
  void read();
  void tokenize();
  void pack();
  void tokenize_window(Window& w, reader::JsonRecordParser& parser);
  void run_stage(Stage stage, void (IngestPipeline::*body)());
  bool emit(std::unique_ptr<Window>& w);
  template <typename T>
  bool push(BlockingRing<T>& ring, T& item);
  void join();

  Options options_;
  const Tokenizer& tokenizer_;
  BufferPool pool_;
  std::shared_ptr<EmbeddingPool> embedding_pool_;
  Recycler<std::string> texts_;  // windows' text arenas, from the tokenizers back to the reader
  Recycler<std::vector<std::int32_t>> tokens_;  // windows' tokens, from the packer back to the tokenizers
  BlockingRing<std::unique_ptr<Window>> read_ring_;
  BlockingRing<std::unique_ptr<Window>> tokenized_ring_;
  BlockingRing<std::unique_ptr<Batch>> batch_ring_;

  std::atomic<bool> stop_{false};
  std::atomic<bool> cancelled_{false};
  std::atomic<unsigned> tokenizers_left_;
  std::atomic<unsigned> packers_left_;
  std::atomic<std::int64_t> records_read_{0};
  std::atomic<std::int64_t> cpu_ns_[3] = {};  // by Stage
  std::atomic<std::int64_t> busy_ns_[3] = {};  // by Stage
  std::atomic<std::int64_t> bytes_read_{0};

  // Windows registered by the packer until the writer takes them; all under mutex_.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::int64_t, std::unique_ptr<Window>> pending_;
  std::int64_t next_commit_;
  std::int64_t last_started_ = -1;  // the highest window the packer has started
  std::size_t in_flight_ = 0;  // read and not yet taken by the writer
  bool packing_done_ = false;
  std::exception_ptr error_;

  std::vector<std::thread> threads_;
};

}  // namespace pipeline
}  // namespace ignite
