// Binds engine/packer as ignite._engine.plan_batches and fill_batch: conversion only. Both run
// with the GIL released; fill_batch writes into int32 arrays the caller owns (no copy is taken:
// arrays of another dtype or layout are refused, not converted).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <utility>

#include "arrays.h"
#include "core/error.h"
#include "packer/packer.h"

namespace py = pybind11;

namespace ignite {
namespace {

using Int64In = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;
using Int32In = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>;
using Int32Out = py::array_t<std::int32_t, py::array::c_style>;

std::size_t size_of(const py::array& a) { return static_cast<std::size_t>(a.size()); }

py::tuple plan(const Int64In& lengths, std::int64_t budget, std::int64_t pad_multiple, std::int64_t max_rows,
               std::int64_t max_width) {
  if (lengths.ndim() != 1) throw InvalidArgument("plan_batches: lengths must be 1-D");
  BatchPlan plan;
  {
    py::gil_scoped_release release;
    plan = plan_batches(lengths.data(), size_of(lengths), budget, pad_multiple, max_rows, max_width);
  }
  return py::make_tuple(to_numpy(std::move(plan.order)), to_numpy(std::move(plan.bounds)),
                        to_numpy(std::move(plan.widths)));
}

std::int64_t fill(const Int32In& tokens, const Int64In& offsets, const Int64In& rows, std::int64_t width,
                  std::int32_t pad_id, Int32Out& ids, Int32Out& mask) {
  if (offsets.ndim() != 1 || offsets.size() < 1) {
    throw InvalidArgument("fill_batch: offsets must be 1-D with n+1 entries");
  }
  if (rows.ndim() != 1) throw InvalidArgument("fill_batch: rows must be 1-D");
  if (width < 0) throw InvalidArgument("fill_batch: width must be >= 0, not " + std::to_string(width));
  const std::size_t need = size_of(rows) * static_cast<std::size_t>(width);
  if (size_of(ids) < need || size_of(mask) < need) {
    throw InvalidArgument("fill_batch: ids and mask need room for " + std::to_string(need) + " values (" +
                          std::to_string(rows.size()) + " rows x " + std::to_string(width) + "), they hold " +
                          std::to_string(ids.size()) + " and " + std::to_string(mask.size()));
  }
  std::int32_t* ids_out = ids.mutable_data();  // raises on a read-only array
  std::int32_t* mask_out = mask.mutable_data();
  py::gil_scoped_release release;
  return fill_batch(tokens.data(), size_of(tokens), offsets.data(), size_of(offsets) - 1, rows.data(), size_of(rows),
                    width, pad_id, ids_out, mask_out);
}

}  // namespace

void bind_packer(py::module_& m) {
  m.def("plan_batches", &plan, py::arg("lengths"), py::arg("budget"), py::arg("pad_multiple") = 1,
        py::arg("max_rows") = 1024, py::arg("max_width") = 0,
        "Batches of records by token length: (order int64, bounds int64, widths int64); batch i is "
        "order[bounds[i]:bounds[i+1]] padded to widths[i], rows x width <= budget (a longer record alone). "
        "Equal lengths keep input order. max_width > 0: no padding past it.");
  m.def("fill_batch", &fill, py::arg("token_ids"), py::arg("offsets"), py::arg("rows"), py::arg("width"),
        py::arg("pad_id"), py::arg("ids").noconvert(), py::arg("mask").noconvert(),
        "Write records `rows` (of flat token_ids split by offsets) as row-major [len(rows), width] int32 ids "
        "(pad_id past each end) and 0/1 mask into the C-contiguous int32 arrays ids and mask; returns the "
        "real token count.");
}

}  // namespace ignite
