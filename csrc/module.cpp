// ignite._engine: the native core. Maps engine errors to Python classes and calls one bind_*
// function per engine area.
#include <pybind11/pybind11.h>

#include "core/error.h"

namespace py = pybind11;

namespace ignite {
void bind_ring(py::module_& m);
void bind_packer(py::module_& m);
void bind_tokenizer(py::module_& m);
void bind_cuda(py::module_& m);
void bind_backend(py::module_& m);
void bind_writer(py::module_& m);
#ifdef IGNITE_WITH_READER
void bind_reader(py::module_& m);
void bind_pipeline(py::module_& m);
#endif
#ifdef IGNITE_WITH_TENSORRT
void bind_trt(py::module_& m);
#endif
#ifdef IGNITE_WITH_IMAGE
void bind_image(py::module_& m);
#endif
}

#ifndef IGNITE_VERSION
#define IGNITE_VERSION "unknown"
#endif
#ifndef IGNITE_COMPILER
#define IGNITE_COMPILER "unknown"
#endif

PYBIND11_MODULE(_engine, m) {
  m.doc() = "Ignite native core";

  // Each class derives from EngineError and from the standard class callers already catch
  // (ValueError, FileNotFoundError, OSError). Translators run newest first, so the base is
  // registered first and the specific classes win.
  auto base = py::register_exception<ignite::Error>(m, "EngineError", PyExc_RuntimeError);
  auto both = [&](PyObject* standard) { return py::make_tuple(base, py::handle(standard)); };
  py::register_exception<ignite::InvalidArgument>(m, "InvalidArgument", both(PyExc_ValueError));
  py::register_exception<ignite::NotFound>(m, "NotFound", both(PyExc_FileNotFoundError));
  py::register_exception<ignite::IoError>(m, "IoError", both(PyExc_OSError));
  py::register_exception<ignite::Cancelled>(m, "Cancelled", base);

  ignite::bind_ring(m);
  ignite::bind_packer(m);
  ignite::bind_tokenizer(m);
  ignite::bind_cuda(m);
  ignite::bind_writer(m);
  ignite::bind_backend(m);  // before the pipeline and TensorRT, which take and make NativeBackends
#ifdef IGNITE_WITH_READER
  ignite::bind_reader(m);
  ignite::bind_pipeline(m);
#endif
#ifdef IGNITE_WITH_TENSORRT
  ignite::bind_trt(m);
#endif
#ifdef IGNITE_WITH_IMAGE
  ignite::bind_image(m);
#endif

  m.def(
      "build_info",
      [] {
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
#ifdef IGNITE_WITH_READER
        info["reader"] = true;
#else
        info["reader"] = false;
#endif
#ifdef IGNITE_WITH_IMAGE
        info["image"] = true;
#else
        info["image"] = false;
#endif
        info["version"] = IGNITE_VERSION;
        info["compiler"] = IGNITE_COMPILER;
        return info;
      },
      "What this build of the native module was compiled with.");
}
