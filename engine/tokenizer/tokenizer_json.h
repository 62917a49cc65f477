// Loads a Tokenizer from a Hugging Face tokenizer.json when it describes the BERT WordPiece
// pipeline this engine implements exactly; anything else is refused with InvalidArgument
// naming what is unsupported, so the caller can fall back to HF tokenizers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace ignite {

// Reads `path`: NotFound if it does not exist, IoError if it cannot be read.
Tokenizer load_tokenizer_json(const std::string& path, std::size_t max_length);
// The same from the file's text; `origin` names it in messages.
Tokenizer parse_tokenizer_json(std::string_view text, std::size_t max_length, const std::string& origin);

}  // namespace ignite
