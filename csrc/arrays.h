// NumPy conversions shared by the binding files.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <utility>
#include <vector>

namespace ignite {

// A 1-D NumPy array that takes ownership of `values` without copying.
template <typename T>
pybind11::array_t<T> to_numpy(std::vector<T>&& values) {
  auto* owned = new std::vector<T>(std::move(values));
  pybind11::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return pybind11::array_t<T>({static_cast<pybind11::ssize_t>(owned->size())},
                              {static_cast<pybind11::ssize_t>(sizeof(T))}, owned->data(), free_when_done);
}

}  // namespace ignite
