// The CUDA devices this process sees, asked of the CUDA driver (libcuda.so.1) loaded with
// dlopen at the first call. Nothing links against CUDA, so the module imports on a machine with
// no driver at all and reports no devices there; torch is never needed to find a GPU, and no
// CUDA context is created (cuInit and device queries only).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace ignite::cuda {

// The driver is installed but refuses to work (driver/kernel mismatch, ...): what() names the
// driver call, CUDA's error name, number and text.
class DriverError : public Error {
 public:
  using Error::Error;
};

struct Device {
  int index = 0;  // among the devices this process sees (CUDA_VISIBLE_DEVICES applies)
  std::string name;
  std::uint64_t total_memory = 0;  // bytes
  int sm_major = 0;
  int sm_minor = 0;
};

struct Devices {
  std::string library;      // the driver library loaded, or empty when none could be loaded
  int driver_version = 0;   // major * 1000 + minor * 10, as cuDriverGetVersion gives it; 0 without a driver
  std::vector<Device> devices;
  std::string note;         // why there are no devices when that is not an error (no driver, none visible)
};

// Loads the driver once (the library stays loaded for the process, as every CUDA user does) and
// lists the devices. No driver library or CUDA_ERROR_NO_DEVICE: an empty list with a note. Any
// other failing status: DriverError. Thread-safe.
Devices list_devices();

}  // namespace ignite::cuda
