#include "reader/json_record.h"

#include <simdjson.h>

#include <charconv>
#include <utility>

#include "reader/byte_source.h"

namespace ignite {
namespace reader {

static_assert(kPadding >= simdjson::SIMDJSON_PADDING, "chunks must carry simdjson's padding");

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> keys;
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = path.find('.', start);
    keys.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) return keys;
    start = dot + 1;
  }
}

// The member `key` of object `obj` (the last one when repeated, like a Python dict).
bool find_member(element obj, std::string_view key, element& out) {
  bool found = false;
  const simdjson::dom::object members = obj.get_object().value_unsafe();  // kept: the loop runs over it
  for (const auto field : members) {
    if (field.key == key) {
      out = field.value;
      found = true;
    }
  }
  return found;
}

bool find_path(element doc, const std::vector<std::string>& path, element& out) {
  element at = doc;
  for (const auto& key : path) {
    if (at.type() != element_type::OBJECT || !find_member(at, key, at)) return false;
  }
  out = at;
  return true;
}

// orjson's float format: shortest round-trip digits; plain notation for 1e-5 <= |x| < 1e16
// (with ".0" on integers), else d[.ddd]e[+-]x.
void append_float(std::string& out, double value) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  const std::size_t e_at = sci.find('e');
  int exponent = 0;
  std::from_chars(sci.data() + e_at + (sci[e_at + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exponent);
  std::string digits;
  for (const char c : sci.substr(0, e_at)) {
    if (c != '.') digits.push_back(c);
  }
  const int n = static_cast<int>(digits.size());
  const int point = exponent + 1;  // digits before the decimal point
  if (point >= n && point <= 16) {
    out += digits;
    out.append(static_cast<std::size_t>(point - n), '0');
    out += ".0";
  } else if (point > 0 && point <= 16) {
    out.append(digits, 0, static_cast<std::size_t>(point));
    out.push_back('.');
    out.append(digits, static_cast<std::size_t>(point));
  } else if (point > -5 && point <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-point), '0');
    out += digits;
  } else {
    out.push_back(digits[0]);
    if (n > 1) {
      out.push_back('.');
      out.append(digits, 1);
    }
    out.push_back('e');
    out.push_back(exponent < 0 ? '-' : '+');
    out += std::to_string(exponent < 0 ? -exponent : exponent);
  }
}

void append_string(std::string& out, std::string_view s) {
  static const char* const kHex = "0123456789abcdef";
  out.push_back('"');
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20) {
          out += "\\u00";
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 15]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

// orjson.dumps of a parsed value: compact, objects as Python dicts (a repeated key keeps its
// first place and takes its last value).
void append_json(std::string& out, element value) {
  switch (value.type()) {
    case element_type::NULL_VALUE: out += "null"; break;
    case element_type::BOOL: out += value.get_bool().value_unsafe() ? "true" : "false"; break;
    case element_type::INT64: out += std::to_string(value.get_int64().value_unsafe()); break;
    case element_type::UINT64: out += std::to_string(value.get_uint64().value_unsafe()); break;
    case element_type::DOUBLE: append_float(out, value.get_double().value_unsafe()); break;
    case element_type::STRING: append_string(out, value.get_string().value_unsafe()); break;
    case element_type::ARRAY: {
      out.push_back('[');
      bool first = true;
      const simdjson::dom::array items = value.get_array().value_unsafe();
      for (const element item : items) {
        if (!first) out.push_back(',');
        first = false;
        append_json(out, item);
      }
      out.push_back(']');
      break;
    }
    case element_type::OBJECT: {
      std::vector<std::pair<std::string_view, element>> members;
      const simdjson::dom::object fields = value.get_object().value_unsafe();
      for (const auto field : fields) {
        auto same = members.begin();
        while (same != members.end() && same->first != field.key) ++same;
        if (same == members.end()) {
          members.emplace_back(field.key, field.value);
        } else {
          same->second = field.value;
        }
      }
      out.push_back('{');
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (i) out.push_back(',');
        append_string(out, members[i].first);
        out.push_back(':');
        append_json(out, members[i].second);
      }
      out.push_back('}');
      break;
    }
  }
}

// Whether an integer literal (optional '-', then digits) fits int64 (negative) or uint64.
bool fits_64_bits(std::string_view token) {
  const bool negative = token.front() == '-';
  const std::string_view digits = token.substr(negative ? 1 : 0);
  const std::string_view limit = negative ? "9223372036854775808" : "18446744073709551615";
  return digits.size() < limit.size() || (digits.size() == limit.size() && digits <= limit);
}

bool is_number_char(char c) {
  return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
}

// `line` with every integer literal beyond 64 bits given a ".0", so it parses as the float
// orjson makes of it; false when there is none.
bool widen_big_integers(std::string_view line, std::string& out) {
  out.clear();
  bool changed = false;
  bool in_string = false;
  for (std::size_t i = 0; i < line.size();) {
    const char c = line[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < line.size()) out.push_back(line[++i]);
      else if (c == '"') in_string = false;
      ++i;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      std::size_t end = i + 1;
      bool integer = true;
      for (; end < line.size() && is_number_char(line[end]); ++end) {
        if (line[end] < '0' || line[end] > '9') integer = false;
      }
      const std::string_view token = line.substr(i, end - i);
      out.append(token);
      if (integer && token != "-" && !fits_64_bits(token)) {
        out += ".0";
        changed = true;
      }
      i = end;
    } else {
      in_string = c == '"';
      out.push_back(c);
      ++i;
    }
  }
  return changed;
}

}  // namespace

const char* status_name(Status status) {
  static const char* const kNames[kStatusCount] = {"ok",         "invalid_utf8",     "bad_json",
                                                   "not_an_object", "missing_id",  "missing_field",
                                                   "field_null",  "field_not_string", "line_too_long"};
  const auto i = static_cast<int>(status);
  return i < kStatusCount ? kNames[i] : "unknown";
}

bool is_valid_utf8(std::string_view bytes) { return simdjson::validate_utf8(bytes.data(), bytes.size()); }

struct JsonRecordParser::Impl {
  std::vector<std::string> field;
  std::vector<std::string> id;  // empty: no ids
  simdjson::dom::parser parser;
  std::string widened;  // the line with its big integers as floats
};

JsonRecordParser::JsonRecordParser(const std::string& field, const std::string& id_field)
    : impl_(std::make_unique<Impl>()) {
  impl_->field = split_path(field);
  if (!id_field.empty()) impl_->id = split_path(id_field);
}

JsonRecordParser::~JsonRecordParser() = default;

Status JsonRecordParser::parse(std::string_view line, std::string& text, std::string& id, bool& has_id) {
  has_id = false;
  element doc;
  auto error = impl_->parser.parse(line.data(), line.size(), false).get(doc);
  if (error == simdjson::NUMBER_ERROR) {
    // simdjson refuses integers beyond 64 bits, which orjson reads as floats.
    if (widen_big_integers(line, impl_->widened)) {
      error = impl_->parser.parse(impl_->widened.data(), impl_->widened.size(), true).get(doc);
    }
  }
  if (error) return is_valid_utf8(line) ? Status::kBadJson : Status::kInvalidUtf8;
  if (doc.type() != element_type::OBJECT) return Status::kNotAnObject;
  if (!impl_->id.empty()) {
    element ident;
    if (!find_path(doc, impl_->id, ident)) return Status::kMissingId;
    has_id = true;
    if (ident.type() == element_type::STRING) {
      id.append(ident.get_string().value_unsafe());
    } else {
      append_json(id, ident);
    }
  }
  element value;
  if (!find_path(doc, impl_->field, value)) return Status::kMissingField;
  if (value.type() == element_type::NULL_VALUE) return Status::kFieldNull;
  if (value.type() != element_type::STRING) return Status::kFieldNotString;
  text.append(value.get_string().value_unsafe());
  return Status::kOk;
}

}  // namespace reader
}  // namespace ignite
