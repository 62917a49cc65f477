// Binds ignite::BlockingRing<uint64_t> as ignite._engine.Ring: conversion only. Blocking calls
// release the GIL and come back for it every 50 ms so Python can deliver signals (Ctrl-C).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>

#include "concurrency/ring.h"
#include "core/error.h"

namespace py = pybind11;

namespace ignite {
namespace {

using HandleRing = BlockingRing<std::uint64_t>;
using Clock = std::chrono::steady_clock;
constexpr Clock::duration kSignalCheck = std::chrono::milliseconds(50);

struct RingClosedError : std::exception {
  const char* what() const noexcept override { return "ring is closed"; }
};

// Calls `attempt(slice)` without the GIL until it stops timing out or `timeout` seconds pass
// (None: no limit), checking for Python signals between slices.
template <typename Attempt>
RingStatus wait_in_slices(std::optional<double> timeout, Attempt attempt) {
  if (timeout && std::isnan(*timeout)) throw InvalidArgument("timeout must be a number of seconds or None");
  // Beyond ~30 years a deadline would overflow the clock; treat it as no limit.
  const bool bounded = timeout && *timeout < 1e9;
  const auto deadline = bounded ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                     std::chrono::duration<double>(std::max(0.0, *timeout)))
                                : Clock::time_point::max();
  for (;;) {
    const auto slice = std::clamp(deadline - Clock::now(), Clock::duration::zero(), kSignalCheck);
    RingStatus status;
    {
      py::gil_scoped_release nogil;
      status = attempt(slice);
    }
    if (status != RingStatus::kTimeout || Clock::now() >= deadline) return status;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

// kClosed becomes RingClosed; the Python API reports timeouts as False/None.
RingStatus raise_if_closed(RingStatus status) {
  if (status == RingStatus::kClosed) throw RingClosedError();
  return status;
}

std::optional<std::uint64_t> item_or_none(RingStatus status, std::uint64_t item) {
  if (raise_if_closed(status) == RingStatus::kTimeout) return std::nullopt;
  return item;
}

}  // namespace

void bind_ring(py::module_& m) {
  py::register_exception<RingClosedError>(m, "RingClosed");

  py::class_<HandleRing>(m, "Ring", "Bounded lock-free MPMC ring of integer handles; blocking calls release the GIL.")
      .def(py::init<std::size_t>(), py::arg("capacity"), "Capacity is rounded up to a power of two (at least 2).")
      .def(
          "push",
          [](HandleRing& ring, std::uint64_t item, std::optional<double> timeout) {
            const auto status = wait_in_slices(timeout, [&](Clock::duration slice) { return ring.push(item, slice); });
            return raise_if_closed(status) == RingStatus::kOk;
          },
          py::arg("item"), py::arg("timeout") = py::none(),
          "Queue `item`, waiting up to `timeout` seconds (None: no limit). False on timeout; RingClosed if closed.")
      .def(
          "pop",
          [](HandleRing& ring, std::optional<double> timeout) {
            std::uint64_t item = 0;
            const auto status = wait_in_slices(timeout, [&](Clock::duration slice) { return ring.pop(item, slice); });
            return item_or_none(status, item);
          },
          py::arg("timeout") = py::none(),
          "Next item, waiting up to `timeout` seconds. None on timeout; RingClosed once closed and drained.")
      .def(
          "try_push",
          [](HandleRing& ring, std::uint64_t item) { return raise_if_closed(ring.try_push(item)) == RingStatus::kOk; },
          py::arg("item"), "Queue `item` if there is room. False when full; RingClosed if closed.")
      .def(
          "try_pop",
          [](HandleRing& ring) {
            std::uint64_t item = 0;
            const auto status = ring.try_pop(item);  // before reading `item`
            return item_or_none(status, item);
          },
          "Next item if any. None when empty; RingClosed once closed and drained.")
      .def("close", &HandleRing::close, "Refuse new items; queued items can still be popped.")
      .def("__len__", &HandleRing::size, "Items queued (approximate while other threads run).")
      .def_property_readonly("capacity", &HandleRing::capacity)
      .def_property_readonly("closed", &HandleRing::closed);
}

}  // namespace ignite
