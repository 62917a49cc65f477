// Binds ignite::reader::WindowReader as ignite._engine.NativeReader: conversion only. Reading a
// window runs with the GIL released; its arrays go to NumPy without copies.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "reader/window_reader.h"
#include "reader_args.h"

namespace py = pybind11;

namespace ignite {
namespace {

using reader::RecordWindow;
using reader::WindowReader;

// A 1-D NumPy array of `T` over the bytes of `values`, which it takes over without copying.
template <typename T, typename Container>
py::array_t<T> to_numpy(Container&& values) {
  static_assert(sizeof(typename Container::value_type) == sizeof(T), "same element size");
  auto owned = std::make_unique<Container>(std::move(values));
  const auto size = static_cast<py::ssize_t>(owned->size());
  const void* data = owned->data();
  py::capsule free_when_done(owned.get(), [](void* p) { delete static_cast<Container*>(p); });
  owned.release();  // the capsule owns it now
  return py::array_t<T>({size}, {static_cast<py::ssize_t>(sizeof(T))}, static_cast<const T*>(data), free_when_done);
}

class PyReader {
 public:
  PyReader(const std::string& path, const std::string& compression, const std::string& format,
           const std::string& field, const std::optional<std::string>& id_field, std::size_t window_records,
           std::uint64_t skip_lines, std::size_t read_chunk, std::size_t max_line_bytes,
           const std::optional<std::uint64_t>& max_lines) {
    reader::ReaderOptions options;
    options.path = path;
    options.compression = parse_compression("NativeReader", compression);
    options.jsonl = parse_is_jsonl("NativeReader", format);
    options.field = field;
    options.id_field = id_field.value_or("");
    options.window_records = window_records;
    options.skip_lines = skip_lines;
    options.read_chunk = read_chunk;
    options.max_line_bytes = max_line_bytes;
    if (max_lines) options.max_lines = *max_lines;
    py::gil_scoped_release release;
    reader_ = std::make_unique<WindowReader>(options);
  }

  // (text_bytes, text_offsets, ids, lines, status, end_offset, last, damage) or None at the end.
  py::object next_window() {
    RecordWindow w;
    bool got = false;
    {
      py::gil_scoped_release release;
      const std::lock_guard<std::mutex> lock(mutex_);  // one window at a time, whichever thread asks
      got = reader_->next(w);
    }
    if (!got) return py::none();
    const std::size_t n = w.size();
    py::list ids(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (!w.has_id[i]) {
        ids[i] = py::none();
        continue;
      }
      const auto begin = static_cast<std::size_t>(w.id_offsets[i]);
      const auto size = static_cast<std::size_t>(w.id_offsets[i + 1]) - begin;
      ids[i] = py::str(w.id_bytes.data() + begin, size);
    }
    py::object damage = py::none();
    if (w.damaged) damage = py::make_tuple(w.damage_line, w.damage_reason);
    return py::make_tuple(to_numpy<std::uint8_t>(std::move(w.text)), to_numpy<std::int64_t>(std::move(w.text_offsets)),
                          std::move(ids), to_numpy<std::int64_t>(std::move(w.lines)),
                          to_numpy<std::uint8_t>(std::move(w.status)), w.end_offset, w.last, std::move(damage));
  }

  py::object damage() {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (!reader_->damaged()) return py::none();
    return py::make_tuple(reader_->damage_line(), reader_->damage_reason());
  }

 private:
  std::unique_ptr<WindowReader> reader_;
  std::mutex mutex_;
};

}  // namespace

void bind_reader(py::module_& m) {
  py::list names;
  for (int i = 0; i < reader::kStatusCount; ++i) names.append(reader::status_name(static_cast<reader::Status>(i)));
  m.attr("READER_STATUS_NAMES") = py::tuple(names);

  py::class_<PyReader>(m, "NativeReader",
                       "Windows of records of one JSONL or text file (plain, zstd or gzip), read with the GIL "
                       "released; the same records, statuses and damage as the Python reader. Lines "
                       "skip_lines+1 .. skip_lines+max_lines only (max_lines None: to the end).")
      .def(py::init<const std::string&, const std::string&, const std::string&, const std::string&,
                    const std::optional<std::string>&, std::size_t, std::uint64_t, std::size_t, std::size_t,
                    const std::optional<std::uint64_t>&>(),
           py::arg("path"), py::arg("compression"), py::arg("format"), py::arg("field"), py::arg("id_field"),
           py::arg("window_records"), py::arg("skip_lines") = 0, py::arg("read_chunk") = 1 << 20,
           py::arg("max_line_bytes") = std::size_t{64} << 20, py::arg("max_lines") = py::none())
      .def("next_window", &PyReader::next_window,
           "(text_bytes uint8, text_offsets int64 n+1, ids list[str|None], lines int64, status uint8 codes "
           "(READER_STATUS_NAMES), end_offset, last, damage (line, reason) | None), or None when no record is left.")
      .def_property_readonly("damage", &PyReader::damage,
                             "(line, reason) once the file stopped early at damaged bytes, else None.");
}

}  // namespace ignite
