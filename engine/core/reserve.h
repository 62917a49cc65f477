// Growing an arena that windows reuse (pipeline/recycler.h): when it must grow, it takes an
// eighth more than asked, so a recycled arena fits the next window as a rule instead of being
// replaced by new memory for a few bytes.
#pragma once

#include <cstddef>

namespace ignite {

// T: a std::string or std::vector.
template <class T>
void reserve_reusable(T& arena, std::size_t size) {
  if (arena.capacity() < size) arena.reserve(size + size / 8);
}

}  // namespace ignite
