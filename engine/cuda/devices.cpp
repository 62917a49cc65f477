#include "cuda/devices.h"

#include <dlfcn.h>

#include <array>
#include <cstddef>
#include <mutex>
#include <string>
#include <utility>

namespace ignite::cuda {
namespace {

// The few driver API types and values used here, as cuda.h defines them (stable ABI since CUDA
// 4); declared rather than included so that the module builds without a CUDA toolkit.
using CUresult = int;
using CUdevice = int;
constexpr CUresult kSuccess = 0;
constexpr CUresult kNoDevice = 100;  // CUDA_ERROR_NO_DEVICE
constexpr int kAttrSmMajor = 75;     // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kAttrSmMinor = 76;     // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR

struct DriverApi {
  CUresult (*init)(unsigned int) = nullptr;
  CUresult (*driver_version)(int*) = nullptr;
  CUresult (*device_count)(int*) = nullptr;
  CUresult (*device_get)(CUdevice*, int) = nullptr;
  CUresult (*device_name)(char*, int, CUdevice) = nullptr;
  CUresult (*device_memory)(std::size_t*, CUdevice) = nullptr;
  CUresult (*device_attribute)(int*, int, CUdevice) = nullptr;
  CUresult (*error_name)(CUresult, const char**) = nullptr;
  CUresult (*error_string)(CUresult, const char**) = nullptr;
  std::string library;
  std::string missing;  // why the driver could not be loaded; empty when it was
};

template <typename Fn>
bool resolve(void* handle, const char* symbol, Fn& fn) {
  fn = reinterpret_cast<Fn>(dlsym(handle, symbol));
  return fn != nullptr;
}

DriverApi load_driver() {
  DriverApi api;
  // libcuda.so.1 is the driver's soname; the unversioned name exists only with development files.
  void* handle = nullptr;
  for (const char* name : {"libcuda.so.1", "libcuda.so"}) {
    handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) {
      api.library = name;
      break;
    }
  }
  if (handle == nullptr) {
    api.missing = "no CUDA driver (libcuda.so.1 cannot be loaded)";
    return api;
  }
  const bool ok = resolve(handle, "cuInit", api.init) && resolve(handle, "cuDriverGetVersion", api.driver_version) &&
                  resolve(handle, "cuDeviceGetCount", api.device_count) &&
                  resolve(handle, "cuDeviceGet", api.device_get) && resolve(handle, "cuDeviceGetName", api.device_name) &&
                  resolve(handle, "cuDeviceTotalMem_v2", api.device_memory) &&
                  resolve(handle, "cuDeviceGetAttribute", api.device_attribute) &&
                  resolve(handle, "cuGetErrorName", api.error_name) &&
                  resolve(handle, "cuGetErrorString", api.error_string);
  if (!ok) {
    // The handle stays open: it is one small leak per process, and closing a driver that may
    // have run initialisers is riskier than keeping it.
    api.missing = api.library + " lacks the driver API Ignite uses (a CUDA driver older than 4.0?)";
    api.library.clear();
  }
  return api;
}

const DriverApi& driver() {
  static const DriverApi api = load_driver();
  return api;
}

[[noreturn]] void fail(const DriverApi& api, CUresult status, const char* call) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (api.error_name(status, &name) != kSuccess) name = nullptr;
  if (api.error_string(status, &text) != kSuccess) text = nullptr;
  throw DriverError(std::string("CUDA driver error ") + (name ? name : "?") + " (" + std::to_string(status) +
                    "): " + (text ? text : "unknown error") + " in " + call);
}

void check(const DriverApi& api, CUresult status, const char* call) {
  if (status != kSuccess) fail(api, status, call);
}

}  // namespace

Devices list_devices() {
  static std::mutex mutex;  // cuInit is thread-safe; this keeps the report's calls together
  const std::lock_guard<std::mutex> lock(mutex);
  const DriverApi& api = driver();
  Devices out;
  if (!api.missing.empty()) {
    out.note = api.missing;
    return out;
  }
  out.library = api.library;
  check(api, api.driver_version(&out.driver_version), "cuDriverGetVersion");
  const CUresult init = api.init(0);
  if (init == kNoDevice) {
    out.note = "the CUDA driver sees no device (none installed, or CUDA_VISIBLE_DEVICES hides them)";
    return out;
  }
  check(api, init, "cuInit");
  int count = 0;
  check(api, api.device_count(&count), "cuDeviceGetCount");
  for (int i = 0; i < count; ++i) {
    CUdevice handle = 0;
    check(api, api.device_get(&handle, i), "cuDeviceGet");
    Device device;
    device.index = i;
    std::array<char, 256> name{};
    check(api, api.device_name(name.data(), static_cast<int>(name.size()), handle), "cuDeviceGetName");
    device.name = name.data();
    std::size_t memory = 0;
    check(api, api.device_memory(&memory, handle), "cuDeviceTotalMem_v2");
    device.total_memory = memory;
    check(api, api.device_attribute(&device.sm_major, kAttrSmMajor, handle), "cuDeviceGetAttribute(major)");
    check(api, api.device_attribute(&device.sm_minor, kAttrSmMinor, handle), "cuDeviceGetAttribute(minor)");
    out.devices.push_back(std::move(device));
  }
  if (count == 0) out.note = "the CUDA driver sees no device";
  return out;
}

}  // namespace ignite::cuda
