// Tests of engine/pipeline (the native ingest pipeline), run under ASan/UBSan and TSan: windows
// across many small files, every record exactly once and in order under random stage delays and
// several consumers; a stop, a cancellation and a failing worker or stage mid-run; the native
// worker loop with a backend that fails now and then, and cancelled under way; records parsed
// on the tokenizer threads exactly as the standalone reader parses them.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "pipeline/backend.h"
#include "pipeline/ingest.h"
#include "pipeline/recycler.h"
#include "pipeline/native_worker.h"
#include "reader/window_reader.h"
#include "tokenizer/tokenizer_json.h"

#include "check.h"

using ignite::pipeline::Batch;
using ignite::pipeline::IngestPipeline;
using ignite::pipeline::Options;
using ignite::pipeline::Stage;
using ignite::pipeline::Window;

namespace {

constexpr auto kWait = std::chrono::milliseconds(20);

// A BERT tokenizer.json whose vocabulary knows "a": "a a a" is [CLS] a a a [SEP].
const char* const kTokenizerJson = R"({"version": "1.0", "truncation": null, "padding": null,
  "added_tokens": [
    {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 3, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
  "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null,
                 "lowercase": true},
  "pre_tokenizer": {"type": "BertPreTokenizer"},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
               {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
    "pair": [], "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                   "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
  "decoder": null,
  "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
    "max_input_chars_per_word": 100, "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4}}})";

constexpr std::size_t kMaxLength = 16;

// One expected record: where it is, and the token count of its text (0: a bad record).
struct Expected {
  std::int32_t file;
  std::int64_t line;
  std::int64_t tokens;
};

struct Corpus {
  std::vector<ignite::pipeline::InputFile> files;
  std::vector<Expected> records;
};

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/ignite_test_ingest_" + std::to_string(::getpid()) + "_" + name;
}

// `n_files` JSONL files of 0..max_records records each (some empty), with blank lines and
// records that are not JSON among them.
Corpus make_corpus(std::mt19937& rng, int n_files, int max_records) {
  Corpus c;
  for (int f = 0; f < n_files; ++f) {
    std::string text;
    const int n = std::uniform_int_distribution<int>(0, max_records)(rng);
    std::int64_t line = 0;
    for (int r = 0; r < n; ++r) {
      ++line;
      const int roll = std::uniform_int_distribution<int>(0, 19)(rng);
      if (roll == 0) {
        text += "\n";  // blank: not a record
        continue;
      }
      if (roll == 1) {
        text += "not json\n";
        c.records.push_back({f, line, 0});
        continue;
      }
      const int words = std::uniform_int_distribution<int>(0, 20)(rng);
      std::string body;
      for (int w = 0; w < words; ++w) body += w ? " a" : "a";
      text += R"({"text": ")" + body + "\"}\n";
      c.records.push_back({f, line, std::min<std::int64_t>(words + 2, kMaxLength)});
    }
    const std::string path = temp_path("f" + std::to_string(f) + ".jsonl");
    std::ofstream(path, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
    c.files.push_back({path, ignite::reader::Compression::kNone, true, f, text.size(), 0});
  }
  return c;
}

void remove_corpus(const Corpus& c) {
  for (const auto& f : c.files) std::remove(f.path.c_str());
}

Options options_for(const Corpus& c, std::mt19937& rng) {
  Options o;
  o.files = c.files;
  o.window_records = std::uniform_int_distribution<std::size_t>(1, 40)(rng);
  o.tokenizer_threads = std::uniform_int_distribution<unsigned>(1, 3)(rng);
  o.packer_threads = std::uniform_int_distribution<unsigned>(1, 2)(rng);
  o.limits.budget = std::uniform_int_distribution<std::int64_t>(8, 96)(rng);
  o.limits.max_rows = std::uniform_int_distribution<std::int64_t>(1, 9)(rng);
  o.limits.pad_multiple = std::uniform_int_distribution<std::int64_t>(1, 8)(rng);
  o.limits.max_width = kMaxLength;
  o.dim = 2;
  o.windows_in_flight = std::uniform_int_distribution<std::size_t>(1, 6)(rng);
  o.batch_ring = std::uniform_int_distribution<std::size_t>(1, 8)(rng);
  return o;
}

void sleep_up_to(std::mt19937& rng, std::mutex& rng_mutex, int max_us) {
  int us = 0;
  {
    const std::lock_guard<std::mutex> lock(rng_mutex);
    us = std::uniform_int_distribution<int>(0, max_us)(rng);
  }
  std::this_thread::sleep_for(std::chrono::microseconds(us));
}

// Random delays of up to `max_us` in every stage, once per window (Options::probe). Must outlive
// the pipeline it is installed in.
struct StageDelays {
  StageDelays(unsigned seed, int max_us) : rng(seed), max_us(max_us) {}
  void install(Options& o) {
    o.probe = [this](Stage, std::int64_t) { sleep_up_to(rng, mutex, max_us); };
  }
  std::mt19937 rng;
  std::mutex mutex;
  int max_us;
};

// The test embedding of a row: [real tokens, 1] (dim 2), which check_windows expects.
void embed_rows(const std::int32_t* mask, std::int64_t rows, std::int64_t width, float* out) {
  for (std::int64_t j = 0; j < rows; ++j) {
    std::int64_t real = 0;
    for (std::int64_t k = 0; k < width; ++k) real += mask[j * width + k];
    out[j * 2] = static_cast<float>(real);
    out[j * 2 + 1] = 1.0f;
  }
}

// Workers: embed each batch as [real tokens of the row, 1]; `fail_after` batches in all, one
// worker fails the run instead (-1: never).
struct Workers {
  explicit Workers(IngestPipeline& p) : pipeline(p) {}
  IngestPipeline& pipeline;
  std::mt19937 rng{7};
  std::mutex rng_mutex;
  std::atomic<int> batches{0};
  int fail_after = -1;
  std::vector<std::thread> threads;

  void start(int n, int max_delay_us) {
    for (int t = 0; t < n; ++t) {
      threads.emplace_back([this, max_delay_us] {
        try {
          for (;;) {
            bool finished = false;
            std::unique_ptr<Batch> batch = pipeline.next_batch(kWait, finished);
            if (finished) return;
            if (!batch) continue;
            if (fail_after >= 0 && batches.fetch_add(1) == fail_after) {
              pipeline.fail(std::make_exception_ptr(ignite::Error("worker failed")));
              return;
            }
            sleep_up_to(rng, rng_mutex, max_delay_us);
            std::vector<float> out(batch->size() * 2);
            embed_rows(batch->mask(), static_cast<std::int64_t>(batch->size()), batch->width, out.data());
            pipeline.complete(*batch, out.data(), nullptr, 0);
          }
        } catch (const ignite::Cancelled&) {
        }
      });
    }
  }
  void join() {
    for (auto& t : threads) t.join();
  }
};

// The writer: windows in order; checks each record against the corpus. Returns the records seen.
std::size_t check_windows(IngestPipeline& pipeline, const Corpus& c, std::size_t& next_record,
                          std::int64_t& next_window, std::size_t stop_after_windows = SIZE_MAX) {
  std::size_t windows = 0;
  for (;;) {
    bool finished = false;
    std::unique_ptr<Window> w = pipeline.next_committable(kWait, finished);
    if (finished) return next_record;
    if (!w) continue;
    CHECK(w->index == next_window);
    CHECK(w->start_row == static_cast<std::int64_t>(next_record));
    ++next_window;
    for (std::size_t i = 0; i < w->size(); ++i, ++next_record) {
      if (next_record >= c.records.size()) {
        CHECK(!"more records than the corpus holds");
        return next_record;
      }
      const Expected& e = c.records[next_record];
      CHECK(w->files[i] == e.file);
      CHECK(w->lines[i] == e.line);
      CHECK((w->status[i] == 0) == (e.tokens > 0));
      CHECK(w->embeddings[i * 2] == static_cast<float>(e.tokens));
      CHECK(w->embeddings[i * 2 + 1] == (e.tokens > 0 ? 1.0f : 0.0f));
    }
    // The position may have moved on to later files without records here (empty ones).
    if (w->size()) {
      CHECK(w->end_file >= w->files.back());
      if (w->end_file == w->files.back()) CHECK(w->end_records > 0 && w->end_line == w->lines.back());
    }
    if (++windows == stop_after_windows) pipeline.stop();
  }
}

void test_every_record_once_in_order(const ignite::Tokenizer& tok) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 4; ++round) {
    const Corpus c = make_corpus(rng, 40, 30);
    Options o = options_for(c, rng);
    StageDelays delays(static_cast<unsigned>(round), 2000);
    delays.install(o);
    IngestPipeline pipeline(std::move(o), tok);
    Workers workers(pipeline);
    workers.start(3, 500);
    std::size_t next_record = 0;
    std::int64_t next_window = 0;
    check_windows(pipeline, c, next_record, next_window);
    workers.join();
    CHECK(next_record == c.records.size());
    remove_corpus(c);
  }
}

// One record as the standalone reader gives it, and the tokens the pipeline made of its text.
struct ParsedRecord {
  std::int32_t file = 0;
  std::int64_t line = 0;
  std::uint8_t status = 0;
  bool has_id = false;
  std::string id;
  std::string text;
  std::vector<std::int32_t> tokens;
};

// A JSONL line of each kind the parser tells apart: texts the vocabulary spells out, ids of every
// JSON type, JSON that is broken, not an object, lacks a member or has one of the wrong type,
// bytes that are not UTF-8, blank lines (no record) and lines over max_line_bytes.
std::string mixed_jsonl(std::mt19937& rng, int n_lines) {
  static const char* const kIds[] = {"\"s-1\"", "7", "-3", "1.5", "1e22", "123456789012345678901234567890",
                                     "null", "true", "[1, \"x\", {\"k\": 1, \"k\": 2}]", "{\"b\": 1, \"a\": [2.50]}",
                                     "\"esc\\\"aped\\u00e9\""};
  static const char* const kBad[] = {"{\"id\": 1, \"text\": \"a b", "not json", "123", "[\"text\"]",
                                     "{\"id\": 2}", "{\"id\": 3, \"text\": 5}", "{\"id\": 4, \"text\": null}",
                                     "{\"text\": \"a c\"}", "{\"id\": 5, \"text\": \"\xff\xfe\"}", "", "   \t",
                                     "{\"id\": 6, \"text\": {\"a\": \"b\"}}", "{\"id\": 7, \"text\": \"a\\u0062 \\n c\"}",
                                     "{\"id\": 8, \"text\": \"a\", \"text\": \"d d\"}"};
  static const char* const kWords[] = {"a", "b", "c", "d", "zz"};
  std::string out;
  for (int i = 0; i < n_lines; ++i) {
    const int roll = std::uniform_int_distribution<int>(0, 9)(rng);
    if (roll < 3) {
      out += kBad[std::uniform_int_distribution<std::size_t>(0, std::size(kBad) - 1)(rng)];
    } else if (roll == 3 && i % 7 == 0) {
      out += "{\"id\": 9, \"text\": \"" + std::string(5000, 'a') + "\"}";  // over max_line_bytes and read_chunk
    } else {
      std::string text;
      const int words = std::uniform_int_distribution<int>(0, 8)(rng);
      for (int w = 0; w < words; ++w) {
        text += w ? " " : "";
        text += kWords[std::uniform_int_distribution<std::size_t>(0, std::size(kWords) - 1)(rng)];
      }
      const char* id = kIds[std::uniform_int_distribution<std::size_t>(0, std::size(kIds) - 1)(rng)];
      out += std::string("{\"id\": ") + id + ", \"text\": \"" + text + "\"}";
    }
    out += i % 5 == 0 ? "\r\n" : "\n";
  }
  return out;
}

// What WindowReader, parsing inline, makes of the files (tokens from the tokenizer directly).
std::vector<ParsedRecord> read_standalone(const Options& o, const ignite::Tokenizer& tok) {
  std::vector<ParsedRecord> out;
  for (const auto& file : o.files) {
    ignite::reader::ReaderOptions ro;
    ro.path = file.path;
    ro.jsonl = file.jsonl;
    ro.field = o.field;
    ro.id_field = o.id_field;
    ro.read_chunk = o.read_chunk;
    ro.max_line_bytes = o.max_line_bytes;
    ignite::reader::WindowReader reader(ro);
    ignite::reader::RecordWindow w;
    while (reader.next(w)) {
      CHECK(!w.raw);
      const ignite::TextArena texts{w.text.data(), w.text.size(), w.text_offsets.data(), w.size()};
      for (std::size_t r = 0; r < w.size(); ++r) {
        ParsedRecord p;
        p.file = file.index;
        p.line = w.lines[r];
        p.status = w.status[r];
        p.has_id = w.has_id[r] != 0;
        p.id.assign(w.id_bytes, static_cast<std::size_t>(w.id_offsets[r]),
                    static_cast<std::size_t>(w.id_offsets[r + 1] - w.id_offsets[r]));
        p.text.assign(w.text, static_cast<std::size_t>(w.text_offsets[r]),
                      static_cast<std::size_t>(w.text_offsets[r + 1] - w.text_offsets[r]));
        if (p.status == 0) {
          const std::int64_t row = static_cast<std::int64_t>(r);
          const ignite::TokenizedBatch tb = tok.encode_rows(texts, &row, 1, o.prefix, 1);
          p.tokens = tb.ids;
        }
        out.push_back(std::move(p));
      }
    }
  }
  return out;
}

// The pipeline's records: ids, statuses and positions from the committed windows, tokens from the
// batches (one worker), keyed by output row.
std::vector<ParsedRecord> read_pipeline(Options o, const ignite::Tokenizer& tok) {
  IngestPipeline pipeline(std::move(o), tok);
  std::mutex tokens_mutex;
  std::map<std::int64_t, std::vector<std::int32_t>> tokens_by_row;
  std::thread worker([&] {
    try {
      for (;;) {
        bool finished = false;
        std::unique_ptr<Batch> batch = pipeline.next_batch(kWait, finished);
        if (finished) return;
        if (!batch) continue;
        const auto width = static_cast<std::size_t>(batch->width);
        for (std::size_t j = 0; j < batch->size(); ++j) {
          std::vector<std::int32_t> ids;
          for (std::size_t k = 0; k < width && batch->mask()[j * width + k]; ++k) ids.push_back(batch->ids()[j * width + k]);
          const std::lock_guard<std::mutex> lock(tokens_mutex);
          tokens_by_row[batch->window->start_row + batch->rows[j]] = std::move(ids);
        }
        const std::vector<float> out(batch->size() * 2, 0.0f);
        pipeline.complete(*batch, out.data(), nullptr, 0);
      }
    } catch (const ignite::Cancelled&) {
    }
  });
  std::vector<ParsedRecord> out;
  std::int64_t windows = 0;
  for (;;) {
    bool finished = false;
    std::unique_ptr<Window> w = pipeline.next_committable(kWait, finished);
    if (finished) break;
    if (!w) continue;
    ++windows;
    CHECK(w->raw.empty());
    for (std::size_t r = 0; r < w->size(); ++r) {
      ParsedRecord p;
      p.file = w->files[r];
      p.line = w->lines[r];
      p.status = w->status[r];
      p.has_id = w->has_id[r] != 0;
      p.id.assign(w->id_bytes, static_cast<std::size_t>(w->id_offsets[r]),
                  static_cast<std::size_t>(w->id_offsets[r + 1] - w->id_offsets[r]));
      out.push_back(std::move(p));
    }
  }
  worker.join();
  CHECK(windows >= 2);
  const std::lock_guard<std::mutex> lock(tokens_mutex);
  for (auto& [row, ids] : tokens_by_row) {
    if (row < 0 || static_cast<std::size_t>(row) >= out.size()) {
      CHECK(!"tokens for a row past the records");
      continue;
    }
    out[static_cast<std::size_t>(row)].tokens = std::move(ids);
  }
  return out;
}

// The pipeline defers JSON parsing to its tokenizer threads; what comes out must be what the
// standalone reader parses inline: statuses, ids, lines, and texts (through their tokens), with
// a text file between the JSONL ones so windows mix parsed and raw records.
void test_parse_matches_standalone_reader() {
  std::string json = kTokenizerJson;
  const std::string vocab_end = "\"a\": 4}";
  json.replace(json.find(vocab_end), vocab_end.size(), "\"a\": 4, \"b\": 5, \"c\": 6, \"d\": 7}");
  const ignite::Tokenizer tok = ignite::parse_tokenizer_json(json, kMaxLength, "test");
  std::mt19937 rng(2024);
  Options o;
  const bool jsonl[] = {true, false, true};
  for (int f = 0; f < 3; ++f) {
    const std::string text = jsonl[f] ? mixed_jsonl(rng, 120) : "a b\nc \xff d\n\nzz a\n";
    const std::string path = temp_path("mixed" + std::to_string(f) + (jsonl[f] ? ".jsonl" : ".txt"));
    std::ofstream(path, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
    o.files.push_back({path, ignite::reader::Compression::kNone, jsonl[f], f, text.size(), 0});
  }
  o.id_field = "id";
  o.prefix = "b ";
  o.read_chunk = 4096;  // chunk ends fall inside the long lines, so they come out too long
  o.max_line_bytes = 300;
  o.window_records = 13;
  o.tokenizer_threads = 2;
  o.limits.budget = 64;
  o.limits.max_width = kMaxLength;
  o.dim = 2;
  const std::vector<ParsedRecord> want = read_standalone(o, tok);
  const std::vector<ParsedRecord> got = read_pipeline(o, tok);
  CHECK(got.size() == want.size());
  int statuses_seen[ignite::reader::kStatusCount] = {};
  for (std::size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const ParsedRecord &g = got[i], &e = want[i];
    CHECK(g.file == e.file);
    CHECK(g.line == e.line);
    CHECK(g.status == e.status);
    CHECK(g.has_id == e.has_id);
    CHECK(g.id == e.id);
    CHECK(g.tokens == e.tokens);
    if (e.status < ignite::reader::kStatusCount) ++statuses_seen[e.status];
  }
  // The inputs hold every status the reader gives.
  for (int s = 0; s < ignite::reader::kStatusCount; ++s) CHECK(statuses_seen[s] > 0);
  for (const auto& f : o.files) std::remove(f.path.c_str());
}

// The live counters are read by a collector thread while the stages run (TSan sees any race);
// once done they account for every input byte and record, and no stage was busy longer than the
// run lasted on its threads.
void test_live_counters(const ignite::Tokenizer& tok) {
  std::mt19937 rng(99);
  const Corpus c = make_corpus(rng, 12, 30);
  Options o = options_for(c, rng);
  o.tokenizer_threads = 2;
  // A slow tokenizer probe (outside the busy clock) spreads the run over time for the collector.
  o.probe = [](Stage stage, std::int64_t) {
    if (stage == Stage::kTokenize) std::this_thread::sleep_for(std::chrono::microseconds(300));
  };
  std::uint64_t total_bytes = 0;
  for (const auto& f : c.files) total_bytes += f.size;
  const auto begin = std::chrono::steady_clock::now();
  IngestPipeline pipeline(std::move(o), tok);
  std::atomic<bool> done{false};
  std::int64_t last_bytes = 0;
  bool monotonic = true;
  std::thread collector([&] {
    while (!done.load()) {
      const std::int64_t bytes = pipeline.bytes_read();
      monotonic = monotonic && bytes >= last_bytes;
      last_bytes = bytes;
      for (const auto& level : pipeline.ring_levels()) CHECK(level.size <= level.capacity);
      for (const Stage s : {Stage::kRead, Stage::kTokenize, Stage::kPack}) CHECK(pipeline.busy_seconds(s) >= 0.0);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  Workers workers(pipeline);
  workers.start(2, 200);
  std::size_t next_record = 0;
  std::int64_t next_window = 0;
  check_windows(pipeline, c, next_record, next_window);
  workers.join();
  done.store(true);
  collector.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  CHECK(monotonic);
  CHECK(next_record == c.records.size());
  CHECK(pipeline.bytes_read() == static_cast<std::int64_t>(total_bytes));
  CHECK(pipeline.records_read() == static_cast<std::int64_t>(c.records.size()));
  CHECK(pipeline.threads(Stage::kTokenize) == 2);
  CHECK(pipeline.threads(Stage::kRead) == 1);
  for (const Stage s : {Stage::kRead, Stage::kTokenize, Stage::kPack}) {
    CHECK(pipeline.busy_seconds(s) > 0.0);
    CHECK(pipeline.busy_seconds(s) <= wall * pipeline.threads(s) + 1e-3);
  }
  remove_corpus(c);
}

// Many one-record files batch like one file: windows fill up across file boundaries.
void test_small_files_share_windows(const ignite::Tokenizer& tok) {
  Corpus c;
  for (int f = 0; f < 200; ++f) {
    const std::string text = "{\"text\": \"a a\"}\n";
    const std::string path = temp_path("one" + std::to_string(f) + ".jsonl");
    std::ofstream(path, std::ios::binary) << text;
    c.files.push_back({path, ignite::reader::Compression::kNone, true, f, text.size(), 0});
    c.records.push_back({f, 1, 4});
  }
  Options o;
  o.files = c.files;
  o.window_records = 64;
  o.limits.budget = 64 * 4;
  o.dim = 2;
  IngestPipeline pipeline(std::move(o), tok);
  Workers workers(pipeline);
  workers.start(1, 0);
  std::size_t windows = 0, batches = 0;
  for (;;) {
    bool finished = false;
    auto w = pipeline.next_committable(kWait, finished);
    if (finished) break;
    if (!w) continue;
    ++windows;
    batches += w->batches;
  }
  workers.join();
  CHECK(windows == 4);  // 64 + 64 + 64 + 8 records
  CHECK(batches == 4);
  remove_corpus(c);
}

// A resumed run starts at a line of a file, with the window and row numbering it left off at.
void test_resume_position(const ignite::Tokenizer& tok) {
  std::mt19937 rng(99);
  Corpus c = make_corpus(rng, 3, 30);
  const std::int64_t skip = c.records.size() > 5 ? c.records[4].line : 0;
  Options o;
  o.files = c.files;
  o.files[0].skip_lines = static_cast<std::uint64_t>(skip);
  o.window_records = 8;
  o.dim = 2;
  o.first_window = 5;
  o.first_row = 100;
  std::size_t first = 0;
  while (first < c.records.size() && c.records[first].file == 0 && c.records[first].line <= skip) ++first;
  IngestPipeline pipeline(std::move(o), tok);
  Workers workers(pipeline);
  workers.start(2, 0);
  std::int64_t window = 5;
  std::size_t seen = 0;
  for (;;) {
    bool finished = false;
    auto w = pipeline.next_committable(kWait, finished);
    if (finished) break;
    if (!w) continue;
    CHECK(w->index == window++);
    CHECK(w->start_row == 100 + static_cast<std::int64_t>(seen));
    for (std::size_t i = 0; i < w->size(); ++i, ++seen) {
      CHECK(first + seen < c.records.size() && w->lines[i] == c.records[first + seen].line);
    }
  }
  workers.join();
  CHECK(first + seen == c.records.size());
  remove_corpus(c);
}

// stop(): reading ends, the windows in flight commit in order, then the writer hears the end.
void test_stop_commits_a_prefix(const ignite::Tokenizer& tok) {
  std::mt19937 rng(5);
  const Corpus c = make_corpus(rng, 60, 30);
  Options o = options_for(c, rng);
  o.window_records = 10;
  StageDelays delays(3, 1000);
  delays.install(o);
  IngestPipeline pipeline(std::move(o), tok);
  Workers workers(pipeline);
  workers.start(2, 200);
  std::size_t next_record = 0;
  std::int64_t next_window = 0;
  check_windows(pipeline, c, next_record, next_window, 3);
  workers.join();
  CHECK(next_record >= 30);  // three whole windows at least
  CHECK(next_record < c.records.size());
  remove_corpus(c);
}

// A worker fails mid-run: the writer gets its error; nothing hangs; what was committed before is
// in order.
void test_failing_worker(const ignite::Tokenizer& tok) {
  std::mt19937 rng(77);
  const Corpus c = make_corpus(rng, 40, 30);
  Options o = options_for(c, rng);
  IngestPipeline pipeline(std::move(o), tok);
  Workers workers(pipeline);
  workers.fail_after = 5;
  workers.start(3, 100);
  std::size_t next_record = 0;
  std::int64_t next_window = 0;
  bool got = false;
  try {
    check_windows(pipeline, c, next_record, next_window);
  } catch (const ignite::Error& e) {
    got = std::string(e.what()) == "worker failed";
  }
  workers.join();
  CHECK(got);
  CHECK(pipeline.cancelled());
  remove_corpus(c);
}

// A stage that throws (here the tokenizer on window 3) cancels the run; its error reaches the
// writer.
void test_failing_stage(const ignite::Tokenizer& tok) {
  std::mt19937 rng(8);
  const Corpus c = make_corpus(rng, 40, 30);
  Options o = options_for(c, rng);
  o.window_records = 5;
  o.probe = [](Stage stage, std::int64_t window) {
    if (stage == Stage::kTokenize && window == 3) throw std::runtime_error("tokenizer broke");
  };
  IngestPipeline pipeline(std::move(o), tok);
  Workers workers(pipeline);
  workers.start(2, 0);
  std::size_t next_record = 0;
  std::int64_t next_window = 0;
  bool got = false;
  try {
    check_windows(pipeline, c, next_record, next_window);
  } catch (const std::runtime_error& e) {
    got = std::string(e.what()) == "tokenizer broke";
  }
  workers.join();
  CHECK(got);
  CHECK(next_window <= 3);  // window 3 never completes, so none after it commits
  remove_corpus(c);
}

// Cancelled mid-run, with batches still held by a worker and windows unread: every wait returns
// Cancelled and the destructor joins without hanging or leaking (ASan).
void test_cancel_mid_run(const ignite::Tokenizer& tok) {
  std::mt19937 rng(11);
  const Corpus c = make_corpus(rng, 40, 30);
  Options o = options_for(c, rng);
  o.window_records = 4;
  auto pipeline = std::make_unique<IngestPipeline>(std::move(o), tok);
  std::unique_ptr<Batch> held;
  bool finished = false;
  while (!held && !finished) held = pipeline->next_batch(kWait, finished);
  pipeline->fail(nullptr);
  bool cancelled = false;
  try {
    pipeline->next_committable(kWait, finished);
  } catch (const ignite::Cancelled&) {
    cancelled = true;
  }
  CHECK(cancelled);
  cancelled = false;
  try {
    pipeline->next_batch(kWait, finished);
  } catch (const ignite::Cancelled&) {
    cancelled = true;
  }
  CHECK(cancelled);
  pipeline->close();
  held.reset();  // its buffers go back to the (still alive) pool
  pipeline.reset();
  remove_corpus(c);
}

// A native backend embedding as embed_rows after a random delay, throwing on about one batch in
// `fail_one_in` (0: never); thread-safe, as the loop's workers call it at once.
class FlakyBackend final : public ignite::pipeline::NativeBackend {
 public:
  FlakyBackend(unsigned seed, int max_delay_us, int fail_one_in)
      : rng_(seed), max_delay_us_(max_delay_us), fail_one_in_(fail_one_in) {}
  std::int64_t dim() const override { return 2; }
  void run(const std::int32_t*, const std::int32_t* mask, std::int64_t rows, std::int64_t width,
           float* out) override {
    bool fail = false;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      fail = fail_one_in_ > 0 && std::uniform_int_distribution<int>(1, fail_one_in_)(rng_) == 1;
    }
    sleep_up_to(rng_, mutex_, max_delay_us_);
    if (fail) throw ignite::Error("flaky backend");
    embed_rows(mask, rows, width, out);
  }

 private:
  std::mt19937 rng_;
  std::mutex mutex_;
  int max_delay_us_;
  int fail_one_in_;
};

// Native workers in slices of random length, as the Python workers call them: each failed batch
// comes back untouched and the caller embeds it itself (as its retry would); every record comes
// out exactly once and in order, counted once by the slices or the caller.
struct NativeWorkers {
  NativeWorkers(IngestPipeline& p, ignite::pipeline::NativeBackend& b) : pipeline(p), backend(b) {}
  IngestPipeline& pipeline;
  ignite::pipeline::NativeBackend& backend;
  std::atomic<std::int64_t> records{0};  // embedded: by the loop, or by the caller after a failure
  std::atomic<int> failures{0};
  std::atomic<int> cancelled{0};
  std::vector<std::thread> threads;

  void start(int n) {
    for (int t = 0; t < n; ++t) {
      threads.emplace_back([this, t] {
        std::mt19937 rng(static_cast<unsigned>(t));
        std::vector<float> out;
        try {
          for (;;) {
            const auto timeout = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 3000)(rng));
            ignite::pipeline::WorkSlice slice = run_native_worker(pipeline, backend, timeout, out);
            records += slice.records;
            CHECK(slice.busy_seconds >= 0);
            if (slice.failed) {
              ++failures;
              CHECK(slice.error == "flaky backend");
              CHECK(!slice.failed->completed);
              CHECK(!slice.finished);
              std::vector<float> again(slice.failed->size() * 2);
              embed_rows(slice.failed->mask(), static_cast<std::int64_t>(slice.failed->size()), slice.failed->width,
                         again.data());
              pipeline.complete(*slice.failed, again.data(), nullptr, 0);
              records += static_cast<std::int64_t>(slice.failed->size());
            }
            if (slice.finished) return;
          }
        } catch (const ignite::Cancelled&) {
          ++cancelled;
        }
      });
    }
  }
  void join() {
    for (auto& t : threads) t.join();
  }
};

void test_native_workers(const ignite::Tokenizer& tok) {
  std::mt19937 rng(4321);
  for (int round = 0; round < 4; ++round) {
    const Corpus c = make_corpus(rng, 40, 30);
    Options o = options_for(c, rng);
    StageDelays delays(static_cast<unsigned>(round), 1000);
    delays.install(o);
    IngestPipeline pipeline(std::move(o), tok);
    FlakyBackend backend(static_cast<unsigned>(round), 300, 5);
    NativeWorkers workers(pipeline, backend);
    workers.start(3);
    std::size_t next_record = 0;
    std::int64_t next_window = 0;
    check_windows(pipeline, c, next_record, next_window);
    workers.join();
    CHECK(next_record == c.records.size());
    std::int64_t good = 0;
    for (const auto& e : c.records) good += e.tokens > 0;
    CHECK(workers.records == good);
    CHECK(workers.failures > 0);
    CHECK(workers.cancelled == 0);
    remove_corpus(c);
  }
}

// Cancelled while native workers run: each leaves with Cancelled, none hangs, nothing leaks.
void test_native_workers_cancelled(const ignite::Tokenizer& tok) {
  std::mt19937 rng(77);
  const Corpus c = make_corpus(rng, 40, 30);
  Options o = options_for(c, rng);
  o.window_records = 4;
  IngestPipeline pipeline(std::move(o), tok);
  FlakyBackend backend(3, 200, 0);
  NativeWorkers workers(pipeline, backend);
  workers.start(3);
  bool finished = false;
  for (int windows = 0; windows < 3 && !finished;) windows += pipeline.next_committable(kWait, finished) != nullptr;
  pipeline.fail(nullptr);
  workers.join();
  CHECK(workers.cancelled == 3);
  pipeline.close();
  remove_corpus(c);
}

// Window embedding buffers come back to the pool and are handed out again (the smallest that
// fits), at most `keep` wait, and a buffer outlives the pool's last other owner.
void test_embedding_pool() {
  using ignite::pipeline::EmbeddingPool;
  auto pool = std::make_shared<EmbeddingPool>(2);
  const float* first = nullptr;
  {
    EmbeddingPool::Buffer a = pool->acquire(100);
    CHECK(a.size() == 100 && a[0] == 0.0f && a[99] == 0.0f);  // new: zeros
    a[0] = 7.0f;
    first = a.data();
  }
  {
    EmbeddingPool::Buffer b = pool->acquire(60);  // fits the returned block: the same memory, as left
    CHECK(b.data() == first && b.size() == 60 && b[0] == 7.0f);
    EmbeddingPool::Buffer c = pool->acquire(200);  // none fits: a new one
    CHECK(c.data() != first);
    EmbeddingPool::Buffer d = pool->acquire(10);
    EmbeddingPool::Buffer moved = std::move(d);
    CHECK(d.data() == nullptr && d.size() == 0 && moved.size() == 10);
  }
  CHECK(pool->allocated() == 3);  // three came back; two are kept
  EmbeddingPool::Buffer x = pool->acquire(10), y = pool->acquire(10), z = pool->acquire(10);
  CHECK(pool->allocated() == 4);
  pool.reset();  // the buffers keep the pool alive until they go
  x[0] = 1.0f;
}

// An emptied arena comes back cleared with its memory; refill hands a larger one to a smaller
// arena only; at most `keep` wait; an arena that never allocated is not kept.
void test_recycler() {
  using ignite::pipeline::Recycler;
  Recycler<std::string> texts(2);
  CHECK(texts.take().capacity() == std::string().capacity());
  std::string big(1000, 'x');
  const char* memory = big.data();
  texts.give(std::move(big));
  std::string small = "tiny";
  texts.give(std::move(small));  // nothing allocated (a string's own buffer): not kept
  CHECK(texts.waiting() == 1);
  std::string arena(10, 'y');
  texts.refill(arena);
  CHECK(arena.data() == memory && arena.empty() && arena.capacity() >= 1000 && texts.waiting() == 0);
  texts.give(std::string(2000, 'z'));
  texts.refill(arena);  // the waiting one is larger: swapped in
  CHECK(arena.capacity() >= 2000 && texts.waiting() == 0);
  texts.give(std::string(100, 'a'));
  texts.refill(arena);  // the waiting one is smaller: left waiting
  CHECK(arena.capacity() >= 2000 && texts.waiting() == 1);

  Recycler<std::vector<std::int32_t>> tokens(2);
  for (int i = 0; i < 3; ++i) tokens.give(std::vector<std::int32_t>(64, i));
  CHECK(tokens.waiting() == 2);
  const std::vector<std::int32_t> reused = tokens.take();
  CHECK(reused.empty() && reused.capacity() >= 64 && tokens.waiting() == 1);
}

// NullBackend writes zeros and, with a fail token, throws on a batch holding it; a backend whose
// dim is not the pipeline's is refused before any batch is taken.
void test_null_backend(const ignite::Tokenizer& tok) {
  ignite::pipeline::NullBackend null(3, 4);
  const std::int32_t ids[] = {2, 5, 3, 0, 2, 4, 4, 3};
  const std::int32_t mask[] = {1, 1, 1, 0, 1, 1, 1, 1};
  std::vector<float> out(6, 1.0f);
  null.run(ids, mask, 1, 4, out.data());
  CHECK(out[0] == 0.0f && out[2] == 0.0f && out[3] == 1.0f);
  bool threw = false;
  try {
    null.run(ids, mask, 2, 4, out.data());
  } catch (const ignite::Error&) {
    threw = true;
  }
  CHECK(threw);
  CHECK(ignite_test::throws_invalid([] { ignite::pipeline::NullBackend bad(0); }));

  std::mt19937 rng(5);
  const Corpus c = make_corpus(rng, 4, 10);
  Options o = options_for(c, rng);
  IngestPipeline pipeline(std::move(o), tok);
  std::vector<float> buffer;
  CHECK(ignite_test::throws_invalid([&] { run_native_worker(pipeline, null, kWait, buffer); }));
  pipeline.close();
  remove_corpus(c);
}

void test_refusals(const ignite::Tokenizer& tok) {
  Options o;
  o.dim = 0;
  CHECK(ignite_test::throws_invalid([&] { IngestPipeline p(o, tok); }));
  o.dim = 2;
  o.limits.max_width = kMaxLength - 1;  // narrower than the tokenizer's longest output
  CHECK(ignite_test::throws_invalid([&] { IngestPipeline p(o, tok); }));
  o.limits.max_width = 0;
  o.files.push_back({temp_path("missing.jsonl"), ignite::reader::Compression::kNone, true, 0, 0, 0});
  IngestPipeline p(o, tok);
  bool not_found = false;
  try {
    bool finished = false;
    while (!finished) p.next_committable(kWait, finished);
  } catch (const ignite::NotFound&) {
    not_found = true;
  }
  CHECK(not_found);
}

}  // namespace

int main() {
  const ignite::Tokenizer tok = ignite::parse_tokenizer_json(kTokenizerJson, kMaxLength, "test");
  test_every_record_once_in_order(tok);
  test_live_counters(tok);
  test_small_files_share_windows(tok);
  test_resume_position(tok);
  test_stop_commits_a_prefix(tok);
  test_failing_worker(tok);
  test_failing_stage(tok);
  test_cancel_mid_run(tok);
  test_native_workers(tok);
  test_native_workers_cancelled(tok);
  test_null_backend(tok);
  test_embedding_pool();
  test_recycler();
  test_refusals(tok);
  test_parse_matches_standalone_reader();
  return ignite_test::finish("test_ingest");
}
