// Binds ignite::writer::FileWriter as ignite._engine.FileWriter. The binding keeps each submitted
// buffer exported (a held Py_buffer view) until its range is written, so Python can neither free
// nor resize bytes in flight.
#include <pybind11/pybind11.h>

#include <Python.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <utility>

#include "core/error.h"
#include "writer/file_writer.h"

namespace py = pybind11;

namespace ignite {
namespace {

using writer::FileWriter;
constexpr std::chrono::milliseconds kSignalCheck{50};

class PyFileWriter {
 public:
  PyFileWriter(int fd, unsigned threads, bool direct) : writer_(std::make_unique<FileWriter>(fd, threads, direct)) {}
  ~PyFileWriter() { close(); }

  std::uint64_t submit(const py::buffer& data, std::uint64_t offset) {
    FileWriter& w = get();
    release_written();
    raise_if_failed();
    py::buffer_info info = data.request();
    if (!PyBuffer_IsContiguous(info.view(), 'C')) throw InvalidArgument("FileWriter.submit: the buffer is not contiguous");
    const std::uint64_t ticket = w.submit(info.ptr, static_cast<std::size_t>(info.size * info.itemsize), offset);
    held_.emplace_back(ticket, std::move(info));  // released (with the GIL) once written
    return ticket;
  }

  // Waits without the GIL, in slices so Python can deliver signals; raises the writer's error.
  // The writer is looked up each slice: a signal handler run between slices may have closed it.
  void wait(std::uint64_t ticket) {
    for (;;) {
      FileWriter& w = get();
      bool done;
      {
        py::gil_scoped_release nogil;
        done = w.wait(ticket, kSignalCheck);
      }
      if (done) break;
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
    release_written();
    raise_if_failed();
  }

  double cpu_seconds() { return get().cpu_seconds(); }

  bool direct() { return get().direct(); }

  // Waits for every queued range (written or dropped after an error) and stops the thread.
  void close() {
    if (!writer_) return;
    {
      py::gil_scoped_release nogil;
      writer_.reset();
    }
    held_.clear();
  }

 private:
  FileWriter& get() {
    if (!writer_) throw InvalidArgument("FileWriter is closed");
    return *writer_;
  }
  void release_written() {
    const std::uint64_t done = writer_->completed();
    while (!held_.empty() && held_.front().first <= done) held_.pop_front();
  }
  void raise_if_failed() {
    if (const int err = writer_->error()) {
      errno = err;
      PyErr_SetFromErrno(PyExc_OSError);
      throw py::error_already_set();
    }
  }

  std::unique_ptr<FileWriter> writer_;
  std::deque<std::pair<std::uint64_t, py::buffer_info>> held_;
};

}  // namespace

void bind_writer(py::module_& m) {
  py::class_<PyFileWriter>(m, "FileWriter",
                           "Appends byte ranges to an open file descriptor on native threads: pwrite at each range's "
                           "offset, with the GIL never taken; tickets complete in order; whole blocks bypass the page "
                           "cache (O_DIRECT) where the file system allows, and the rest leaves it two writes behind. "
                           "The descriptor stays the caller's: close() the writer first.")
      .def(py::init<int, unsigned, bool>(), py::arg("fd"), py::arg("threads") = 2, py::arg("direct") = true)
      .def("submit", &PyFileWriter::submit, py::arg("data"), py::arg("offset"),
           "Queue a C-contiguous buffer at `offset`; its ticket. The buffer is kept alive until written. Raises "
           "OSError (with errno) if an earlier write failed.")
      .def("wait", &PyFileWriter::wait, py::arg("ticket"),
           "Wait until `ticket` is written (the GIL released); raises OSError if a write failed.")
      .def_property_readonly("cpu_seconds", &PyFileWriter::cpu_seconds, "CPU time of the writing threads.")
      .def_property_readonly("direct", &PyFileWriter::direct,
                             "Whether whole blocks still go out with O_DIRECT (false where refused).")
      .def("close", &PyFileWriter::close, "Wait for every queued range and stop the thread (never raises).");
}

}  // namespace ignite
