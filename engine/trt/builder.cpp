#include "trt/builder.h"

#include <NvOnnxParser.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "core/error.h"
#include "trt/engine_cache.h"

// TensorRT 10.x marks the weak-typing precision flags deprecated (strong typing is the future);
// they are still the way to get fp16/bf16 from an fp32 ONNX there, so use them knowingly.
#define IGNITE_ALLOW_DEPRECATED_BEGIN \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wdeprecated-declarations\"")
#define IGNITE_ALLOW_DEPRECATED_END _Pragma("GCC diagnostic pop")

namespace ignite::trt {
namespace {

using nvinfer1::DataType;
using Severity = nvinfer1::ILogger::Severity;

// Lets a caller cancel a long build: TensorRT polls stepComplete and stops when it returns false.
class StopMonitor : public nvinfer1::IProgressMonitor {
 public:
  explicit StopMonitor(const std::function<bool()>& should_stop) : should_stop_(should_stop) {}

  void phaseStart(const char*, const char*, int32_t) noexcept override {}
  bool stepComplete(const char*, int32_t) noexcept override {
    if (stopped_.load()) return false;
    try {
      if (should_stop_ && should_stop_()) stopped_.store(true);
    } catch (...) {
      stopped_.store(true);  // a hook that fails cannot say "go on"
    }
    return !stopped_.load();
  }
  void phaseFinish(const char*) noexcept override {}

  bool stopped() const { return stopped_.load(); }

 private:
  const std::function<bool()>& should_stop_;
  std::atomic<bool> stopped_{false};
};

nvinfer1::Dims dims2(std::int64_t rows, std::int64_t seq) {
  nvinfer1::Dims dims{};
  dims.nbDims = 2;
  dims.d[0] = rows;
  dims.d[1] = seq;
  return dims;
}

std::string parser_errors(const nvonnxparser::IParser& parser) {
  std::string out;
  for (int i = 0; i < parser.getNbErrors(); ++i) {
    const nvonnxparser::IParserError* error = parser.getError(i);
    if (error == nullptr) continue;
    if (!out.empty()) out += "; ";
    out += error->desc() ? error->desc() : "unknown error";
    if (error->node() >= 0) {
      out += " (node " + std::to_string(error->node());
      if (error->nodeName() && *error->nodeName()) out += std::string(" '") + error->nodeName() + "'";
      if (error->nodeOperator() && *error->nodeOperator()) out += std::string(", ") + error->nodeOperator();
      out += ")";
    }
  }
  return out.empty() ? "no message from the parser" : out;
}

// The lowest float precision any layer computes in, for a strongly typed network.
std::string network_precision(const nvinfer1::INetworkDefinition& network) {
  bool half = false, bf16 = false;
  for (int32_t i = 0; i < network.getNbLayers(); ++i) {
    const nvinfer1::ILayer* layer = network.getLayer(i);
    for (int32_t j = 0; layer != nullptr && j < layer->getNbOutputs(); ++j) {
      const nvinfer1::ITensor* tensor = layer->getOutput(j);
      if (tensor == nullptr) continue;
      half = half || tensor->getType() == DataType::kHALF;
      bf16 = bf16 || tensor->getType() == DataType::kBF16;
    }
  }
  return bf16 ? "bf16" : half ? "fp16" : "fp32";
}

// Every input [batch, sequence] of an integer type; one output [batch, dim].
void check_io(const nvinfer1::INetworkDefinition& network, const std::string& onnx_path) {
  if (network.getNbInputs() < 1) throw InvalidArgument(onnx_path + ": the graph has no inputs");
  for (int32_t i = 0; i < network.getNbInputs(); ++i) {
    const nvinfer1::ITensor* input = network.getInput(i);
    const nvinfer1::Dims dims = input->getDimensions();
    if (dims.nbDims != 2) {
      throw InvalidArgument(onnx_path + ": input '" + input->getName() + "' has rank " + std::to_string(dims.nbDims) +
                            ", expected [batch, sequence]");
    }
    if (input->getType() != DataType::kINT32 && input->getType() != DataType::kINT64) {
      throw InvalidArgument(onnx_path + ": input '" + input->getName() + "' is not int32 or int64");
    }
  }
  if (network.getNbOutputs() != 1) {
    throw InvalidArgument(onnx_path + ": the graph has " + std::to_string(network.getNbOutputs()) +
                          " outputs, expected one pooled [batch, dim] embedding");
  }
  const nvinfer1::Dims out = network.getOutput(0)->getDimensions();
  if (out.nbDims != 2 || out.d[1] <= 0) {
    throw InvalidArgument(onnx_path + ": the output must be [batch, dim] with a fixed dim (pooling in the graph)");
  }
}

bool strongly_typed(const BuildOptions& options) {
#if NV_TENSORRT_MAJOR >= 11
  (void)options;
  return true;
#else
  return options.strongly_typed;
#endif
}

}  // namespace

std::string typing_key(const BuildOptions& options) {
  if (strongly_typed(options)) return "onnx/strong";
  return options.precision + "/weak";
}

BuiltEngine build_engine(const std::vector<char>& onnx, const std::string& onnx_path, const ProfilePlan& plan,
                         const BuildOptions& options, Diagnostics& diagnostics) {
  using namespace nvinfer1;
  const std::string& precision = options.precision;
  if (precision != "fp32" && precision != "fp16" && precision != "bf16") {
    throw InvalidArgument("precision must be fp32, fp16 or bf16, not '" + precision + "'");
  }
  if (options.optimization_level < 0 || options.optimization_level > 5) {
    throw InvalidArgument("the builder optimisation level must be 0..5");
  }
  if (plan.buckets.empty()) throw InvalidArgument("no optimisation profiles to build");

  // Declaration order is destruction order reversed: the monitor and the timing cache outlive the
  // builder and config that use them; the parser (which owns the weights the network points to)
  // goes before the network, the network before the builder.
  StopMonitor monitor(options.should_stop);
  std::unique_ptr<ITimingCache> timing_cache;
  std::unique_ptr<IBuilder> builder{diagnostics.require(createInferBuilder(diagnostics.logger), "createInferBuilder")};
  builder->setErrorRecorder(&diagnostics.recorder);

  NetworkDefinitionCreationFlags flags = 0;
#if NV_TENSORRT_MAJOR < 11
  // TensorRT 10: explicit batch is implied (kEXPLICIT_BATCH is deprecated and ignored); strong
  // typing is opt-in. TensorRT 11: always strongly typed, so no flag at all.
  if (options.strongly_typed) flags |= 1U << static_cast<std::uint32_t>(NetworkDefinitionCreationFlag::kSTRONGLY_TYPED);
#endif
  std::unique_ptr<INetworkDefinition> network{diagnostics.require(builder->createNetworkV2(flags), "createNetworkV2")};
  network->setErrorRecorder(&diagnostics.recorder);
  std::unique_ptr<nvonnxparser::IParser> parser{
      diagnostics.require(nvonnxparser::createParser(*network, diagnostics.logger), "createParser")};

  // The model path lets the parser find external weight files beside the graph.
  const std::string absolute = std::filesystem::absolute(onnx_path).string();
  if (!parser->parse(onnx.data(), onnx.size(), absolute.c_str())) {
    const std::string message = parser_errors(*parser);
    diagnostics.take_message();  // the parser's errors say it better; drop the duplicates
    throw TensorRtError("TensorRT's ONNX parser cannot read " + onnx_path + ": " + message);
  }
  check_io(*network, onnx_path);

  std::unique_ptr<IBuilderConfig> config{diagnostics.require(builder->createBuilderConfig(), "createBuilderConfig")};
  config->setBuilderOptimizationLevel(options.optimization_level);
  if (options.workspace_bytes > 0) config->setMemoryPoolLimit(MemoryPoolType::kWORKSPACE, options.workspace_bytes);
  if (options.should_stop) config->setProgressMonitor(&monitor);

  std::string used = precision;
  if (strongly_typed(options)) {
    // A strongly typed network computes in the ONNX's types and nothing else: building an fp32
    // engine when fp16 was asked for would be a silent 2-4x slowdown, so refuse instead.
    used = network_precision(*network);
    if (used != precision) {
      throw InvalidArgument(onnx_path + " computes in " + used + " but " + precision +
                            " was asked for; TensorRT builds strongly typed networks here, so the precision comes "
                            "from the ONNX: export the graph in " + precision);
    }
  } else {
#if NV_TENSORRT_MAJOR < 11
    IGNITE_ALLOW_DEPRECATED_BEGIN
    if (precision == "fp16") config->setFlag(BuilderFlag::kFP16);
    if (precision == "bf16") config->setFlag(BuilderFlag::kBF16);
    IGNITE_ALLOW_DEPRECATED_END
#endif
  }

  for (int slot = 0; slot < plan.slots; ++slot) {
    for (std::size_t bucket = 0; bucket < plan.buckets.size(); ++bucket) {
      const ProfileShape& shape = plan.buckets[bucket];
      IOptimizationProfile* profile =  // owned by the builder
          diagnostics.require(builder->createOptimizationProfile(), "createOptimizationProfile");
      for (int32_t i = 0; i < network->getNbInputs(); ++i) {
        const char* name = network->getInput(i)->getName();
        const bool ok = profile->setDimensions(name, OptProfileSelector::kMIN, dims2(shape.min_rows, shape.min_seq)) &&
                        profile->setDimensions(name, OptProfileSelector::kOPT, dims2(shape.opt_rows, shape.opt_seq)) &&
                        profile->setDimensions(name, OptProfileSelector::kMAX, dims2(shape.max_rows, shape.max_seq));
        diagnostics.require(ok, ("setDimensions for input '" + std::string(name) + "'").c_str());
      }
      const int32_t index = config->addOptimizationProfile(profile);
      diagnostics.require(index == plan.profile_index(slot, static_cast<int>(bucket)), "addOptimizationProfile");
    }
  }

  if (!options.timing_cache_path.empty()) {
    std::optional<std::vector<char>> bytes;
    try {
      bytes = read_file(options.timing_cache_path);
    } catch (const IoError& error) {
      diagnostics.logger.log(Severity::kWARNING, (std::string("ignoring the timing cache: ") + error.what()).c_str());
    }
    if (bytes && !bytes->empty()) timing_cache.reset(config->createTimingCache(bytes->data(), bytes->size()));
    if (timing_cache && !config->setTimingCache(*timing_cache, false)) {
      diagnostics.logger.log(Severity::kWARNING,
                             ("the timing cache " + options.timing_cache_path + " does not fit this GPU; starting a new one")
                                 .c_str());
      diagnostics.take_message();
      timing_cache.reset();
    }
    if (!timing_cache) {
      timing_cache.reset(diagnostics.require(config->createTimingCache(nullptr, 0), "createTimingCache"));
      diagnostics.require(config->setTimingCache(*timing_cache, false), "setTimingCache");
    }
  }

  BuiltEngine built;
  built.plan.reset(builder->buildSerializedNetwork(*network, *config));
  if (monitor.stopped()) throw Cancelled("TensorRT engine build cancelled");
  if (!built.plan || built.plan->size() == 0) diagnostics.fail("buildSerializedNetwork (building the engine)");
  built.precision = used;

  if (timing_cache) {
    // Keep what this build learned for the next one; failing to save it costs time, not results.
    try {
      const ITimingCache* updated = config->getTimingCache();
      std::unique_ptr<IHostMemory> blob{updated ? updated->serialize() : nullptr};
      if (blob && blob->size() > 0) write_file_atomic(options.timing_cache_path, {{blob->data(), blob->size()}});
    } catch (const Error& error) {
      diagnostics.logger.log(Severity::kWARNING, (std::string("timing cache not saved: ") + error.what()).c_str());
    }
  }
  return built;
}

}  // namespace ignite::trt
