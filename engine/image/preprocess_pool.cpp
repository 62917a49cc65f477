#include "image/preprocess_pool.h"

#include <algorithm>
#include <utility>

namespace ignite::image {

PreprocessPool::PreprocessPool(Preprocessor preprocessor, unsigned threads)
    : preprocessor_(std::move(preprocessor)), count_(threads ? threads : std::max(1u, std::thread::hardware_concurrency())) {
  threads_.reserve(count_);
  try {
    for (unsigned i = 0; i < count_; ++i) threads_.emplace_back([this] { run(); });
  } catch (...) {  // the destructor will not run: stop the threads already started
    stop();
    throw;
  }
}

PreprocessPool::~PreprocessPool() { stop(); }

void PreprocessPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void PreprocessPool::process(const std::uint8_t* const* data, const std::size_t* sizes, std::size_t n, float* out,
                             Status* status) {
  if (n == 0) return;
  std::lock_guard<std::mutex> call(call_);
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    data_ = data;
    sizes_ = sizes;
    n_ = n;
    next_ = 0;
    out_ = out;
    status_ = status;
    error_ = nullptr;
    idle_ = 0;
    ++generation_;
    wake_.notify_all();
    // Every worker, not only the last image, must be done: none may touch the batch after this.
    finished_.wait(lock, [&] { return idle_ == count_; });
    std::swap(error, error_);
  }
  if (error) std::rethrow_exception(error);
}

void PreprocessPool::run() {
  const std::size_t per_image = preprocessor_.values_per_image();
  std::uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    // Images are claimed under the lock (cheap next to decoding one) and worked on without it.
    while (next_ < n_) {
      const std::size_t i = next_++;
      lock.unlock();
      float* dst = out_ + i * per_image;
      Status s = Status::kBadImage;
      std::exception_ptr failure;
      try {
        s = preprocessor_.process(data_[i], sizes_[i], dst);
      } catch (...) {
        failure = std::current_exception();
        std::fill(dst, dst + per_image, 0.0f);
      }
      status_[i] = s;
      lock.lock();
      if (failure && !error_) error_ = failure;
    }
    if (++idle_ == count_) finished_.notify_one();
  }
}

}  // namespace ignite::image
