// Binds ignite::pipeline::IngestPipeline as ignite._engine.IngestPipeline: conversion only.
// Waits release the GIL; a batch's ids, mask and rows and a window's arrays are NumPy views of
// the native buffers, each keeping its owner (the batch or window object) alive.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.h"
#include "pipeline/ingest.h"
#include "pipeline/native_worker.h"
#include "reader_args.h"

namespace py = pybind11;

namespace ignite {
namespace {

using pipeline::Batch;
using pipeline::IngestPipeline;
using pipeline::Window;

using Clock = std::chrono::steady_clock;

// A scatter smaller than this (tens of microseconds of copying) is done holding the GIL.
constexpr py::ssize_t kScatterWithGil = 1 << 20;

Clock::duration seconds(double timeout) {
  if (std::isnan(timeout) || timeout < 0) throw InvalidArgument("timeout must be a number of seconds >= 0");
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::min(timeout, 1e6)));
}

// A 1-D or 2-D view of `data` whose base is `owner`.
template <typename T>
py::array_t<T> view(const T* data, std::vector<py::ssize_t> shape, const py::object& owner) {
  std::vector<py::ssize_t> strides(shape.size(), static_cast<py::ssize_t>(sizeof(T)));
  if (shape.size() == 2) strides[0] = shape[1] * static_cast<py::ssize_t>(sizeof(T));
  return py::array_t<T>(shape, strides, data, owner);
}

// The batch points into the pipeline's windows and buffer pool, so it must go before the
// reference that may be the pipeline's last: members are destroyed in reverse order, and the
// destructor says so explicitly.
struct PyBatch {
  py::object pipeline;
  std::unique_ptr<Batch> batch;

  PyBatch(std::unique_ptr<Batch> b, py::object owner) : pipeline(std::move(owner)), batch(std::move(b)) {}
  PyBatch(PyBatch&&) = default;
  PyBatch& operator=(PyBatch&&) = delete;
  ~PyBatch() { batch.reset(); }
};

struct PyWindow {
  std::unique_ptr<Window> window;
};

// HF tokenizers' ids for the texts the native tokenizer flags uncertain, from a Python callable
// (list[str] -> (int32 ids, int64 offsets n+1)); a Python error becomes an engine error here,
// with the GIL, so no Python object leaves this function.
void retokenize_with(const py::object& fn, const std::vector<std::string_view>& texts,
                     std::vector<std::vector<std::int32_t>>& out) {
  py::gil_scoped_acquire gil;
  try {
    py::list batch;
    for (const auto& t : texts) {
      PyObject* s = PyUnicode_DecodeUTF8(t.data(), static_cast<Py_ssize_t>(t.size()), "replace");
      if (!s) throw py::error_already_set();
      batch.append(py::reinterpret_steal<py::str>(s));
    }
    const auto result = fn(batch).cast<std::tuple<py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>,
                                                   py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>>>();
    const auto& ids = std::get<0>(result);
    const auto& offsets = std::get<1>(result);
    if (static_cast<std::size_t>(offsets.size()) != texts.size() + 1) {
      throw Error("retokenize: expected " + std::to_string(texts.size() + 1) + " offsets");
    }
    for (std::size_t i = 0; i < texts.size(); ++i) {
      out[i].assign(ids.data() + offsets.at(i), ids.data() + offsets.at(i + 1));
    }
  } catch (py::error_already_set& e) {
    throw Error(std::string("retokenize: ") + e.what());
  } catch (py::cast_error& e) {
    throw Error(std::string("retokenize: ") + e.what());
  }
}

class PyPipeline {
 public:
  PyPipeline(const std::vector<std::tuple<std::string, std::string, std::string, std::int32_t, std::uint64_t,
                                          std::uint64_t, std::optional<std::uint64_t>>>& files,
             const Tokenizer& tokenizer, std::size_t dim, const std::string& field,
             const std::optional<std::string>& id_field, std::size_t window_records, std::int64_t budget,
             std::int64_t max_rows, std::int64_t max_width, std::int64_t pad_multiple, const std::string& prefix,
             unsigned tokenizer_threads, unsigned packer_threads, std::int64_t first_window, std::int64_t first_row,
             std::size_t windows_in_flight, std::size_t batch_ring, py::object retokenize, std::size_t read_chunk,
             std::size_t max_line_bytes, py::object tokenizer_owner)
      : retokenize_(std::move(retokenize)), tokenizer_owner_(std::move(tokenizer_owner)) {
    pipeline::Options o;
    for (const auto& [path, compression, format, index, size, skip, max_lines] : files) {
      pipeline::InputFile file{path, parse_compression("IngestPipeline", compression),
                               parse_is_jsonl("IngestPipeline", format), index, size, skip};
      if (max_lines) file.max_lines = *max_lines;
      o.files.push_back(std::move(file));
    }
    o.field = field;
    o.id_field = id_field.value_or("");
    o.window_records = window_records;
    o.read_chunk = read_chunk;
    o.max_line_bytes = max_line_bytes;
    o.prefix = prefix;
    o.tokenizer_threads = tokenizer_threads;
    o.packer_threads = packer_threads;
    o.limits = {budget, max_rows, max_width, pad_multiple};
    o.dim = dim;
    o.first_window = first_window;
    o.first_row = first_row;
    o.windows_in_flight = windows_in_flight;
    o.batch_ring = batch_ring;
    if (!retokenize_.is_none()) {
      const py::object* fn = &retokenize_;  // outlives the pipeline (see the destructor)
      o.retokenize = [fn](const std::vector<std::string_view>& texts, std::vector<std::vector<std::int32_t>>& out) {
        retokenize_with(*fn, texts, out);
      };
    }
    py::gil_scoped_release nogil;
    pipeline_ = std::make_unique<IngestPipeline>(std::move(o), tokenizer);
  }

  // Without the GIL: a tokenizer thread may be waiting for it. Batches hold a reference to
  // this object, so none is left when the engine's pipeline (and its buffer pool) goes.
  ~PyPipeline() {
    py::gil_scoped_release nogil;
    pipeline_.reset();
  }

  // Cancels and joins, without the GIL; batches still out stay valid.
  void close() {
    py::gil_scoped_release nogil;
    pipeline_->close();
  }

  IngestPipeline& get() {
    if (!pipeline_) throw InvalidArgument("IngestPipeline: closed");
    return *pipeline_;
  }

  // next_batch, complete and next_committable_window keep the GIL when they need not wait: each
  // hand-over of the GIL costs up to a switch interval while another Python thread runs, and in
  // the steady state a batch (or a window) is ready. Safe, as no engine thread waits for the GIL
  // while holding what these take.
  py::object next_batch(const py::object& self, double timeout) {
    IngestPipeline& p = get();
    bool finished = false;
    std::unique_ptr<Batch> batch = p.next_batch(Clock::duration::zero(), finished);
    if (!batch && !finished) {
      py::gil_scoped_release nogil;
      batch = p.next_batch(seconds(timeout), finished);
    }
    if (finished) batches_finished_ = true;
    if (!batch) return py::none();
    return py::cast(PyBatch{std::move(batch), self});
  }

  void complete(PyBatch& b, const py::array_t<float, py::array::c_style | py::array::forcecast>& embeddings,
                const std::optional<py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>>& failed) {
    IngestPipeline& p = get();
    if (!b.batch) throw InvalidArgument("complete: empty batch");
    const auto rows = static_cast<py::ssize_t>(b.batch->size());
    if (embeddings.ndim() != 2 || embeddings.shape(0) != rows ||
        static_cast<std::size_t>(embeddings.shape(1)) != dim()) {
      throw InvalidArgument("complete: embeddings must be [" + std::to_string(rows) + ", " + std::to_string(dim()) +
                            "] float32");
    }
    const std::int64_t* failed_rows = failed ? failed->data() : nullptr;
    const std::size_t n_failed = failed ? static_cast<std::size_t>(failed->size()) : 0;
    if (embeddings.nbytes() < kScatterWithGil) {
      p.complete(*b.batch, embeddings.data(), failed_rows, n_failed);
      return;
    }
    py::gil_scoped_release nogil;
    p.complete(*b.batch, embeddings.data(), failed_rows, n_failed);
  }

  // The native worker loop for one slice of `timeout`, without the GIL throughout: (the batch the
  // backend failed on or None, its error, batches and records completed, seconds in the backend).
  py::tuple run_native(const py::object& self, pipeline::NativeBackend& backend, double timeout) {
    IngestPipeline& p = get();
    // Each worker thread's output buffer, kept across its slices (a plain vector, no Python).
    thread_local std::vector<float> out;
    pipeline::WorkSlice slice;
    {
      py::gil_scoped_release nogil;
      slice = pipeline::run_native_worker(p, backend, seconds(timeout), out);
    }
    if (slice.finished) batches_finished_ = true;
    py::object failed = py::none();
    if (slice.failed) failed = py::cast(PyBatch{std::move(slice.failed), self});
    return py::make_tuple(failed, slice.error, slice.batches, slice.records, slice.busy_seconds);
  }

  py::object next_window(double timeout) {
    IngestPipeline& p = get();
    bool finished = false;
    std::unique_ptr<Window> w = p.next_committable(Clock::duration::zero(), finished);
    if (!w && !finished) {
      py::gil_scoped_release nogil;
      w = p.next_committable(seconds(timeout), finished);
    }
    if (finished) finished_ = true;
    if (!w) return py::none();
    return py::cast(PyWindow{std::move(w)});
  }

  void stop() { get().stop(); }
  void cancel() { get().fail(nullptr); }
  std::size_t dim() const { return dim_; }
  void set_dim(std::size_t d) { dim_ = d; }
  bool finished() const { return finished_; }
  bool batches_finished() const { return batches_finished_; }
  std::size_t buffers_allocated() { return get().buffers_allocated(); }
  py::dict cpu_seconds() {
    IngestPipeline& p = get();
    py::dict out;
    out["reader"] = p.cpu_seconds(pipeline::Stage::kRead);
    out["tokenizer"] = p.cpu_seconds(pipeline::Stage::kTokenize);
    out["packer"] = p.cpu_seconds(pipeline::Stage::kPack);
    return out;
  }
  // Read by the metrics collector while the run goes on: atomics and ring sizes, no lock.
  py::dict stats() {
    IngestPipeline& p = get();
    using pipeline::Stage;
    const std::pair<const char*, Stage> stages[] = {
        {"reader", Stage::kRead}, {"tokenizer", Stage::kTokenize}, {"packer", Stage::kPack}};
    py::dict busy, threads, rings;
    for (const auto& [name, stage] : stages) {
      busy[name] = p.busy_seconds(stage);
      threads[name] = p.threads(stage);
    }
    for (const auto& level : p.ring_levels()) rings[level.name] = py::make_tuple(level.size, level.capacity);
    py::dict out;
    out["busy_seconds"] = busy;
    out["threads"] = threads;
    out["rings"] = rings;
    out["records_read"] = p.records_read();
    out["bytes_read"] = p.bytes_read();
    return out;
  }

 private:
  py::object retokenize_;
  py::object tokenizer_owner_;  // keeps the WordPieceTokenizer the pipeline reads alive
  std::unique_ptr<IngestPipeline> pipeline_;
  std::size_t dim_ = 0;
  bool finished_ = false;
  bool batches_finished_ = false;
};

}  // namespace

void bind_pipeline(py::module_& m) {
  py::list names;
  for (int i = 0; i < pipeline::kStatusCount; ++i) names.append(pipeline::status_name(static_cast<std::uint8_t>(i)));
  m.attr("STATUS_NAMES") = py::tuple(names);

  py::class_<PyBatch>(m, "IngestBatch", py::dynamic_attr(),
                      "Rows of one window, padded: input_ids and attention_mask [rows, width] int32, rows int64 "
                      "(rows of the window), window (its index). Views of pooled buffers, lent back when the "
                      "batch and its arrays are gone.")
      .def_property_readonly("input_ids",
                             [](py::object self) {
                               const Batch& b = *self.cast<PyBatch&>().batch;
                               return view<std::int32_t>(b.ids(), {static_cast<py::ssize_t>(b.size()), b.width}, self);
                             })
      .def_property_readonly("attention_mask",
                             [](py::object self) {
                               const Batch& b = *self.cast<PyBatch&>().batch;
                               return view<std::int32_t>(b.mask(), {static_cast<py::ssize_t>(b.size()), b.width}, self);
                             })
      .def_property_readonly("rows",
                             [](py::object self) {
                               const Batch& b = *self.cast<PyBatch&>().batch;
                               return view<std::int64_t>(b.rows.data(), {static_cast<py::ssize_t>(b.size())}, self);
                             })
      .def_property_readonly("window", [](const PyBatch& b) { return b.batch->window->index; })
      .def_property_readonly("real_tokens", [](const PyBatch& b) { return b.batch->real_tokens; })
      .def("__len__", [](const PyBatch& b) { return b.batch->size(); });

  py::class_<PyWindow>(m, "IngestWindow",
                       "A complete window in input order: embeddings [n, dim] float32, files int32, lines int64, "
                       "status uint8 (STATUS_NAMES), id_bytes uint8 + id_offsets int64 (n+1) + has_id uint8, and "
                       "the input position once it is committed.")
      .def_property_readonly("index", [](const PyWindow& w) { return w.window->index; })
      .def_property_readonly("start_row", [](const PyWindow& w) { return w.window->start_row; })
      .def("__len__", [](const PyWindow& w) { return w.window->size(); })
      .def_property_readonly("embeddings",
                             [](py::object self) {
                               const Window& w = *self.cast<PyWindow&>().window;
                               const auto n = static_cast<py::ssize_t>(w.size());
                               const auto dim = n ? static_cast<py::ssize_t>(w.embeddings.size()) / n : 0;
                               return view<float>(w.embeddings.data(), {n, dim}, self);
                             })
      .def_property_readonly("files",
                             [](py::object self) {
                               const Window& w = *self.cast<PyWindow&>().window;
                               return view<std::int32_t>(w.files.data(), {static_cast<py::ssize_t>(w.size())}, self);
                             })
      .def_property_readonly("lines",
                             [](py::object self) {
                               const Window& w = *self.cast<PyWindow&>().window;
                               return view<std::int64_t>(w.lines.data(), {static_cast<py::ssize_t>(w.size())}, self);
                             })
      .def_property_readonly("status",
                             [](py::object self) {
                               const Window& w = *self.cast<PyWindow&>().window;
                               return view<std::uint8_t>(w.status.data(), {static_cast<py::ssize_t>(w.size())}, self);
                             })
      .def_property_readonly("has_id",
                             [](py::object self) {
                               const Window& w = *self.cast<PyWindow&>().window;
                               return view<std::uint8_t>(w.has_id.data(), {static_cast<py::ssize_t>(w.size())}, self);
                             })
      .def_property_readonly("id_bytes",
                             [](py::object self) {
                               const Window& w = *self.cast<PyWindow&>().window;
                               return view<std::uint8_t>(reinterpret_cast<const std::uint8_t*>(w.id_bytes.data()),
                                                         {static_cast<py::ssize_t>(w.id_bytes.size())}, self);
                             })
      .def_property_readonly("id_offsets",
                             [](py::object self) {
                               const Window& w = *self.cast<PyWindow&>().window;
                               return view<std::int64_t>(w.id_offsets.data(),
                                                         {static_cast<py::ssize_t>(w.id_offsets.size())}, self);
                             })
      .def_property_readonly("end_file", [](const PyWindow& w) { return w.window->end_file; })
      .def_property_readonly("end_line", [](const PyWindow& w) { return w.window->end_line; })
      .def_property_readonly("end_records", [](const PyWindow& w) { return w.window->end_records; })
      .def_property_readonly("end_offset", [](const PyWindow& w) { return w.window->end_offset; })
      .def_property_readonly("end_done", [](const PyWindow& w) { return w.window->end_done; })
      .def_property_readonly("batches", [](const PyWindow& w) { return w.window->batches; })
      .def_property_readonly("real_tokens", [](const PyWindow& w) { return w.window->real_tokens; })
      .def_property_readonly("padded_tokens", [](const PyWindow& w) { return w.window->padded_tokens; })
      .def_property_readonly("damage", [](const PyWindow& w) {
        py::list out;
        for (const auto& d : w.window->damage) out.append(py::make_tuple(d.file, d.line, d.reason));
        return out;
      });

  py::class_<PyPipeline>(m, "IngestPipeline",
                         "Reader, tokenizer pool and packer in native threads: files -> padded batches for the "
                         "workers (next_batch, complete) -> complete windows in input order for the writer "
                         "(next_committable_window).")
      .def(py::init([](const std::vector<std::tuple<std::string, std::string, std::string, std::int32_t,
                                                    std::uint64_t, std::uint64_t, std::optional<std::uint64_t>>>&
                           files,
                       py::object tokenizer, std::size_t dim, const std::string& field,
                       const std::optional<std::string>& id_field, std::size_t window_records, std::int64_t budget,
                       std::int64_t max_rows, std::int64_t max_width, std::int64_t pad_multiple,
                       const std::string& prefix, unsigned tokenizer_threads, unsigned packer_threads,
                       std::int64_t first_window, std::int64_t first_row, std::size_t windows_in_flight,
                       std::size_t batch_ring, py::object retokenize, std::size_t read_chunk,
                       std::size_t max_line_bytes) {
             const Tokenizer& tok = tokenizer.cast<const Tokenizer&>();
             auto p = std::make_unique<PyPipeline>(files, tok, dim, field, id_field, window_records, budget, max_rows,
                                                   max_width, pad_multiple, prefix, tokenizer_threads, packer_threads,
                                                   first_window, first_row, windows_in_flight, batch_ring,
                                                   std::move(retokenize), read_chunk, max_line_bytes, tokenizer);
             p->set_dim(dim);
             return p;
           }),
           py::arg("files"), py::arg("tokenizer"), py::arg("dim"), py::arg("field") = "text",
           py::arg("id_field") = py::none(), py::arg("window_records") = 65536, py::arg("budget") = 65536,
           py::arg("max_rows") = 1024, py::arg("max_width") = 0, py::arg("pad_multiple") = 1,
           py::arg("prefix") = "", py::arg("tokenizer_threads") = 1, py::arg("packer_threads") = 1,
           py::arg("first_window") = 0, py::arg("first_row") = 0, py::arg("windows_in_flight") = 8,
           py::arg("batch_ring") = 16, py::arg("retokenize") = py::none(), py::arg("read_chunk") = 1 << 20,
           py::arg("max_line_bytes") = std::size_t{64} << 20,
           "`files`: (path, compression none|zstd|gzip, format jsonl|txt, file index, size, lines to skip) in "
           "order. `retokenize`: list[str] -> (int32 ids, int64 offsets) for texts the native tokenizer flags "
           "uncertain (None: keep its ids).")
      .def(
          "next_batch", [](py::object self, double timeout) { return self.cast<PyPipeline&>().next_batch(self, timeout); },
          py::arg("timeout") = 0.1,
          "The next IngestBatch, waiting up to `timeout` seconds without the GIL; None on timeout or once every "
          "batch was handed out (then batches_finished). Raises Cancelled once the run is cancelled.")
      .def("complete", &PyPipeline::complete, py::arg("batch"), py::arg("embeddings"), py::arg("failed") = py::none(),
           "Scatter a batch's [rows, dim] float32 embeddings into its window (GIL released); `failed`: positions "
           "in the batch whose records get status backend_error and zeros.")
      .def(
          "run_native",
          [](py::object self, pipeline::NativeBackend& backend, double timeout) {
            return self.cast<PyPipeline&>().run_native(self, backend, timeout);
          },
          py::arg("backend"), py::arg("timeout") = 0.1,
          "Run batches on a NativeBackend (take, run, complete) without the GIL or any Python until one fails, "
          "`timeout` seconds have passed (a batch under way is finished first) or none is left (then "
          "batches_finished). Returns (the failed IngestBatch, not completed, or None; its error; batches and "
          "records completed; seconds in the backend). Raises Cancelled once the run is cancelled.")
      .def("next_committable_window", &PyPipeline::next_window, py::arg("timeout") = 0.1,
           "The next complete IngestWindow in input order, waiting up to `timeout` seconds without the GIL; None "
           "on timeout or at the end (then finished). Re-raises a stage's error; Cancelled after cancel().")
      .def("stop", &PyPipeline::stop, "Stop reading; the windows read so far still come out.")
      .def("cancel", &PyPipeline::cancel, "Cancel the run: every wait returns at once with Cancelled.")
      .def("close", &PyPipeline::close, "Cancel and join the threads (the GIL released).")
      .def_property_readonly("finished", &PyPipeline::finished)
      .def_property_readonly("batches_finished", &PyPipeline::batches_finished)
      .def_property_readonly("buffers_allocated", &PyPipeline::buffers_allocated)
      .def("stats", &PyPipeline::stats,
           "Live counters: busy_seconds and threads by stage, rings {name: (items, capacity)}, records_read, "
           "bytes_read.")
      .def("cpu_seconds", &PyPipeline::cpu_seconds,
           "CPU seconds of the reader, tokenizer and packer threads, counted as each ends (final after close()).");
}

}  // namespace ignite
