#include "tokenizer/added_tokens.h"

#include "core/error.h"

namespace ignite {

AddedTokens::AddedTokens(std::vector<std::pair<std::string, std::int32_t>> tokens) : tokens_(std::move(tokens)) {
  for (const auto& [content, id] : tokens_) {
    if (content.empty()) throw InvalidArgument("an added token has empty content");
    first_byte_[static_cast<unsigned char>(content[0])] = true;
  }
}

}  // namespace ignite
