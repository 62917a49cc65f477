// Binds ignite::pipeline::NativeBackend (a model the native worker loop calls without Python)
// and NullBackend. Always built: the TensorRT binding makes NativeBackends even where the ingest
// pipeline that runs them is not built.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "pipeline/backend.h"

namespace py = pybind11;

namespace ignite {

void bind_backend(py::module_& m) {
  using pipeline::NativeBackend;
  using pipeline::NullBackend;
  py::class_<NativeBackend, std::shared_ptr<NativeBackend>>(
      m, "NativeBackend",
      "A model that IngestPipeline.run_native calls from native threads, with no Python per batch (made by a "
      "runner's native_backend()).")
      .def_property_readonly("dim", &NativeBackend::dim);
  py::class_<NullBackend, NativeBackend, std::shared_ptr<NullBackend>>(
      m, "NullBackend", "Zeros of its dim: the pipeline without a model (benchmarks, tests).")
      .def(py::init<std::int64_t, std::optional<std::int32_t>>(), py::arg("dim"), py::arg("fail_token") = py::none(),
           "`fail_token` (a test aid): a batch holding this token id raises, as a backend failing on a bad record.");
}

}  // namespace ignite
