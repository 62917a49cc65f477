#include "pipeline/native_worker.h"

#include <chrono>
#include <exception>
#include <string>
#include <utility>

#include "core/error.h"

namespace ignite {
namespace pipeline {

WorkSlice run_native_worker(IngestPipeline& pipeline, NativeBackend& backend, IngestPipeline::Clock::duration timeout,
                            std::vector<float>& out) {
  using Clock = IngestPipeline::Clock;
  // complete() reads the pipeline's dim per row from `out`: a smaller backend dim would overrun it.
  if (backend.dim() != static_cast<std::int64_t>(pipeline.dim())) {
    throw InvalidArgument("native worker: the backend's dim " + std::to_string(backend.dim()) +
                          " is not the pipeline's " + std::to_string(pipeline.dim()));
  }
  const auto dim = static_cast<std::size_t>(backend.dim());
  const Clock::time_point deadline = Clock::now() + timeout;
  WorkSlice slice;
  Clock::duration busy{};
  for (;;) {
    const Clock::time_point now = Clock::now();
    std::unique_ptr<Batch> batch = pipeline.next_batch(now < deadline ? deadline - now : Clock::duration::zero(),
                                                       slice.finished);
    if (!batch) break;
    const std::size_t values = batch->size() * dim;
    if (out.size() < values) out.resize(values);
    const Clock::time_point start = Clock::now();
    bool ok = false;
    try {
      backend.run(batch->ids(), batch->mask(), static_cast<std::int64_t>(batch->size()), batch->width, out.data());
      ok = true;
    } catch (const std::exception& e) {
      slice.error = e.what();
    } catch (...) {
      slice.error = "the native backend threw a non-standard exception";
    }
    busy += Clock::now() - start;
    if (!ok) {
      slice.failed = std::move(batch);
      break;
    }
    pipeline.complete(*batch, out.data(), nullptr, 0);
    ++slice.batches;
    slice.records += static_cast<std::int64_t>(batch->size());
    if (Clock::now() >= deadline) break;
  }
  slice.busy_seconds = std::chrono::duration<double>(busy).count();
  return slice;
}

}  // namespace pipeline
}  // namespace ignite
