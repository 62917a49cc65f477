// Binds engine/cuda (the driver asked through dlopen) as ignite._engine.cuda_devices and
// cuda_device_count: conversion only. Present in every build, with or without CUDA.
#include <pybind11/pybind11.h>

#include "cuda/devices.h"

namespace py = pybind11;

namespace ignite {

void bind_cuda(py::module_& m) {
  py::register_exception<cuda::DriverError>(m, "CudaDriverError", m.attr("EngineError"));
  m.def(
      "cuda_devices",
      [] {
        cuda::Devices found;
        {
          py::gil_scoped_release nogil;  // cuInit can take a second on a large box
          found = cuda::list_devices();
        }
        py::list devices;
        for (const cuda::Device& d : found.devices) {
          py::dict device;
          device["index"] = d.index;
          device["name"] = d.name;
          device["total_memory"] = d.total_memory;
          device["sm"] = py::make_tuple(d.sm_major, d.sm_minor);
          devices.append(device);
        }
        py::dict out;
        out["library"] = found.library;
        out["driver_version"] = found.driver_version;
        out["devices"] = devices;
        out["note"] = found.note;
        return out;
      },
      "The CUDA driver's view: {library, driver_version, devices: [{index, name, total_memory, sm}], note}. "
      "No driver or no device: an empty list and a note; a driver that fails: CudaDriverError.");
  m.def(
      "cuda_device_count",
      [] {
        py::gil_scoped_release nogil;
        return cuda::list_devices().devices.size();
      },
      "CUDA devices this process sees (0 without a driver or device); CudaDriverError when the driver fails.");
}

}  // namespace ignite
