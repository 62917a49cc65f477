// Binds ignite::trt::Session as ignite._engine.TrtSession: conversion only. Construction (which
// may build an engine for minutes) and every batch run with the GIL released; waits for a free
// slot come back for the GIL every 50 ms so Ctrl-C reaches them. Compiled only with TensorRT.
#include <NvInfer.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.h"
#include "trt/cuda_check.h"
#include "trt/logger.h"
#include "trt/session.h"
#include "trt/session_backend.h"

namespace py = pybind11;

namespace ignite {
namespace {

using IntArray = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>;
constexpr std::chrono::milliseconds kSignalCheck{50};

struct Batch {
  const std::int32_t* ids;
  const std::int32_t* mask;
  std::int64_t rows;
  std::int64_t seq;
};

Batch batch_of(const IntArray& ids, const IntArray& mask) {
  if (ids.ndim() != 2 || mask.ndim() != 2) throw InvalidArgument("input_ids and attention_mask must be 2-D [rows, seq]");
  if (ids.shape(0) != mask.shape(0) || ids.shape(1) != mask.shape(1)) {
    throw InvalidArgument("input_ids is [" + std::to_string(ids.shape(0)) + ", " + std::to_string(ids.shape(1)) +
                          "] but attention_mask is [" + std::to_string(mask.shape(0)) + ", " +
                          std::to_string(mask.shape(1)) + "]");
  }
  return {ids.data(), mask.data(), ids.shape(0), ids.shape(1)};
}

// Gives a slot back when the Python call that took it ends, however it ends.
struct SlotLease {
  trt::Session& session;
  int slot;
  ~SlotLease() { session.release(slot); }
};

// A free slot, waited for without the GIL in slices, checking for signals between them.
int acquire_slot(trt::Session& session) {
  for (;;) {
    std::optional<int> slot;
    {
      py::gil_scoped_release nogil;
      slot = session.acquire(kSignalCheck);
    }
    if (slot) return *slot;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

// The build's should_stop: true once a signal handler raised on the constructing thread (where
// the lock wait runs). Calls from TensorRT's own threads answer false and touch no Python.
std::function<bool()> signal_check() {
  const std::thread::id owner = std::this_thread::get_id();
  return [owner] {
    if (std::this_thread::get_id() != owner) return false;
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;  // leaves the exception set for make_session to raise
  };
}

std::unique_ptr<trt::Session> make_session(std::string onnx_path, std::string cache_dir, int device,
                                           std::string precision, std::int64_t max_batch_tokens,
                                           std::int64_t max_seq, std::vector<std::int64_t> buckets,
                                           std::int64_t max_rows, int slots, int opt_level, bool timing_cache,
                                           std::int64_t workspace_mb, bool strongly_typed) {
  if (workspace_mb < 0) throw InvalidArgument("workspace_mb must not be negative");
  trt::SessionOptions options;
  options.onnx_path = std::move(onnx_path);
  options.cache_dir = std::move(cache_dir);
  options.device = device;
  options.max_batch_tokens = max_batch_tokens;
  options.max_seq = max_seq;
  options.buckets = std::move(buckets);
  options.max_rows = max_rows;
  options.slots = slots;
  options.timing_cache = timing_cache;
  options.build.precision = std::move(precision);
  options.build.optimization_level = opt_level;
  options.build.workspace_bytes = static_cast<std::size_t>(workspace_mb) << 20;
  options.build.strongly_typed = strongly_typed;
  options.should_stop = signal_check();
  try {
    py::gil_scoped_release nogil;
    return std::make_unique<trt::Session>(std::move(options));
  } catch (const Cancelled&) {
    if (PyErr_Occurred()) throw py::error_already_set();  // KeyboardInterrupt, as Python raised it
    throw;
  }
}

py::array_t<float> run(trt::Session& session, const IntArray& ids, const IntArray& mask) {
  const Batch batch = batch_of(ids, mask);
  py::array_t<float> out({static_cast<py::ssize_t>(batch.rows), static_cast<py::ssize_t>(session.dim())});
  if (batch.rows == 0) return out;
  float* dst = out.mutable_data();
  SlotLease lease{session, acquire_slot(session)};
  {
    py::gil_scoped_release nogil;
    session.submit(lease.slot, batch.ids, batch.mask, batch.rows, batch.seq);
    session.wait(lease.slot, dst);
  }
  return out;
}

int submit(trt::Session& session, const IntArray& ids, const IntArray& mask) {
  const Batch batch = batch_of(ids, mask);
  if (batch.rows == 0) throw InvalidArgument("an empty batch has nothing to submit");
  const int slot = acquire_slot(session);
  try {
    py::gil_scoped_release nogil;
    session.submit(slot, batch.ids, batch.mask, batch.rows, batch.seq);
  } catch (...) {
    session.release(slot);
    throw;
  }
  return slot;
}

py::array_t<float> wait(trt::Session& session, int slot) {
  const std::int64_t rows = session.pending_rows(slot);
  if (rows == 0) throw InvalidArgument("slot " + std::to_string(slot) + " has no batch in flight");
  py::array_t<float> out({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(session.dim())});
  float* dst = out.mutable_data();
  SlotLease lease{session, slot};
  {
    py::gil_scoped_release nogil;
    session.wait(slot, dst);
  }
  return out;
}

}  // namespace

void bind_trt(py::module_& m) {
  py::object base = m.attr("EngineError");
  py::register_exception<trt::CudaError>(m, "CudaError", base);
  py::register_exception<trt::TensorRtError>(m, "TensorRTError", base);

  m.def("tensorrt_version", [] { return getInferLibVersion(); },
        "Version of the TensorRT library loaded (major * 10000 + minor * 100 + patch).");

  py::class_<trt::Session>(m, "TrtSession",
                           "A TensorRT engine for one ONNX graph on one GPU, cached on disk, with several batches "
                           "in flight. run() is thread-safe; submit()/wait() pipeline from one thread.")
      .def(py::init(&make_session), py::arg("onnx_path"), py::arg("cache_dir"), py::arg("device"),
           py::arg("precision"), py::arg("max_batch_tokens"), py::arg("max_seq"), py::arg("buckets"), py::kw_only(),
           py::arg("max_rows") = 1024, py::arg("slots") = 2, py::arg("opt_level") = 3, py::arg("timing_cache") = true,
           py::arg("workspace_mb") = 0, py::arg("strongly_typed") = false,
           "Load the engine cached for this graph, GPU, TensorRT version, precision and profiles, or build it "
           "(one build at a time per GPU model, across processes).")
      .def("run", &run, py::arg("input_ids"), py::arg("attention_mask"),
           "[rows, seq] int32 ids and mask -> [rows, dim] float32 pooled embeddings.")
      .def("submit", &submit, py::arg("input_ids"), py::arg("attention_mask"),
           "Queue a batch on a free slot (waiting for one) and return the slot; wait(slot) exactly once.")
      .def("wait", &wait, py::arg("slot"), "The [rows, dim] float32 output of the batch on `slot`; frees the slot.")
      .def(
          "native_backend",
          [](trt::Session& session) -> std::shared_ptr<pipeline::NativeBackend> {
            return std::make_shared<trt::SessionBackend>(session);
          },
          py::keep_alive<0, 1>(),
          "This session as a NativeBackend for IngestPipeline.run_native (workers with no Python per batch); "
          "it keeps the session alive.")
      .def_property_readonly("dim", &trt::Session::dim)
      .def_property_readonly("engine_path", &trt::Session::engine_path)
      .def_property_readonly("precision", &trt::Session::precision)
      .def_property_readonly("built", &trt::Session::built, "True if this session built the engine (no cache hit).")
      .def_property_readonly("slots", &trt::Session::slots)
      .def_property_readonly("device", &trt::Session::device)
      .def_property_readonly(
          "profiles",
          [](const trt::Session& session) {
            std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>> out;
            for (const auto& b : session.profiles().buckets) out.emplace_back(b.min_seq, b.max_seq, b.opt_rows, b.max_rows);
            return out;
          },
          "Per bucket: (min_seq, max_seq, opt_rows, max_rows).");
}

}  // namespace ignite
