// CHECK for the dependency-free C++ tests: records a failure with file:line and goes on, so one
// run reports every broken expectation; main returns non-zero when any failed.
#pragma once

#include <chrono>
#include <cstdio>
#include <utility>

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

// Runs each named test in turn, printing whether its checks held and how long it took.
template <std::size_t N>
void run_named(const std::pair<const char*, void (*)()> (&tests)[N]) {
  for (const auto& [name, test] : tests) {
    const int before = failures;
    const auto start = std::chrono::steady_clock::now();
    test();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    std::printf("%-40s %s (%lld ms)\n", name, failures == before ? "ok" : "FAILED", static_cast<long long>(ms.count()));
    std::fflush(stdout);
  }
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
