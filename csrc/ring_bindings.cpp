// Binds ignite::BlockingRing<uint64_t> as ignite._engine.Ring: conversion only. Blocking calls
// release the GIL and wake every 50 ms to let Python deliver signals (Ctrl-C).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <optional>

#include "concurrency/ring.h"

namespace py = pybind11;

namespace ignite {
namespace {

using HandleRing = BlockingRing<std::uint64_t>;
constexpr auto kSlice = std::chrono::milliseconds(50);

struct RingClosedError : std::exception {
  const char* what() const noexcept override { return "ring is closed"; }
};

// Runs `attempt(slice)` with the GIL released until it stops timing out or `timeout` passes;
// None means wait forever. Between slices it checks for Python signals.
template <typename Attempt>
RingStatus wait_loop(std::optional<double> timeout, Attempt attempt) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    auto slice = std::chrono::duration_cast<std::chrono::steady_clock::duration>(kSlice);
    if (timeout) {
      const auto left = std::chrono::duration<double>(*timeout) - (std::chrono::steady_clock::now() - start);
      if (left <= std::chrono::duration<double>::zero()) slice = std::chrono::steady_clock::duration::zero();
      else if (left < slice) slice = std::chrono::duration_cast<std::chrono::steady_clock::duration>(left);
    }
    RingStatus status;
    {
      py::gil_scoped_release release;
      status = attempt(slice);
    }
    if (status != RingStatus::kTimeout) return status;
    if (timeout && std::chrono::steady_clock::now() - start >= std::chrono::duration<double>(*timeout)) {
      return RingStatus::kTimeout;
    }
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

}  // namespace

void bind_ring(py::module_& m) {
  static py::exception<RingClosedError> closed_exc(m, "RingClosed");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const RingClosedError& e) {
      PyErr_SetString(closed_exc.ptr(), e.what());
    }
  });

  py::class_<HandleRing>(m, "Ring", "Bounded lock-free MPMC ring of integer handles; blocking calls release the GIL.")
      .def(py::init<std::size_t>(), py::arg("capacity"))
      .def(
          "push",
          [](HandleRing& ring, std::uint64_t item, std::optional<double> timeout) {
            const auto status = wait_loop(timeout, [&](auto slice) { return ring.push(item, slice); });
            if (status == RingStatus::kClosed) throw RingClosedError();
            return status == RingStatus::kOk;
          },
          py::arg("item"), py::arg("timeout") = py::none(),
          "Queue `item`, waiting up to `timeout` seconds (None: forever). False on timeout; RingClosed if closed.")
      .def(
          "pop",
          [](HandleRing& ring, std::optional<double> timeout) -> std::optional<std::uint64_t> {
            std::uint64_t item = 0;
            const auto status = wait_loop(timeout, [&](auto slice) { return ring.pop(item, slice); });
            if (status == RingStatus::kClosed) throw RingClosedError();
            if (status == RingStatus::kTimeout) return std::nullopt;
            return item;
          },
          py::arg("timeout") = py::none(),
          "Next item, waiting up to `timeout` seconds. None on timeout; RingClosed once closed and drained.")
      .def(
          "try_push",
          [](HandleRing& ring, std::uint64_t item) {
            const auto status = ring.try_push(item);
            if (status == RingStatus::kClosed) throw RingClosedError();
            return status == RingStatus::kOk;
          },
          py::arg("item"))
      .def("try_pop",
           [](HandleRing& ring) -> std::optional<std::uint64_t> {
             std::uint64_t item = 0;
             const auto status = ring.try_pop(item);
             if (status == RingStatus::kClosed) throw RingClosedError();
             if (status == RingStatus::kTimeout) return std::nullopt;
             return item;
           })
      .def("close", &HandleRing::close, "Refuse new items; queued items can still be popped.")
      .def("__len__", &HandleRing::size)
      .def_property_readonly("capacity", &HandleRing::capacity)
      .def_property_readonly("closed", &HandleRing::closed);
}

}  // namespace ignite
