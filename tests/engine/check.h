// CHECK for the dependency-free C++ tests: records a failure with file:line and goes on, so one
// run reports every broken expectation; main returns non-zero when any failed.
#pragma once

#include <cstdio>

#include "core/error.h"

namespace ignite_test {
inline int failures = 0;

// True when f() throws ignite::InvalidArgument (the engine's refusal of bad arguments).
template <typename F>
bool throws_invalid(F&& f) {
  try {
    f();
  } catch (const ignite::InvalidArgument&) {
    return true;
  }
  return false;
}

// main's last line: prints the outcome and returns the exit status (non-zero when any CHECK failed).
inline int finish(const char* test) {
  if (failures) {
    std::fprintf(stderr, "%s: %d check(s) failed\n", test, failures);
    return 1;
  }
  std::printf("%s: all checks passed\n", test);
  return 0;
}
}  // namespace ignite_test

#define CHECK(cond)                                                                      \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
      ++ignite_test::failures;                                                           \
    }                                                                                    \
  } while (0)
