#include "tokenizer/tokenizer_json.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>
#include <vector>

#include "core/error.h"
#include "tokenizer/json.h"

namespace ignite {

namespace {

class Loader {
 public:
  explicit Loader(std::string origin) : origin_(std::move(origin)) {}

  [[noreturn]] void unsupported(const std::string& what) const {
    throw InvalidArgument(origin_ + ": not a BERT WordPiece pipeline the native tokenizer supports: " + what);
  }

  const json::Value& member(const json::Value& obj, std::string_view key, json::Value::Type type,
                            const std::string& where) const {
    const json::Value* v = obj.find(key);
    if (!v) unsupported(where + " has no \"" + std::string(key) + "\"");
    if (v->type() != type) {
      unsupported(where + "." + std::string(key) + " is " + json::type_name(v->type()) + ", expected " +
                  json::type_name(type));
    }
    return *v;
  }

  bool flag(const json::Value& obj, std::string_view key, bool fallback, const std::string& where) const {
    const json::Value* v = obj.find(key);
    if (!v) return fallback;
    if (!v->is_bool()) unsupported(where + "." + std::string(key) + " is not a boolean");
    return v->as_bool();
  }

  std::int32_t token_id(const json::Value& v, const std::string& where) const {
    if (!v.is_integer() || v.as_int() < 0 || v.as_int() > std::numeric_limits<std::int32_t>::max()) {
      unsupported(where + " is not a token id");
    }
    return static_cast<std::int32_t>(v.as_int());
  }

  BertNormalizerOptions normalizer(const json::Value* v) const {
    BertNormalizerOptions o;
    if (!v || v->is_null()) {  // no normaliser: the text as it is
      o.clean_text = o.handle_chinese_chars = o.strip_accents = o.lowercase = false;
      return o;
    }
    if (!v->is_object()) unsupported("normalizer is not an object");
    const std::string& type = member(*v, "type", json::Value::Type::kString, "normalizer").as_string();
    if (type != "BertNormalizer") unsupported("normalizer type " + type + " (only BertNormalizer)");
    o.clean_text = flag(*v, "clean_text", true, "normalizer");
    o.handle_chinese_chars = flag(*v, "handle_chinese_chars", true, "normalizer");
    o.lowercase = flag(*v, "lowercase", true, "normalizer");
    // strip_accents null (or absent) follows lowercase, as in HF tokenizers.
    const json::Value* strip = v->find("strip_accents");
    if (!strip || strip->is_null()) o.strip_accents = o.lowercase;
    else if (strip->is_bool()) o.strip_accents = strip->as_bool();
    else unsupported("normalizer.strip_accents is neither null nor a boolean");
    return o;
  }

  void pre_tokenizer(const json::Value* v) const {
    if (!v || !v->is_object()) unsupported("pre_tokenizer is not a BertPreTokenizer");
    const std::string& type = member(*v, "type", json::Value::Type::kString, "pre_tokenizer").as_string();
    if (type != "BertPreTokenizer") unsupported("pre_tokenizer type " + type + " (only BertPreTokenizer)");
  }

  WordPieceOptions model(const json::Value* v) const {
    if (!v || !v->is_object()) unsupported("model is not an object");
    const json::Value* type = v->find("type");
    if (!type || !type->is_string() || type->as_string() != "WordPiece") {
      unsupported("model type " + (type && type->is_string() ? type->as_string() : std::string("unknown")) +
                  " (only WordPiece)");
    }
    WordPieceOptions o;
    const json::Value& vocab = member(*v, "vocab", json::Value::Type::kObject, "model");
    o.vocab.reserve(vocab.members().size());
    for (const auto& [token, id] : vocab.members()) o.vocab.emplace_back(token, token_id(id, "model.vocab[" + token + "]"));
    o.unk_token = member(*v, "unk_token", json::Value::Type::kString, "model").as_string();
    if (const json::Value* p = v->find("continuing_subword_prefix")) {
      if (!p->is_string()) unsupported("model.continuing_subword_prefix is not a string");
      o.continuing_subword_prefix = p->as_string();
    }
    if (const json::Value* m = v->find("max_input_chars_per_word")) {
      if (!m->is_integer() || m->as_int() < 0) unsupported("model.max_input_chars_per_word is not a count");
      o.max_input_chars_per_word = static_cast<std::size_t>(m->as_int());
    }
    return o;
  }

  std::vector<std::pair<std::string, std::int32_t>> added_tokens(const json::Value* v) const {
    std::vector<std::pair<std::string, std::int32_t>> out;
    if (!v || v->is_null()) return out;
    if (!v->is_array()) unsupported("added_tokens is not an array");
    for (const json::Value& t : v->items()) {
      if (!t.is_object()) unsupported("an added token is not an object");
      const std::string& content = member(t, "content", json::Value::Type::kString, "added token").as_string();
      const std::string where = "added token " + content;
      const json::Value* id = t.find("id");
      if (!id) unsupported(where + " has no id");
      for (const char* key : {"single_word", "lstrip", "rstrip", "normalized"}) {
        if (flag(t, key, false, where)) unsupported(where + " has " + key + "=true (only verbatim matching)");
      }
      if (content.empty()) unsupported(where + " is empty");
      out.emplace_back(content, token_id(*id, where + ".id"));
    }
    return out;
  }

  PostProcessor post_processor(const json::Value* v) const {
    if (!v || v->is_null()) return PostProcessor();
    if (!v->is_object()) unsupported("post_processor is not an object");
    const std::string& type = member(*v, "type", json::Value::Type::kString, "post_processor").as_string();
    if (type == "BertProcessing") {
      auto pair_id = [&](const char* key) {
        const json::Value& p = member(*v, key, json::Value::Type::kArray, "post_processor");
        if (p.items().size() != 2 || !p.items()[0].is_string()) unsupported(std::string("post_processor.") + key);
        return token_id(p.items()[1], std::string("post_processor.") + key);
      };
      return PostProcessor({pair_id("cls")}, {pair_id("sep")});
    }
    if (type != "TemplateProcessing") unsupported("post_processor type " + type);
    const json::Value& single = member(*v, "single", json::Value::Type::kArray, "post_processor");
    const json::Value& specials = member(*v, "special_tokens", json::Value::Type::kObject, "post_processor");
    std::vector<std::int32_t> prefix, suffix;
    bool seen_sequence = false;
    for (const json::Value& piece : single.items()) {
      if (!piece.is_object() || piece.members().size() != 1) unsupported("post_processor.single piece");
      const auto& [kind, body] = piece.members()[0];
      if (kind == "Sequence") {
        const json::Value* id = body.find("id");
        if (seen_sequence || !id || !id->is_string() || id->as_string() != "A") {
          unsupported("post_processor.single must hold sequence A once");
        }
        seen_sequence = true;
      } else if (kind == "SpecialToken") {
        const json::Value& name = member(body, "id", json::Value::Type::kString, "post_processor special token");
        const json::Value* special = specials.find(name.as_string());
        if (!special) unsupported("post_processor special token " + name.as_string() + " is not in special_tokens");
        const json::Value& ids = member(*special, "ids", json::Value::Type::kArray, "special token " + name.as_string());
        for (const json::Value& id : ids.items()) {
          (seen_sequence ? suffix : prefix).push_back(token_id(id, "special token " + name.as_string()));
        }
      } else {
        unsupported("post_processor.single piece " + kind);
      }
    }
    if (!seen_sequence) unsupported("post_processor.single has no sequence");
    return PostProcessor(std::move(prefix), std::move(suffix));
  }

  std::int32_t pad_id(const json::Value* v) const {
    if (!v || !v->is_object()) return 0;
    const json::Value* id = v->find("pad_id");
    return id ? token_id(*id, "padding.pad_id") : 0;
  }

 private:
  std::string origin_;
};

}  // namespace

Tokenizer parse_tokenizer_json(std::string_view text, std::size_t max_length, const std::string& origin) {
  if (max_length == 0) throw InvalidArgument("max_length must be positive");
  json::Value root;
  try {
    root = json::parse(text);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(origin + ": " + e.what());
  }
  Loader load(origin);
  if (!root.is_object()) load.unsupported("the document is not an object");
  BertNormalizer normalizer(load.normalizer(root.find("normalizer")));
  load.pre_tokenizer(root.find("pre_tokenizer"));
  WordPieceOptions model_options = load.model(root.find("model"));
  std::vector<std::pair<std::string, std::int32_t>> added = load.added_tokens(root.find("added_tokens"));
  PostProcessor post = load.post_processor(root.find("post_processor"));
  const std::int32_t pad = load.pad_id(root.find("padding"));
  try {
    return Tokenizer(std::move(normalizer), AddedTokens(std::move(added)), WordPiece(model_options), std::move(post),
                     max_length, pad);
  } catch (const InvalidArgument& e) {
    load.unsupported(e.what());
  }
}

Tokenizer load_tokenizer_json(const std::string& path, std::size_t max_length) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) throw NotFound(path + ": no such file");
    throw IoError(path + ": cannot open: " + std::strerror(errno));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw IoError(path + ": read failed");
  return parse_tokenizer_json(buffer.str(), max_length, path);
}

}  // namespace ignite
