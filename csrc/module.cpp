// ignite._engine: the native core. One bind_* function per engine area.
#include <pybind11/pybind11.h>

#include "core/error.h"

namespace py = pybind11;

namespace ignite {
void bind_ring(py::module_& m);
void bind_tokenizer(py::module_& m);
}

#ifndef IGNITE_VERSION
#define IGNITE_VERSION "dev"
#endif

PYBIND11_MODULE(_engine, m) {
  m.doc() = "Ignite native core";
  // Translators run newest first: the base class goes first so the specific ones win.
  py::register_exception<ignite::Error>(m, "EngineError", PyExc_RuntimeError);
  py::register_exception<ignite::InvalidArgument>(m, "InvalidArgument", PyExc_ValueError);
  py::register_exception<ignite::NotFound>(m, "NotFound", PyExc_FileNotFoundError);
  py::register_exception<ignite::IoError>(m, "IoError", PyExc_OSError);
  py::register_exception<ignite::Cancelled>(m, "Cancelled", PyExc_RuntimeError);
  ignite::bind_ring(m);
  ignite::bind_tokenizer(m);
  m.def("build_info", [] {
    py::dict info;
#ifdef IGNITE_WITH_CUDA
    info["cuda"] = true;
#else
    info["cuda"] = false;
#endif
#ifdef IGNITE_WITH_TENSORRT
    info["tensorrt"] = true;
#else
    info["tensorrt"] = false;
#endif
    info["version"] = IGNITE_VERSION;
#if defined(__clang__)
    info["compiler"] = "clang " __clang_version__;
#elif defined(__GNUC__)
    info["compiler"] = "gcc " __VERSION__;
#else
    info["compiler"] = "unknown";
#endif
    return info;
  });
}
