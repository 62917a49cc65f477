// A small JSON document model and parser, enough for tokenizer.json (strict RFC 8259: no
// comments, no trailing commas; \u escapes with surrogate pairs; nesting depth limited).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ignite {
namespace json {

class Value {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }
  // Whether the number is an integer that fits int64 (written without fraction or exponent).
  bool is_integer() const { return type_ == Type::kNumber && integer_; }

  bool as_bool() const { return bool_; }
  double as_double() const { return number_; }
  std::int64_t as_int() const { return int_; }
  const std::string& as_string() const { return string_; }
  const std::vector<Value>& items() const { return array_; }
  const std::vector<std::pair<std::string, Value>>& members() const { return object_; }
  // The member `key` of an object (the last one if repeated), or nullptr.
  const Value* find(std::string_view key) const;

 private:
  friend class Parser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  bool integer_ = false;
  double number_ = 0;
  std::int64_t int_ = 0;
  std::string string_;
  std::vector<Value> array_;
  std::vector<std::pair<std::string, Value>> object_;
};

// Parses a whole document; throws ignite::InvalidArgument naming the byte offset on bad input.
Value parse(std::string_view text);

const char* type_name(Value::Type type);

}  // namespace json
}  // namespace ignite
