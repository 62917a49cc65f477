#include "trt/session.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "trt/cuda_check.h"
#include "trt/cuda_raii.h"
#include "trt/engine_cache.h"
#include "trt/sha256.h"

namespace ignite::trt {
namespace {

using nvinfer1::DataType;

std::size_t element_size(DataType type) {
  switch (type) {
    case DataType::kINT64: return 8;
    case DataType::kINT32:
    case DataType::kFLOAT: return 4;
    case DataType::kHALF:
    case DataType::kBF16: return 2;
    default: return 0;  // a type this session does not bind
  }
}

const char* type_name(DataType type) {
  switch (type) {
    case DataType::kFLOAT: return "float32";
    case DataType::kHALF: return "float16";
    case DataType::kBF16: return "bfloat16";
    case DataType::kINT32: return "int32";
    case DataType::kINT64: return "int64";
    default: return "an unsupported type";
  }
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalise into a float exponent
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf or nan
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

float bf16_to_float(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

nvinfer1::Dims dims2(std::int64_t rows, std::int64_t seq) {
  nvinfer1::Dims dims{};
  dims.nbDims = 2;
  dims.d[0] = rows;
  dims.d[1] = seq;
  return dims;
}

}  // namespace

// One lane of work. Members are destroyed bottom-up: the contexts first (they use the scratch
// memory and report to the recorder), the recorder last.
struct Session::Slot {
  ErrorRecorder recorder;  // this slot's contexts report here, so errors are not mixed up
  Stream stream;
  Event done{true};        // recorded after the output copy; blocking sync: the host sleeps
  PinnedBuffer ids_host, mask_host, out_host;
  DeviceBuffer ids_dev, mask_dev, type_ids_dev, out_dev;
  DeviceBuffer scratch;    // activation memory shared by this slot's contexts
  std::vector<std::unique_ptr<nvinfer1::IExecutionContext>> contexts;  // one per bucket
  std::int64_t rows = 0;
  bool pending = false;
};

Session::Session(SessionOptions options) : options_(std::move(options)) {
  int count = 0;
  IGNITE_CUDA_CHECK(cudaGetDeviceCount(&count));
  if (options_.device < 0 || options_.device >= count) {
    throw InvalidArgument("CUDA device " + std::to_string(options_.device) + " does not exist (this process sees " +
                          std::to_string(count) + ")");
  }
  const std::string& precision = options_.build.precision;
  if (precision != "fp32" && precision != "fp16" && precision != "bf16") {
    throw InvalidArgument("precision must be fp32, fp16 or bf16, not '" + precision + "'");
  }
  ScopedDevice on(options_.device);
  plan_ = plan_profiles(options_.max_batch_tokens, options_.max_seq, options_.buckets, options_.max_rows,
                        options_.slots);
  load_or_build();
  options_.should_stop = nullptr;  // only for the build; hold nothing of the caller's afterwards
  inspect_io();
  for (int i = 0; i < plan_.slots; ++i) slots_.push_back(make_slot(i));
  for (int i = plan_.slots - 1; i >= 0; --i) free_.push_back(i);
}

Session::~Session() {
  try {
    ScopedDevice on(options_.device);
    // Queued copies must finish before their buffers are freed.
    for (auto& slot : slots_) IGNITE_CUDA_CHECK_NOEXCEPT(cudaStreamSynchronize(slot->stream.get()));
    slots_.clear();
    engine_.reset();
    runtime_.reset();
  } catch (const std::exception&) {
    // The device cannot be made current (a broken context): members still go, in order.
  }
}

void Session::load_or_build() {
  const std::optional<std::vector<char>> onnx = read_file(options_.onnx_path);
  if (!onnx) throw NotFound("ONNX model not found: " + options_.onnx_path);
  cudaDeviceProp props{};
  IGNITE_CUDA_CHECK(cudaGetDeviceProperties(&props, options_.device));

  EngineKey key;
  key.onnx_sha256 = sha256_hex(onnx->data(), onnx->size());
  key.trt_version = getInferLibVersion();
  key.gpu_name = props.name;
  key.sm_major = props.major;
  key.sm_minor = props.minor;
  key.precision = typing_key(options_.build);
  key.profiles = plan_.describe();
  key.builder_level = options_.build.optimization_level;
  const EngineCache cache(options_.cache_dir, key);
  engine_path_ = cache.engine_path();

  runtime_.reset(diagnostics_.require(nvinfer1::createInferRuntime(diagnostics_.logger), "createInferRuntime"));
  runtime_->setErrorRecorder(&diagnostics_.recorder);

  std::string why;
  auto try_cached = [&]() {
    std::optional<CachedEngine> cached = cache.load(&why);
    if (!cached || !deserialize(cached->plan.data(), cached->plan.size(), &why)) return false;
    precision_ = metadata_value(cached->metadata, "built_precision").value_or(options_.build.precision);
    return true;
  };
  if (try_cached()) return;
  if (!why.empty()) {
    diagnostics_.logger.log(nvinfer1::ILogger::Severity::kWARNING, ("rebuilding the engine: " + why).c_str());
  }

  // One build at a time per GPU model: whoever waited here finds the engine the first one built.
  FileLock lock(cache.lock_path(), options_.should_stop);
  if (try_cached()) return;
  std::fprintf(stderr, "ignite: building a TensorRT engine for %s (sm %d.%d, %d profiles); once per model and GPU\n",
               props.name, props.major, props.minor, plan_.nb_profiles());
  BuildOptions build = options_.build;
  build.should_stop = options_.should_stop;
  build.timing_cache_path = options_.timing_cache ? cache.timing_cache_path() : std::string();
  BuiltEngine result = build_engine(*onnx, options_.onnx_path, plan_, build, diagnostics_);
  const std::string metadata =
      key.describe() + "built_precision=" + result.precision + "\nonnx_path=" + options_.onnx_path + "\n";
  cache.store(result.plan->data(), result.plan->size(), metadata);
  if (!deserialize(result.plan->data(), result.plan->size(), &why)) {
    throw TensorRtError("TensorRT: the engine just built cannot be loaded: " + why);
  }
  precision_ = result.precision;
  built_ = true;
}

bool Session::deserialize(const void* plan, std::size_t size, std::string* why) {
  engine_.reset(runtime_->deserializeCudaEngine(plan, size));
  if (!engine_) {
    *why = engine_path_ + ": TensorRT cannot deserialize it (" + diagnostics_.take_message() + ")";
    return false;
  }
  if (engine_->getNbOptimizationProfiles() != plan_.nb_profiles()) {
    *why = engine_path_ + ": has " + std::to_string(engine_->getNbOptimizationProfiles()) + " profiles, expected " +
           std::to_string(plan_.nb_profiles());
    engine_.reset();
    return false;
  }
  engine_->setErrorRecorder(&diagnostics_.recorder);
  return true;
}

void Session::inspect_io() {
  using nvinfer1::TensorIOMode;
  bool have_output = false;
  for (int32_t i = 0; i < engine_->getNbIOTensors(); ++i) {
    const char* name = engine_->getIOTensorName(i);
    if (name == nullptr) diagnostics_.fail("getIOTensorName");
    const DataType type = engine_->getTensorDataType(name);
    for (int p = 0; p < plan_.nb_profiles(); ++p) {
      if (engine_->getTensorFormat(name, p) != nvinfer1::TensorFormat::kLINEAR) {
        throw TensorRtError(std::string("TensorRT: tensor '") + name + "' is not in linear layout");
      }
    }
    Binding binding{name, type, element_size(type)};
    if (engine_->getTensorIOMode(name) == TensorIOMode::kINPUT) {
      if (type != DataType::kINT32 && type != DataType::kINT64) {
        throw InvalidArgument(std::string("engine input '") + name + "' is " + type_name(type) + ", not int32/int64");
      }
      const std::string n = name;
      if (n == "input_ids") {
        ids_ = binding;
      } else if (n == "attention_mask") {
        mask_ = binding;
      } else if (n == "token_type_ids") {
        type_ids_ = binding;
      } else {
        throw InvalidArgument("engine input '" + n + "' is none of input_ids, attention_mask, token_type_ids");
      }
    } else if (engine_->getTensorIOMode(name) == TensorIOMode::kOUTPUT) {
      if (have_output) throw InvalidArgument("the engine has more than one output; expected one pooled embedding");
      if (type != DataType::kFLOAT && type != DataType::kHALF && type != DataType::kBF16) {
        throw InvalidArgument(std::string("engine output '") + name + "' is " + type_name(type));
      }
      const nvinfer1::Dims dims = engine_->getTensorShape(name);
      if (dims.nbDims != 2 || dims.d[1] <= 0) {
        throw InvalidArgument(std::string("engine output '") + name + "' is not [batch, dim] with a fixed dim");
      }
      output_ = binding;
      dim_ = dims.d[1];
      have_output = true;
    }
  }
  if (ids_.name.empty() || mask_.name.empty() || !have_output) {
    throw InvalidArgument("the engine needs inputs input_ids and attention_mask and one output");
  }
}

std::unique_ptr<Session::Slot> Session::make_slot(int index) {
  auto slot = std::make_unique<Slot>();
  const auto tokens = static_cast<std::size_t>(plan_.max_tokens());
  const auto rows = static_cast<std::size_t>(plan_.max_rows());
  const auto dim = static_cast<std::size_t>(dim_);
  slot->ids_host = PinnedBuffer(tokens * ids_.element_size);
  slot->mask_host = PinnedBuffer(tokens * mask_.element_size);
  slot->out_host = PinnedBuffer(rows * dim * output_.element_size);
  slot->ids_dev = DeviceBuffer(tokens * ids_.element_size);
  slot->mask_dev = DeviceBuffer(tokens * mask_.element_size);
  slot->out_dev = DeviceBuffer(rows * dim * output_.element_size);
  if (type_ids_) {
    slot->type_ids_dev = DeviceBuffer(tokens * type_ids_->element_size);
    IGNITE_CUDA_CHECK(cudaMemsetAsync(slot->type_ids_dev.get(), 0, slot->type_ids_dev.bytes(), slot->stream.get()));
  }

  std::int64_t scratch = 0;
  for (std::size_t b = 0; b < plan_.buckets.size(); ++b) {
    const std::int64_t size = engine_->getDeviceMemorySizeForProfileV2(plan_.profile_index(index, static_cast<int>(b)));
    diagnostics_.require(size >= 0, "getDeviceMemorySizeForProfileV2");
    scratch = std::max(scratch, size);
  }
  slot->scratch = DeviceBuffer(static_cast<std::size_t>(scratch));

  for (std::size_t b = 0; b < plan_.buckets.size(); ++b) {
    std::unique_ptr<nvinfer1::IExecutionContext> context{diagnostics_.require(
        engine_->createExecutionContext(nvinfer1::ExecutionContextAllocationStrategy::kUSER_MANAGED),
        "createExecutionContext")};
    context->setErrorRecorder(&slot->recorder);
    // The slot's contexts share one activation block: TensorRT uses it only from enqueueV3 until
    // the work completes, and a slot's contexts run one after another on its stream.
    context->setDeviceMemoryV2(slot->scratch.get(), scratch);
    if (!context->setOptimizationProfileAsync(plan_.profile_index(index, static_cast<int>(b)), slot->stream.get())) {
      fail_slot(*slot, "setOptimizationProfileAsync");
    }
    bool ok = context->setTensorAddress(ids_.name.c_str(), slot->ids_dev.get()) &&
              context->setTensorAddress(mask_.name.c_str(), slot->mask_dev.get()) &&
              context->setTensorAddress(output_.name.c_str(), slot->out_dev.get());
    if (type_ids_) ok = ok && context->setTensorAddress(type_ids_->name.c_str(), slot->type_ids_dev.get());
    if (!ok) fail_slot(*slot, "setTensorAddress");
    slot->contexts.push_back(std::move(context));
  }
  slot->stream.synchronize();  // profile switches and the memset are done before the first batch
  return slot;
}

Session::Slot& Session::slot_at(int slot) const {
  if (slot < 0 || slot >= static_cast<int>(slots_.size())) {
    throw InvalidArgument("slot " + std::to_string(slot) + " does not exist (" + std::to_string(slots_.size()) + " slots)");
  }
  return *slots_[static_cast<std::size_t>(slot)];
}

void Session::fail_slot(Slot& slot, const std::string& what) {
  std::string message = slot.recorder.summary();
  slot.recorder.clear();
  if (message.empty()) message = diagnostics_.take_message();
  throw TensorRtError("TensorRT: " + what + " failed on cuda:" + std::to_string(options_.device) + ": " + message);
}

std::optional<int> Session::acquire(std::optional<std::chrono::nanoseconds> timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto available = [this] { return !free_.empty(); };
  if (timeout) {
    if (!slot_freed_.wait_for(lock, *timeout, available)) return std::nullopt;
  } else {
    slot_freed_.wait(lock, available);
  }
  const int slot = free_.back();
  free_.pop_back();
  return slot;
}

void Session::release(int slot) noexcept {
  if (slot < 0 || slot >= static_cast<int>(slots_.size())) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (std::find(free_.begin(), free_.end(), slot) != free_.end()) return;  // released twice
    free_.push_back(slot);
  }
  slot_freed_.notify_one();
}

void Session::submit(int index, const std::int32_t* ids, const std::int32_t* mask, std::int64_t rows,
                     std::int64_t seq) {
  Slot& slot = slot_at(index);
  if (slot.pending) throw InvalidArgument("slot " + std::to_string(index) + " has a batch in flight: wait() first");
  if (rows < 1 || seq < 1) throw InvalidArgument("a batch needs at least one row and one token");
  const int bucket = plan_.bucket_for(seq);
  if (bucket < 0) {
    throw InvalidArgument("sequence length " + std::to_string(seq) + " exceeds max_seq " +
                          std::to_string(plan_.buckets.back().max_seq));
  }
  const ProfileShape& shape = plan_.buckets[static_cast<std::size_t>(bucket)];
  if (rows > shape.max_rows) {
    throw InvalidArgument(std::to_string(rows) + " rows of length " + std::to_string(seq) + " exceed the engine's " +
                          std::to_string(shape.max_rows) + " rows for lengths " + std::to_string(shape.min_seq) + ".." +
                          std::to_string(shape.max_seq) + " (from max_batch_tokens " +
                          std::to_string(options_.max_batch_tokens) + ")");
  }
  ScopedDevice on(options_.device);
  const auto n = static_cast<std::size_t>(rows * seq);

  // Stage into pinned memory (widening to int64 if the engine wants it): only pinned memory
  // makes the copy truly asynchronous, and the caller may reuse its arrays at once.
  auto stage = [n](const std::int32_t* src, const Binding& binding, PinnedBuffer& dst) {
    if (binding.type == DataType::kINT32) {
      std::memcpy(dst.get(), src, n * sizeof(std::int32_t));
    } else {
      auto* wide = dst.as<std::int64_t>();
      for (std::size_t i = 0; i < n; ++i) wide[i] = src[i];
    }
  };
  stage(ids, ids_, slot.ids_host);
  stage(mask, mask_, slot.mask_host);

  cudaStream_t stream = slot.stream.get();
  try {
    IGNITE_CUDA_CHECK(cudaMemcpyAsync(slot.ids_dev.get(), slot.ids_host.get(), n * ids_.element_size,
                                      cudaMemcpyHostToDevice, stream));
    IGNITE_CUDA_CHECK(cudaMemcpyAsync(slot.mask_dev.get(), slot.mask_host.get(), n * mask_.element_size,
                                      cudaMemcpyHostToDevice, stream));
    nvinfer1::IExecutionContext& context = *slot.contexts[static_cast<std::size_t>(bucket)];
    const nvinfer1::Dims shape_in = dims2(rows, seq);  // the real shape: partial batches are not padded
    bool ok = context.setInputShape(ids_.name.c_str(), shape_in) && context.setInputShape(mask_.name.c_str(), shape_in);
    if (type_ids_) ok = ok && context.setInputShape(type_ids_->name.c_str(), shape_in);
    if (!ok) fail_slot(slot, "setInputShape [" + std::to_string(rows) + ", " + std::to_string(seq) + "]");
    const nvinfer1::Dims shape_out = context.getTensorShape(output_.name.c_str());
    if (shape_out.nbDims != 2 || shape_out.d[0] != rows || shape_out.d[1] != dim_) {
      throw TensorRtError("TensorRT: output shape for [" + std::to_string(rows) + ", " + std::to_string(seq) +
                          "] is not [rows, " + std::to_string(dim_) + "]");
    }
    if (!context.enqueueV3(stream)) fail_slot(slot, "enqueueV3");
    // Only the pooled rows come back.
    IGNITE_CUDA_CHECK(cudaMemcpyAsync(slot.out_host.get(), slot.out_dev.get(),
                                      static_cast<std::size_t>(rows * dim_) * output_.element_size,
                                      cudaMemcpyDeviceToHost, stream));
    slot.done.record(stream);
  } catch (...) {
    // Whatever was queued must finish before the pinned buffers are refilled by the next batch.
    IGNITE_CUDA_CHECK_NOEXCEPT(cudaStreamSynchronize(stream));
    throw;
  }
  slot.rows = rows;
  slot.pending = true;
}

std::int64_t Session::pending_rows(int slot) const {
  const Slot& s = slot_at(slot);
  return s.pending ? s.rows : 0;
}

void Session::wait(int index, float* out) {
  Slot& slot = slot_at(index);
  if (!slot.pending) throw InvalidArgument("slot " + std::to_string(index) + " has no batch in flight");
  slot.pending = false;  // whatever happens below, this batch is over
  slot.done.synchronize();
  const auto n = static_cast<std::size_t>(slot.rows * dim_);
  switch (output_.type) {
    case DataType::kFLOAT:
      std::memcpy(out, slot.out_host.get(), n * sizeof(float));
      break;
    case DataType::kHALF: {
      const auto* half = slot.out_host.as<std::uint16_t>();
      for (std::size_t i = 0; i < n; ++i) out[i] = half_to_float(half[i]);
      break;
    }
    case DataType::kBF16: {
      const auto* bf16 = slot.out_host.as<std::uint16_t>();
      for (std::size_t i = 0; i < n; ++i) out[i] = bf16_to_float(bf16[i]);
      break;
    }
    default:
      throw TensorRtError("unsupported output type");  // inspect_io rejects these
  }
}

std::vector<float> Session::wait(int slot) {
  std::vector<float> out(static_cast<std::size_t>(pending_rows(slot) * dim_));
  wait(slot, out.data());
  return out;
}

void Session::run(const std::int32_t* ids, const std::int32_t* mask, std::int64_t rows, std::int64_t seq,
                  float* out) {
  if (rows == 0) return;
  const int slot = *acquire();
  struct Lease {
    Session& session;
    int slot;
    ~Lease() { session.release(slot); }
  } lease{*this, slot};
  submit(slot, ids, mask, rows, seq);
  wait(slot, out);
}

}  // namespace ignite::trt
