// Owns a persistent pool of threads that preprocesses a batch of encoded images at once, each
// thread taking the next image until none is left.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "image/preprocess.h"

namespace ignite::image {

class PreprocessPool {
 public:
  // threads == 0: one per hardware thread.
  PreprocessPool(Preprocessor preprocessor, unsigned threads);
  ~PreprocessPool();
  PreprocessPool(const PreprocessPool&) = delete;
  PreprocessPool& operator=(const PreprocessPool&) = delete;

  // Image i (data[i], sizes[i] bytes) into out + i * values_per_image(), its status into
  // status[i]. Blocks until all are done; concurrent calls run one after another. The first
  // exception a worker meets (out of memory) is rethrown here, after the batch has finished.
  void process(const std::uint8_t* const* data, const std::size_t* sizes, std::size_t n, float* out, Status* status);

  const Preprocessor& preprocessor() const { return preprocessor_; }
  unsigned threads() const { return count_; }

 private:
  void run();
  void stop();  // wakes and joins the workers

  const Preprocessor preprocessor_;
  const unsigned count_;
  std::mutex call_;  // one batch at a time

  std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::condition_variable finished_;
  std::uint64_t generation_ = 0;  // bumped for each batch
  bool stop_ = false;
  unsigned idle_ = 0;  // workers done with the current batch
  const std::uint8_t* const* data_ = nullptr;
  const std::size_t* sizes_ = nullptr;
  std::size_t n_ = 0;
  std::size_t next_ = 0;
  float* out_ = nullptr;
  Status* status_ = nullptr;
  std::exception_ptr error_;

  std::vector<std::thread> threads_;
};

}  // namespace ignite::image
