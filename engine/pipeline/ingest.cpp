#include "pipeline/ingest.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "core/reserve.h"
#include "packer/packer.h"
#include "reader/window_reader.h"

namespace ignite {
namespace pipeline {

namespace {

// Every wait is sliced so a stage sees cancellation within this long.
constexpr auto kPoll = std::chrono::milliseconds(50);

// A file smaller than the read chunk gets a buffer of its own size (plus one byte, so the first
// read still sees the end): 20,000 one-record files must not each allocate a megabyte. The
// chunks, and so every line and damage report, are the same as with the full chunk.
std::size_t read_chunk_for(const InputFile& file, std::size_t read_chunk) {
  const std::uint64_t fitted = std::max<std::uint64_t>(file.size + 1, 4096);
  return static_cast<std::size_t>(std::min<std::uint64_t>(read_chunk, fitted));
}

// Flags the records of `rw` from `lo` on that a tokenizer thread must parse: lines the reader
// passed on whole (a too-long one keeps its status).
void append_raw_flags(Window& w, const reader::RecordWindow& rw, std::size_t lo, std::size_t hi) {
  for (std::size_t i = lo; i < hi; ++i) {
    w.raw.push_back(rw.raw && rw.status[i] == static_cast<std::uint8_t>(reader::Status::kOk) ? 1 : 0);
  }
}

// An empty window takes all of a reader window's records by moving its arrays: no copy of the
// (raw) text on the reading thread. `rw` is left empty.
void take_records(Window& w, reader::RecordWindow& rw, std::int32_t file) {
  append_raw_flags(w, rw, 0, rw.size());
  w.files.assign(rw.size(), file);
  w.text = std::move(rw.text);
  w.text_offsets = std::move(rw.text_offsets);
  w.id_bytes = std::move(rw.id_bytes);
  w.id_offsets = std::move(rw.id_offsets);
  w.has_id = std::move(rw.has_id);
  w.lines = std::move(rw.lines);
  w.status = std::move(rw.status);
}

// Appends records [lo, hi) of a reader window to `w`, from file `file` (may empty `rw`).
void append_records(Window& w, reader::RecordWindow& rw, std::size_t lo, std::size_t hi, std::int32_t file) {
  if (w.size() == 0 && lo == 0 && hi == rw.size()) {
    take_records(w, rw, file);
    return;
  }
  append_raw_flags(w, rw, lo, hi);
  const std::int64_t text_base = static_cast<std::int64_t>(w.text.size()) - rw.text_offsets[lo];
  w.text.append(rw.text, static_cast<std::size_t>(rw.text_offsets[lo]),
                static_cast<std::size_t>(rw.text_offsets[hi] - rw.text_offsets[lo]));
  const std::int64_t id_base = static_cast<std::int64_t>(w.id_bytes.size()) - rw.id_offsets[lo];
  w.id_bytes.append(rw.id_bytes, static_cast<std::size_t>(rw.id_offsets[lo]),
                    static_cast<std::size_t>(rw.id_offsets[hi] - rw.id_offsets[lo]));
  for (std::size_t i = lo; i < hi; ++i) {
    w.text_offsets.push_back(rw.text_offsets[i + 1] + text_base);
    w.id_offsets.push_back(rw.id_offsets[i + 1] + id_base);
  }
  const auto from = static_cast<std::ptrdiff_t>(lo), to = static_cast<std::ptrdiff_t>(hi);
  w.has_id.insert(w.has_id.end(), rw.has_id.begin() + from, rw.has_id.begin() + to);
  w.lines.insert(w.lines.end(), rw.lines.begin() + from, rw.lines.begin() + to);
  w.status.insert(w.status.end(), rw.status.begin() + from, rw.status.begin() + to);
  w.files.insert(w.files.end(), hi - lo, file);
}

std::string_view record_bytes(const std::string& arena, const std::vector<std::int64_t>& offsets, std::size_t r) {
  return std::string_view(arena).substr(static_cast<std::size_t>(offsets[r]),
                                        static_cast<std::size_t>(offsets[r + 1] - offsets[r]));
}

// Turns the window's raw JSONL lines into texts, ids and statuses with the standalone reader's
// parser (JsonRecordParser::parse), on a tokenizer thread so the reader only frames lines.
// Records already final (text files, too-long lines) keep their text and id.
void parse_raw_records(Window& w, reader::JsonRecordParser& parser, Recycler<std::string>& texts) {
  const bool any_raw = std::find(w.raw.begin(), w.raw.end(), 1) != w.raw.end();
  if (any_raw) {
    // simdjson reads up to kPadding bytes past a line's end; the lines are back to back, so
    // only the last one needs these.
    w.text.append(reader::kPadding, '\0');
    std::string text = texts.take(), ids;
    reserve_reusable(text, w.text.size());
    std::vector<std::int64_t> text_offsets{0}, id_offsets{0};
    text_offsets.reserve(w.size() + 1);
    id_offsets.reserve(w.size() + 1);
    for (std::size_t r = 0; r < w.size(); ++r) {
      const std::string_view bytes = record_bytes(w.text, w.text_offsets, r);
      if (w.raw[r]) {
        bool has_id = false;
        w.status[r] = static_cast<std::uint8_t>(parser.parse(bytes, text, ids, has_id));
        w.has_id[r] = has_id ? 1 : 0;
      } else {
        text.append(bytes);
        ids.append(record_bytes(w.id_bytes, w.id_offsets, r));
      }
      text_offsets.push_back(static_cast<std::int64_t>(text.size()));
      id_offsets.push_back(static_cast<std::int64_t>(ids.size()));
    }
    texts.give(std::exchange(w.text, std::move(text)));
    w.text_offsets = std::move(text_offsets);
    w.id_bytes = std::move(ids);
    w.id_offsets = std::move(id_offsets);
  }
  std::vector<std::uint8_t>().swap(w.raw);
}

std::int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Counts a stage thread's working wall time into `total` while running; paused around waits.
class BusyClock {
 public:
  using Clock = std::chrono::steady_clock;
  explicit BusyClock(std::atomic<std::int64_t>& total) : total_(total), since_(Clock::now()) {}
  ~BusyClock() { pause(); }
  BusyClock(const BusyClock&) = delete;
  BusyClock& operator=(const BusyClock&) = delete;
  void pause() {
    if (!running_) return;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - since_).count();
    total_.fetch_add(static_cast<std::int64_t>(ns), std::memory_order_relaxed);
    running_ = false;
  }
  void resume() {
    if (running_) return;
    since_ = Clock::now();
    running_ = true;
  }

 private:
  std::atomic<std::int64_t>& total_;
  Clock::time_point since_;
  bool running_ = true;
};

std::vector<std::int64_t> ok_rows(const Window& w) {
  std::vector<std::int64_t> rows;
  rows.reserve(w.size());
  for (std::size_t r = 0; r < w.size(); ++r) {
    if (w.status[r] == 0) rows.push_back(static_cast<std::int64_t>(r));
  }
  return rows;
}

}  // namespace

const char* status_name(std::uint8_t code) {
  if (code == kStatusBackendError) return "backend_error";
  return reader::status_name(static_cast<reader::Status>(code));
}

IngestPipeline::IngestPipeline(Options options, const Tokenizer& tokenizer)
    : options_(std::move(options)),
      tokenizer_(tokenizer),
      pool_(static_cast<std::size_t>(std::max<std::int64_t>(options_.limits.budget, 1))),
      // Windows in flight, and a few more that the writer may hold while their rows are written.
      embedding_pool_(std::make_shared<EmbeddingPool>(options_.windows_in_flight + 4)),
      texts_(options_.windows_in_flight + 2),
      tokens_(options_.windows_in_flight + 2),
      read_ring_(2),
      tokenized_ring_(std::max<std::size_t>(2, options_.tokenizer_threads)),
      batch_ring_(std::max<std::size_t>(2, options_.batch_ring)),
      tokenizers_left_(std::max(1u, options_.tokenizer_threads)),
      packers_left_(std::max(1u, options_.packer_threads)),
      next_commit_(options_.first_window) {
  if (options_.window_records == 0) throw InvalidArgument("IngestPipeline: window_records must be >= 1");
  if (options_.dim == 0) throw InvalidArgument("IngestPipeline: dim must be >= 1");
  if (options_.windows_in_flight == 0) throw InvalidArgument("IngestPipeline: windows_in_flight must be >= 1");
  if (options_.limits.pad_multiple < 1 || options_.limits.max_rows < 1 || options_.limits.max_width < 0) {
    throw InvalidArgument("IngestPipeline: pad_multiple and max_rows must be >= 1, max_width >= 0");
  }
  if (options_.limits.max_width > 0 && static_cast<std::size_t>(options_.limits.max_width) < tokenizer.max_length()) {
    throw InvalidArgument("IngestPipeline: the backend's longest input (" + std::to_string(options_.limits.max_width) +
                          " tokens) is shorter than the tokenizer's max length (" +
                          std::to_string(tokenizer.max_length()) + ")");
  }
  try {
    threads_.emplace_back(&IngestPipeline::run_stage, this, Stage::kRead, &IngestPipeline::read);
    for (unsigned i = 0; i < tokenizers_left_.load(); ++i) {
      threads_.emplace_back(&IngestPipeline::run_stage, this, Stage::kTokenize, &IngestPipeline::tokenize);
    }
    for (unsigned i = 0; i < packers_left_.load(); ++i) {
      threads_.emplace_back(&IngestPipeline::run_stage, this, Stage::kPack, &IngestPipeline::pack);
    }
  } catch (...) {
    fail(nullptr);  // the threads started so far use this object: stop and join them first
    join();
    throw;
  }
}

IngestPipeline::~IngestPipeline() { close(); }

void IngestPipeline::close() {
  fail(nullptr);
  join();
}

void IngestPipeline::join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

double IngestPipeline::cpu_seconds(Stage stage) const {
  return static_cast<double>(cpu_ns_[static_cast<int>(stage)].load()) / 1e9;
}

double IngestPipeline::busy_seconds(Stage stage) const {
  return static_cast<double>(busy_ns_[static_cast<int>(stage)].load(std::memory_order_relaxed)) / 1e9;
}

std::vector<IngestPipeline::RingLevel> IngestPipeline::ring_levels() const {
  return {{"read", read_ring_.size(), read_ring_.capacity()},
          {"tokenized", tokenized_ring_.size(), tokenized_ring_.capacity()},
          {"batches", batch_ring_.size(), batch_ring_.capacity()}};
}

unsigned IngestPipeline::threads(Stage stage) const {
  if (stage == Stage::kRead) return 1;
  return std::max(1u, stage == Stage::kTokenize ? options_.tokenizer_threads : options_.packer_threads);
}

void IngestPipeline::run_stage(Stage stage, void (IngestPipeline::*body)()) {
  // Named for top, perf and py-spy (15 characters at most).
  static const char* const kNames[] = {"ignite-reader", "ignite-tokenize", "ignite-packer"};
  pthread_setname_np(pthread_self(), kNames[static_cast<int>(stage)]);
  try {
    (this->*body)();
  } catch (...) {
    fail(std::current_exception());
  }
  cpu_ns_[static_cast<int>(stage)].fetch_add(thread_cpu_ns());
  // Hand the end downstream: the last thread of a stage closes its output.
  if (stage == Stage::kRead) {
    read_ring_.close();
  } else if (stage == Stage::kTokenize) {
    if (tokenizers_left_.fetch_sub(1) == 1) tokenized_ring_.close();
  } else if (packers_left_.fetch_sub(1) == 1) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      packing_done_ = true;
    }
    changed_.notify_all();
    batch_ring_.close();
  }
}

template <typename T>
bool IngestPipeline::push(BlockingRing<T>& ring, T& item) {
  for (;;) {
    if (cancelled()) return false;
    const RingStatus status = ring.push(std::move(item), kPoll);
    if (status == RingStatus::kOk) return true;
    if (status == RingStatus::kClosed) return false;
  }
}

bool IngestPipeline::emit(std::unique_ptr<Window>& w) {
  if (options_.probe) options_.probe(Stage::kRead, w->index);
  {
    // Windows in flight are bounded here, so a slow writer holds the reader back.
    std::unique_lock<std::mutex> lock(mutex_);
    while (in_flight_ >= options_.windows_in_flight) {
      if (cancelled() || stop_.load(std::memory_order_acquire)) return false;
      changed_.wait_for(lock, kPoll);
    }
    ++in_flight_;
  }
  records_read_.fetch_add(static_cast<std::int64_t>(w->size()), std::memory_order_relaxed);
  return push(read_ring_, w);
}

void IngestPipeline::read() {
  BusyClock busy(busy_ns_[static_cast<int>(Stage::kRead)]);
  // Waiting for the writer or for room in the ring is not reading.
  auto send = [&](std::unique_ptr<Window>& w) {
    busy.pause();
    const bool sent = emit(w);
    busy.resume();
    return sent;
  };
  std::int64_t index = options_.first_window, row = options_.first_row;
  auto window = std::make_unique<Window>();
  window->index = index;
  window->start_row = row;
  bool touched = false;  // the window holds records or moves the input position
  // Sends the window on and starts the next, which goes on from the same input position.
  auto cut = [&]() {
    auto next = std::make_unique<Window>();
    next->index = ++index;
    next->start_row = row += static_cast<std::int64_t>(window->size());
    next->end_file = window->end_file;
    next->end_line = window->end_line;
    next->end_offset = window->end_offset;
    next->end_done = window->end_done;
    const bool sent = send(window);
    window = std::move(next);
    touched = false;
    return sent;
  };
  const std::size_t per_window = options_.window_records;
  for (const InputFile& file : options_.files) {
    if (stop_.load(std::memory_order_acquire)) break;
    reader::ReaderOptions ro;
    ro.path = file.path;
    ro.compression = file.compression;
    ro.jsonl = file.jsonl;
    ro.field = options_.field;
    ro.id_field = options_.id_field;
    ro.window_records = per_window;
    ro.skip_lines = file.skip_lines;
    ro.max_lines = file.max_lines;
    ro.read_chunk = read_chunk_for(file, options_.read_chunk);
    ro.max_line_bytes = options_.max_line_bytes;
    ro.defer_parse = true;  // the tokenizer threads parse (parse_raw_records)
    reader::WindowReader source(ro);
    window->end_file = file.index;
    window->end_line = static_cast<std::int64_t>(file.skip_lines);
    window->end_records = 0;
    window->end_offset = 0;
    window->end_done = false;
    touched = true;
    reader::RecordWindow rw;
    bool stopped = false;
    std::uint64_t offset = 0;
    for (;;) {
      // The arena handed in becomes the window after next's: a recycled one has its pages.
      texts_.refill(rw.text);
      if (!source.next(rw)) break;
      bytes_read_.fetch_add(static_cast<std::int64_t>(rw.end_offset - offset), std::memory_order_relaxed);
      offset = rw.end_offset;
      const std::size_t n = rw.size();  // append_records may take rw's arrays
      for (std::size_t lo = 0; lo < n;) {
        // A full window goes out when the next record arrives, so a file's end (and damage)
        // lands on the window that holds its last records.
        if (window->size() >= per_window && !cut()) return;
        const std::size_t hi = std::min(n, lo + (per_window - window->size()));
        append_records(*window, rw, lo, hi, file.index);
        window->end_line = window->lines.back();
        window->end_records += static_cast<std::int64_t>(hi - lo);
        window->end_offset = rw.end_offset;
        lo = hi;
      }
      if (stop_.load(std::memory_order_acquire)) {
        stopped = !rw.last;
        break;
      }
    }
    if (stopped) break;
    window->end_done = true;
    if (source.damaged()) window->damage.push_back({file.index, source.damage_line(), source.damage_reason()});
  }
  if (window->size() > 0 || touched) send(window);
}

void IngestPipeline::tokenize() {
  reader::JsonRecordParser parser(options_.field, options_.id_field);  // one per thread: it keeps state
  std::unique_ptr<Window> w;
  while (!cancelled()) {
    const RingStatus status = read_ring_.pop(w, kPoll);
    if (status == RingStatus::kClosed) return;
    if (status == RingStatus::kTimeout) continue;
    if (options_.probe) options_.probe(Stage::kTokenize, w->index);
    {
      BusyClock busy(busy_ns_[static_cast<int>(Stage::kTokenize)]);
      tokenize_window(*w, parser);
    }
    if (!push(tokenized_ring_, w)) return;
  }
}

void IngestPipeline::tokenize_window(Window& w, reader::JsonRecordParser& parser) {
  parse_raw_records(w, parser, texts_);
  const std::vector<std::int64_t> rows = ok_rows(w);
  const TextArena texts{w.text.data(), w.text.size(), w.text_offsets.data(), w.size()};
  TokenizedBatch tb = tokenizer_.encode_rows(texts, rows.data(), rows.size(), options_.prefix, 1, tokens_.take());
  std::vector<std::size_t> redo;
  if (options_.retokenize) {
    for (std::size_t k = 0; k < rows.size(); ++k) {
      if (tb.uncertain[k]) redo.push_back(k);
    }
  }
  if (!redo.empty()) {
    // Rare (code points whose properties changed between Unicode versions): the reference
    // tokenizer encodes these texts and its ids replace the native ones.
    std::vector<std::string_view> redo_texts;
    for (const std::size_t k : redo) {
      const auto r = static_cast<std::size_t>(rows[k]);
      redo_texts.emplace_back(w.text.data() + w.text_offsets[r],
                              static_cast<std::size_t>(w.text_offsets[r + 1] - w.text_offsets[r]));
    }
    std::vector<std::vector<std::int32_t>> fixed(redo.size());
    options_.retokenize(redo_texts, fixed);
    std::vector<std::int32_t> ids;
    std::vector<std::int64_t> offsets{0};
    ids.reserve(tb.ids.size());
    std::size_t next = 0;
    for (std::size_t k = 0; k < rows.size(); ++k) {
      if (next < redo.size() && redo[next] == k) {
        ids.insert(ids.end(), fixed[next].begin(), fixed[next].end());
        ++next;
      } else {
        ids.insert(ids.end(), tb.ids.begin() + tb.offsets[k], tb.ids.begin() + tb.offsets[k + 1]);
      }
      offsets.push_back(static_cast<std::int64_t>(ids.size()));
    }
    tb.ids = std::move(ids);
    tb.offsets = std::move(offsets);
  }
  // Offsets over every row: a bad record has no tokens. The ok rows are ascending, so their
  // tokens are already in row order.
  w.token_offsets.assign(w.size() + 1, 0);
  std::size_t k = 0;
  for (std::size_t r = 0; r < w.size(); ++r) {
    std::int64_t length = 0;
    if (k < rows.size() && static_cast<std::size_t>(rows[k]) == r) {
      length = tb.offsets[k + 1] - tb.offsets[k];
      ++k;
    }
    w.token_offsets[r + 1] = w.token_offsets[r] + length;
  }
  w.tokens = std::move(tb.ids);
  // The texts are read no more.
  texts_.give(std::exchange(w.text, std::string()));
  std::vector<std::int64_t>().swap(w.text_offsets);
}

void IngestPipeline::pack() {
  const PackLimits& limits = options_.limits;
  const std::size_t dim = options_.dim;
  std::unique_ptr<Window> w;
  while (!cancelled()) {
    const RingStatus status = tokenized_ring_.pop(w, kPoll);
    if (status == RingStatus::kClosed) return;
    if (status == RingStatus::kTimeout) continue;
    {
      // After stop() a window not yet started is dropped (a resume reads it again), unless a
      // later one has started: that one can only commit after this one. Decided and reserved
      // under the lock, so two packers cannot both drop what the other needs.
      const std::lock_guard<std::mutex> lock(mutex_);
      if (stop_.load(std::memory_order_acquire) && w->index > last_started_) continue;
      last_started_ = std::max(last_started_, w->index);
    }
    if (options_.probe) options_.probe(Stage::kPack, w->index);
    BusyClock busy(busy_ns_[static_cast<int>(Stage::kPack)]);
    const std::vector<std::int64_t> rows = ok_rows(*w);
    std::vector<std::int64_t> lengths(rows.size());
    for (std::size_t k = 0; k < rows.size(); ++k) {
      lengths[k] = w->token_offsets[rows[k] + 1] - w->token_offsets[rows[k]];
    }
    const BatchPlan plan = plan_batches(lengths.data(), lengths.size(), limits.budget, limits.pad_multiple,
                                        limits.max_rows, limits.max_width);
    const std::size_t n_batches = plan.widths.size();
    // Rows with a batch are written by complete(); the others are zeroed here (the buffer may be
    // a reused one).
    w->embeddings = embedding_pool_->acquire(w->size() * dim);
    for (std::size_t r = 0; r < w->size(); ++r) {
      if (w->status[r] != 0) std::fill_n(w->embeddings.data() + r * dim, dim, 0.0f);
    }
    w->batches = n_batches;
    for (std::size_t b = 0; b < n_batches; ++b) {
      const std::int64_t n_rows = plan.bounds[b + 1] - plan.bounds[b];
      w->padded_tokens += n_rows * plan.widths[b];
      for (std::int64_t i = plan.bounds[b]; i < plan.bounds[b + 1]; ++i) w->real_tokens += lengths[plan.order[i]];
    }
    Window* window = w.get();
    {
      // Registered before its batches are out, so a batch is never completed for a window the
      // writer cannot find; one without batches is complete at once.
      const std::lock_guard<std::mutex> lock(mutex_);
      pending_.emplace(window->index, std::move(w));
    }
    changed_.notify_all();
    for (std::size_t b = 0; b < n_batches; ++b) {
      auto batch = std::make_unique<Batch>();
      batch->window = window;
      batch->width = plan.widths[b];
      for (std::int64_t i = plan.bounds[b]; i < plan.bounds[b + 1]; ++i) batch->rows.push_back(rows[plan.order[i]]);
      batch->buffers = pool_.acquire(batch->rows.size() * static_cast<std::size_t>(batch->width));
      batch->real_tokens = fill_batch(window->tokens.data(), window->tokens.size(), window->token_offsets.data(),
                                      window->size(), batch->rows.data(), batch->rows.size(), batch->width,
                                      tokenizer_.pad_id(), batch->buffers.ids(), batch->buffers.mask());
      // Once its last batch is out the writer may take the window: the tokens go before that.
      if (b + 1 == n_batches) {
        tokens_.give(std::exchange(window->tokens, std::vector<std::int32_t>()));
        std::vector<std::int64_t>().swap(window->token_offsets);
      }
      busy.pause();  // waiting for a worker to take a batch
      const bool pushed = push(batch_ring_, batch);
      busy.resume();
      if (!pushed) return;
    }
  }
}

std::unique_ptr<Batch> IngestPipeline::next_batch(Clock::duration timeout, bool& finished) {
  finished = false;
  std::unique_ptr<Batch> batch;
  const RingStatus status = batch_ring_.pop(batch, timeout);
  if (cancelled()) throw Cancelled("the ingest pipeline was cancelled");
  if (status == RingStatus::kClosed) finished = true;
  return status == RingStatus::kOk ? std::move(batch) : nullptr;
}

void IngestPipeline::complete(Batch& batch, const float* embeddings, const std::int64_t* failed,
                              std::size_t n_failed) {
  if (batch.completed) throw InvalidArgument("complete: this batch was completed already");
  Window& w = *batch.window;
  const std::size_t dim = options_.dim;
  for (std::size_t j = 0; j < batch.size(); ++j) {
    std::memcpy(w.embeddings.data() + static_cast<std::size_t>(batch.rows[j]) * dim, embeddings + j * dim,
                dim * sizeof(float));
  }
  for (std::size_t i = 0; i < n_failed; ++i) {
    if (failed[i] < 0 || static_cast<std::size_t>(failed[i]) >= batch.size()) {
      throw InvalidArgument("complete: failed row " + std::to_string(failed[i]) + " is outside the batch's " +
                            std::to_string(batch.size()) + " rows");
    }
    const auto r = static_cast<std::size_t>(batch.rows[static_cast<std::size_t>(failed[i])]);
    w.status[r] = kStatusBackendError;
    std::fill_n(w.embeddings.data() + r * dim, dim, 0.0f);
  }
  batch.completed = true;
  bool done = false;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    done = ++w.batches_done == w.batches;
  }
  if (done) changed_.notify_all();
}

std::unique_ptr<Window> IngestPipeline::next_committable(Clock::duration timeout, bool& finished) {
  finished = false;
  const auto deadline = Clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (error_) std::rethrow_exception(error_);
    if (cancelled()) throw Cancelled("the ingest pipeline was cancelled");
    const auto it = pending_.find(next_commit_);
    if (it != pending_.end() && it->second->batches_done == it->second->batches) {
      std::unique_ptr<Window> w = std::move(it->second);
      pending_.erase(it);
      ++next_commit_;
      --in_flight_;
      lock.unlock();
      changed_.notify_all();  // the reader may be waiting for room
      return w;
    }
    // Once packing is over every window is registered, so a missing next one was dropped by
    // stop(): those after it cannot be committed either.
    if (packing_done_ && it == pending_.end()) {
      finished = true;
      return nullptr;
    }
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && Clock::now() >= deadline) return nullptr;
  }
}

void IngestPipeline::stop() { stop_.store(true, std::memory_order_release); }

void IngestPipeline::fail(std::exception_ptr error) {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (error && !error_) error_ = error;
    cancelled_.store(true, std::memory_order_release);
  }
  stop_.store(true, std::memory_order_release);
  read_ring_.close();
  tokenized_ring_.close();
  batch_ring_.close();
  changed_.notify_all();
}

}  // namespace pipeline
}  // namespace ignite
