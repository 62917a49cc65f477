// Binds engine/image as ignite._engine.ImagePreprocessor: conversion only. process() takes the
// encoded images (any buffer: bytes, bytearray, memoryview) and a float32 (n, 3, H, W) array the
// caller owns, and runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "image/preprocess_pool.h"

namespace py = pybind11;

namespace ignite {
namespace {

using image::PreprocessPool;
using image::Preprocessor;
using image::Status;

std::unique_ptr<PreprocessPool> make_pool(int shortest_edge, int crop_height, int crop_width, double rescale_factor,
                                          std::array<double, 3> mean, std::array<double, 3> std, bool do_resize,
                                          bool do_center_crop, bool do_rescale, bool do_normalize, unsigned threads,
                                          const std::string& mode, std::uint64_t max_pixels) {
  if (mode != "exact" && mode != "fast") throw InvalidArgument("mode must be 'exact' or 'fast', not '" + mode + "'");
  image::Spec spec{shortest_edge, crop_height, crop_width, rescale_factor, mean, std,
                   do_resize,     do_center_crop, do_rescale, do_normalize};
  return std::make_unique<PreprocessPool>(
      Preprocessor(spec, mode == "fast" ? image::Mode::kFast : image::Mode::kExact, max_pixels), threads);
}

py::array_t<std::uint8_t> process(PreprocessPool& pool, const py::list& items, py::array& out) {
  const image::Spec& spec = pool.preprocessor().spec();
  const auto n = static_cast<py::ssize_t>(items.size());
  if (!out.dtype().is(py::dtype::of<float>()) || out.ndim() != 4 || out.shape(0) != n || out.shape(1) != 3 ||
      out.shape(2) != spec.crop_height || out.shape(3) != spec.crop_width ||
      !(out.flags() & py::array::c_style) || !out.writeable()) {
    throw InvalidArgument("ImagePreprocessor.process: out must be a writable C-contiguous float32 array of shape (" +
                          std::to_string(n) + ", 3, " + std::to_string(spec.crop_height) + ", " +
                          std::to_string(spec.crop_width) + ")");
  }
  // The buffers stay acquired (and their objects alive) until the GIL is back.
  std::vector<py::buffer_info> buffers;
  std::vector<const std::uint8_t*> data;
  std::vector<std::size_t> sizes;
  buffers.reserve(static_cast<std::size_t>(n));
  for (py::handle item : items) {
    buffers.push_back(py::reinterpret_borrow<py::buffer>(item).request());
    const py::buffer_info& b = buffers.back();
    if (b.ndim > 1 || b.itemsize != 1 || (b.ndim == 1 && b.strides[0] != 1)) {
      throw InvalidArgument("ImagePreprocessor.process: items must be contiguous bytes");
    }
    data.push_back(static_cast<const std::uint8_t*>(b.ptr));
    sizes.push_back(static_cast<std::size_t>(b.size));
  }
  py::array_t<std::uint8_t> status(n);
  auto* codes = reinterpret_cast<Status*>(status.mutable_data());
  auto* pixels = static_cast<float*>(out.mutable_data());
  {
    py::gil_scoped_release release;
    pool.process(data.data(), sizes.data(), data.size(), pixels, codes);
  }
  return status;
}

}  // namespace

void bind_image(py::module_& m) {
  static_assert(sizeof(Status) == 1, "statuses are returned as uint8");
  py::class_<PreprocessPool>(m, "ImagePreprocessor",
                             "Decodes and preprocesses images as CLIPImageProcessor (PIL) does, on a pool of threads.")
      .def(py::init(&make_pool), py::arg("shortest_edge"), py::arg("crop_height"), py::arg("crop_width"),
           py::arg("rescale_factor"), py::arg("mean"), py::arg("std"), py::arg("do_resize") = true,
           py::arg("do_center_crop") = true, py::arg("do_rescale") = true, py::arg("do_normalize") = true,
           py::arg("threads") = 0, py::arg("mode") = "exact", py::arg("max_pixels") = 89'478'485)
      .def("process", &process, py::arg("items"), py::arg("out"),
           "Fills out[i] from items[i]; returns uint8 status codes (0 ok, 1 bad_image, 2 unsupported_image, "
           "3 image_too_large; zeros in out for all but ok).")
      .def_property_readonly("threads", &PreprocessPool::threads);
}

}  // namespace ignite
