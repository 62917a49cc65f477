// Binds ignite::Tokenizer as ignite._engine.WordPieceTokenizer: conversion only. encode_batch
// copies the texts' UTF-8 into one arena with the GIL held, then tokenizes with it released;
// encode_arena reads an arena the caller already holds (a window's), so no str is ever made.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arrays.h"
#include "core/error.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/unicode.h"

namespace py = pybind11;

namespace ignite {
namespace {

std::vector<std::uint32_t> to_u32(const std::vector<char32_t>& cps) {
  return std::vector<std::uint32_t>(cps.begin(), cps.end());
}

// (ids, offsets, n_tokens, uncertain) as NumPy arrays, the first three without copies.
py::tuple to_python(TokenizedBatch&& batch) {
  const auto n = batch.uncertain.size();
  py::array_t<bool> uncertain(static_cast<py::ssize_t>(n));
  auto u = uncertain.mutable_unchecked<1>();
  for (std::size_t i = 0; i < n; ++i) u(static_cast<py::ssize_t>(i)) = batch.uncertain[i] != 0;
  return py::make_tuple(to_numpy(std::move(batch.ids)), to_numpy(std::move(batch.offsets)),
                        to_numpy(std::move(batch.n_tokens)), std::move(uncertain));
}

py::tuple encode_batch(const Tokenizer& tokenizer, const py::sequence& texts, const std::string& prefix,
                       unsigned threads) {
  const auto n = static_cast<std::size_t>(py::len(texts));
  std::string arena;
  std::vector<std::int64_t> offsets(n + 1, 0);
  std::vector<std::pair<const char*, Py_ssize_t>> views(n);
  std::size_t total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    py::handle item = texts[i];
    if (!PyUnicode_Check(item.ptr())) {
      throw py::type_error("encode_batch: texts[" + std::to_string(i) + "] is " +
                           std::string(Py_TYPE(item.ptr())->tp_name) + ", not str");
    }
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(item.ptr(), &size);  // raises on lone surrogates
    if (!utf8) throw py::error_already_set();
    views[i] = {utf8, size};
    total += static_cast<std::size_t>(size);
  }
  arena.reserve(total);
  for (std::size_t i = 0; i < n; ++i) {
    arena.append(views[i].first, static_cast<std::size_t>(views[i].second));
    offsets[i + 1] = static_cast<std::int64_t>(arena.size());
  }
  TokenizedBatch batch;
  {
    py::gil_scoped_release release;
    batch = tokenizer.encode_rows(TextArena{arena.data(), arena.size(), offsets.data(), n}, nullptr, n, prefix,
                                  threads);
  }
  return to_python(std::move(batch));
}

using Int64In = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

py::tuple encode_arena(const Tokenizer& tokenizer, const py::array_t<std::uint8_t, py::array::c_style>& text_bytes,
                       const Int64In& text_offsets, const std::optional<Int64In>& rows, const std::string& prefix,
                       unsigned threads) {
  if (text_bytes.ndim() != 1) throw InvalidArgument("encode_arena: text_bytes must be 1-D");
  if (text_offsets.ndim() != 1 || text_offsets.size() < 1) {
    throw InvalidArgument("encode_arena: text_offsets must be 1-D with n+1 entries");
  }
  if (rows && rows->ndim() != 1) throw InvalidArgument("encode_arena: rows must be 1-D");
  const TextArena texts{reinterpret_cast<const char*>(text_bytes.data()), static_cast<std::size_t>(text_bytes.size()),
                        text_offsets.data(), static_cast<std::size_t>(text_offsets.size() - 1)};
  const std::size_t n = rows ? static_cast<std::size_t>(rows->size()) : texts.count;
  TokenizedBatch batch;
  {
    py::gil_scoped_release release;
    batch = tokenizer.encode_rows(texts, rows ? rows->data() : nullptr, n, prefix, threads);
  }
  return to_python(std::move(batch));
}

}  // namespace

void bind_tokenizer(py::module_& m) {
  py::class_<Tokenizer>(m, "WordPieceTokenizer",
                        "Native BERT WordPiece tokenizer loaded from a tokenizer.json; exact to HF tokenizers.")
      .def(py::init([](const std::string& path, std::size_t max_length) {
             return load_tokenizer_json(path, max_length);
           }),
           py::arg("path"), py::arg("max_length"),
           "Load `path`; InvalidArgument (a ValueError) when it is not a supported BERT WordPiece pipeline.")
      .def("encode_batch", &encode_batch, py::arg("texts"), py::arg("prefix") = "", py::arg("threads") = 0,
           "Token ids of prefix + text for each text, truncated to max_length: (flat int32 ids, int64 offsets "
           "(n+1), int64 token counts before truncation, bool uncertain). `uncertain` marks texts holding a "
           "code point whose Unicode properties differ between Unicode versions, where HF tokenizers may "
           "differ; threads 0: all cores.")
      .def("encode_arena", &encode_arena, py::arg("text_bytes"), py::arg("text_offsets"), py::arg("rows") = py::none(),
           py::arg("prefix") = "", py::arg("threads") = 0,
           "encode_batch of texts held in one UTF-8 arena, read in place (no str objects): text r is "
           "text_bytes[text_offsets[r]:text_offsets[r+1]] (uint8; int64 offsets, n+1); encodes prefix + text r for "
           "r in `rows` (int64), or every text when None. Same tuple as encode_batch, in the order of `rows`.")
      .def(
          "words",
          [](const Tokenizer& t, const std::string& text) {
            py::list out;
            for (const auto& w : t.words(text)) out.append(py::str(w));
            return out;
          },
          py::arg("text"), "The words of `text` after normalisation and pre-tokenization (added tokens aside).")
      .def(
          "checkable_code_points", [](const Tokenizer& t) { return to_numpy(to_u32(t.checkable_code_points())); },
          "Assigned code points that make a text uncertain and that a check of each alone can clear.")
      .def(
          "trust",
          [](Tokenizer& t, const std::vector<std::uint32_t>& cps) {
            t.trust(std::vector<char32_t>(cps.begin(), cps.end()));
          },
          py::arg("code_points"),
          "Stop marking texts uncertain for these code points (checked against HF one by one). Not thread-safe.")
      .def_property_readonly("max_length", &Tokenizer::max_length)
      .def_property_readonly("pad_id", &Tokenizer::pad_id)
      .def_property_readonly("unk_id", [](const Tokenizer& t) { return t.model().unk_id(); })
      .def_property_readonly("vocab_size", [](const Tokenizer& t) { return t.model().vocab_size(); })
      .def_property_readonly("special_tokens_added", [](const Tokenizer& t) { return t.post_processor().added(); })
      .def_property_readonly_static("unicode_version", [](py::object) { return std::string(unicode::version()); });
}

}  // namespace ignite
