// The device workers' steady state for a native backend: take a batch, run it, scatter its
// embeddings, with no Python between batches. The loop hands control back to its caller (a
// Python worker thread) on a batch the backend failed on, which the caller retries, hands over,
// splits or gives up on as it does for any backend; on timeout, so the caller can publish the
// counters and see a stop; and once no batch is left.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/backend.h"
#include "pipeline/ingest.h"

namespace ignite {
namespace pipeline {

// What one call of run_native_worker did since it started.
struct WorkSlice {
  std::unique_ptr<Batch> failed;  // the batch the backend threw on, not completed; null if none
  std::string error;              // its exception's text
  bool finished = false;          // every batch was handed out
  std::int64_t batches = 0;       // completed
  std::int64_t records = 0;
  double busy_seconds = 0;  // in backend.run, the failed batch's attempt included
};

// Runs batches of `pipeline` on `backend` until one fails, `timeout` has elapsed (checked
// between batches: a batch under way is finished first) or no batch is left. `out` is the
// calling thread's output buffer, grown as needed and kept for its next call. Throws Cancelled
// once the run is cancelled (as next_batch), InvalidArgument when the dims differ.
WorkSlice run_native_worker(IngestPipeline& pipeline, NativeBackend& backend, IngestPipeline::Clock::duration timeout,
                            std::vector<float>& out);

}  // namespace pipeline
}  // namespace ignite
