// Post-processor of a single sequence (TemplateProcessing "[CLS] $A [SEP]" or BertProcessing):
// special token ids around the sequence, and truncation that leaves room for them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace ignite {

class PostProcessor {
 public:
  PostProcessor() = default;
  PostProcessor(std::vector<std::int32_t> prefix, std::vector<std::int32_t> suffix)
      : prefix_(std::move(prefix)), suffix_(std::move(suffix)) {}

  const std::vector<std::int32_t>& prefix() const { return prefix_; }
  const std::vector<std::int32_t>& suffix() const { return suffix_; }
  std::size_t added() const { return prefix_.size() + suffix_.size(); }

  // How many sequence tokens a text keeps under max_length: max_length less the special
  // tokens. As HF tokenizers does, a max_length below the special tokens' count truncates
  // nothing.
  std::size_t sequence_limit(std::size_t max_length) const {
    if (max_length < added()) return SIZE_MAX;
    return max_length - added();
  }

 private:
  std::vector<std::int32_t> prefix_;
  std::vector<std::int32_t> suffix_;
};

}  // namespace ignite
