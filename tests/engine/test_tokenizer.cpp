// Tests of engine/tokenizer: UTF-8 decoding, the JSON parser, each pipeline stage, the loader's
// refusals, truncation and counts, and encode_batch and encode_rows over threads (run under
// ASan/UBSan and TSan).
// Parity with HF tokenizers on real and generated text is tested in tests/test_tokenizer_parity.py.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/json.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/unicode.h"
#include "tokenizer/wordpiece.h"

#include "check.h"

using ignite::InvalidArgument;
using ignite::Tokenizer;

using ignite_test::throws_invalid;

static std::u32string decode(const std::string& s) {
  std::u32string out;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) out.push_back(ignite::unicode::decode_utf8(p, end));
  return out;
}

static void test_utf8() {
  CHECK(decode("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80") == U"a\u00E9\u20AC\U0001F600");
  // Invalid input: one U+FFFD per maximal invalid subpart, as Python's errors="replace".
  CHECK(decode("\xE2\x82" "A") == U"\uFFFDA");
  CHECK(decode("\xC0\x80") == U"\uFFFD\uFFFD");
  CHECK(decode("\xED\xA0\x80") == U"\uFFFD\uFFFD\uFFFD");  // a UTF-8 encoded surrogate
  CHECK(decode("\xF4\x90\x80\x80") == U"\uFFFD\uFFFD\uFFFD\uFFFD");  // above U+10FFFF
  CHECK(decode("\x80\xFF") == U"\uFFFD\uFFFD");
  CHECK(decode("\xF0\x9F\x98") == U"\uFFFD");  // truncated at the end
  CHECK(ignite::unicode::is_valid_utf8("\xEF\xBF\xBD", 3));
  CHECK(!ignite::unicode::is_valid_utf8("\xE2\x82", 2));
  std::string enc;
  for (char32_t cp : {U'a', U'\u00E9', U'\u20AC', U'\U0001F600'}) ignite::unicode::append_utf8(enc, cp);
  CHECK(enc == "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
}

static void test_unicode_props() {
  using namespace ignite::unicode;
  CHECK(props(U'\t').flags & kSpace);
  CHECK(!(props(U'\t').flags & kControl));
  CHECK(props(0x0B).flags & kControl);
  CHECK(props(0x3000).flags & kSpace);
  CHECK(!(props(0x1C).flags & kSpace));
  CHECK(props(U'!').flags & kPunct);
  CHECK(props(U'$').flags & kPunct);  // ASCII symbols count as BERT punctuation
  CHECK(!(props(0x20AC).flags & kPunct));
  CHECK(props(0x0301).flags & kMn);
  CHECK(props(0x4E2D).flags & kCjk);
  CHECK(!(props(0x2B820).flags & kCjk));  // HF's ranges: 0x2B920..0x2CEAF, not 0x2B820
  CHECK(props(0x2B920).flags & kCjk);
  CHECK(props(0x200D).flags & kControl);
  CHECK(props(0x00C9).nfd_len == 2 && sequences()[props(0x00C9).nfd_off + 1] == 0x0301);
  CHECK(props(0x0130).lower_len == 2);  // İ -> i + U+0307
  CHECK(props(0xAC00).nfd_len == 2);    // Hangul syllables decompose
  CHECK(props(0x0378).flags & kUnassigned);
}

static void test_json() {
  using ignite::json::parse;
  const auto v = parse(R"( {"a": [1, -2.5e3, true, null, "x\u00e9\ud83d\ude00\n"], "b": {"c": 7}, "a": 3} )");
  CHECK(v.is_object());
  CHECK(v.find("a")->is_integer() && v.find("a")->as_int() == 3);  // the last repeat wins
  const auto& arr = v.members()[0].second.items();
  CHECK(arr.size() == 5 && arr[0].as_int() == 1 && !arr[1].is_integer() && arr[1].as_double() == -2500);
  CHECK(arr[2].as_bool() && arr[3].is_null());
  CHECK(arr[4].as_string() == "x\xC3\xA9\xF0\x9F\x98\x80\n");
  CHECK(v.find("b")->find("c")->as_int() == 7);
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "\"\\ud800\"", "\"\\udc00x\"", "01", "tru", "[1] 2",
                          "\"a\nb\"", "\"\xC3\"", "{\"a\":}", "-", "1.", "1e"}) {
    CHECK(throws_invalid([&] { parse(bad); }));
  }
  std::string deep(1000, '[');
  CHECK(throws_invalid([&] { parse(deep); }));
}

// A tiny BERT tokenizer.json; `normalizer` and the rest can be swapped per test.
static std::string tokenizer_json(const std::string& normalizer = R"({"type": "BertNormalizer", "clean_text": true,
    "handle_chinese_chars": true, "strip_accents": null, "lowercase": true})",
                                  const std::string& model_type = "WordPiece",
                                  const std::string& added_extra = "") {
  return R"({"version": "1.0", "truncation": null, "padding": null,
  "added_tokens": [
    {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 3, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 4, "content": "[MASK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 17, "content": "[MASK]x", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false})" +
         added_extra + R"(],
  "normalizer": )" + normalizer + R"(,
  "pre_tokenizer": {"type": "BertPreTokenizer"},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
               {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
    "pair": [], "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                   "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
  "decoder": null,
  "model": {"type": ")" + model_type + R"(", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
    "max_input_chars_per_word": 12,
    "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "un": 5, "##aff": 6, "##able": 7,
              "hello": 8, "!": 9, "cafe": 10, "\u4e2d": 11, "##s": 12, "a": 13, "##a": 14, ",": 15, "\u00e9": 16}}})";
}

static std::vector<std::int32_t> ids_of(const Tokenizer& t, const std::string& text, std::size_t* n = nullptr,
                                        bool* uncertain = nullptr) {
  std::vector<std::int32_t> out;
  Tokenizer::Workspace ws;
  bool u = false;
  const std::size_t count = t.encode(text, out, u, ws);
  if (n) *n = count;
  if (uncertain) *uncertain = u;
  return out;
}

using Ids = std::vector<std::int32_t>;

static void test_pipeline() {
  const Tokenizer t = ignite::parse_tokenizer_json(tokenizer_json(), 512, "test");
  CHECK(ids_of(t, "") == (Ids{2, 3}));
  CHECK(ids_of(t, "unaffable") == (Ids{2, 5, 6, 7, 3}));
  CHECK(ids_of(t, "UnAffAble hello!") == (Ids{2, 5, 6, 7, 8, 9, 3}));
  CHECK(ids_of(t, "unaffx") == (Ids{2, 1, 3}));                  // a part matches nothing: [UNK]
  CHECK(ids_of(t, "aaaaaaaaaaaa") == Ids({2, 13, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 3}));  // 12 chars
  CHECK(ids_of(t, "aaaaaaaaaaaaa") == (Ids{2, 1, 3}));           // 13 > max_input_chars_per_word
  CHECK(ids_of(t, "Caf\xC3\xA9") == (Ids{2, 10, 3}));              // strip accents (NFC input)
  CHECK(ids_of(t, "Cafe\xCC\x81") == (Ids{2, 10, 3}));             // strip accents (NFD input)
  CHECK(ids_of(t, "a\xE4\xB8\xAD" "a") == (Ids{2, 13, 11, 13, 3}));  // CJK isolated
  CHECK(ids_of(t, "he\x01llo\xE2\x80\x8B") == (Ids{2, 8, 3}));      // controls and ZWSP (Cf) dropped
  CHECK(ids_of(t, "a\xC2\xA0\xE3\x80\x80" "a") == (Ids{2, 13, 13, 3}));  // Unicode spaces split
  CHECK(ids_of(t, "a,a") == (Ids{2, 13, 15, 13, 3}));
  // Added tokens are matched in the raw text, leftmost-longest, before normalisation.
  CHECK(ids_of(t, "hello[MASK]hello") == (Ids{2, 8, 4, 8, 3}));
  CHECK(ids_of(t, "[MASK]xa") == (Ids{2, 17, 13, 3}));
  CHECK(ids_of(t, "[mask]") == (Ids{2, 1, 1, 1, 3}));  // "[", "mask", "]" are not in the vocabulary
  CHECK(ids_of(t, "[CLS][SEP]") == (Ids{2, 2, 3, 3}));
  // Invalid UTF-8 reads as U+FFFD, which clean_text drops.
  CHECK(ids_of(t, "hel\xFFlo") == (Ids{2, 8, 3}));  // U+FFFD dropped: "hello"
  CHECK(ids_of(t, "hello \xFF") == (Ids{2, 8, 3}));
  std::vector<std::string> words = t.words("Hello,  W\xC3\xB6rld!");
  CHECK((words == std::vector<std::string>{"hello", ",", "world", "!"}));
}

static void test_canonical_ordering() {
  // strip_accents without lowercase: canonical ordering sorts the non-starters that are not Mn
  // and so survive. U+1D16D (Mc, ccc 226) moves after U+1D165 (Mc, ccc 216); U+05B0 (Mn, ccc 10)
  // is dropped.
  const Tokenizer t = ignite::parse_tokenizer_json(
      tokenizer_json(R"({"type": "BertNormalizer", "lowercase": false, "strip_accents": true})"), 512, "test");
  const auto w = t.words("a\xF0\x9D\x85\xAD\xF0\x9D\x85\xA5\xD6\xB0");  // a U+1D16D U+1D165 U+05B0
  CHECK(w.size() == 1 && w[0] == "a\xF0\x9D\x85\xA5\xF0\x9D\x85\xAD");   // a U+1D165 U+1D16D
  CHECK(t.words("A\xC3\x89") == std::vector<std::string>{"AE"});
}

// VocabMap compares a key's first 8 bytes in a register and the rest from its tail store, and
// find_padded ignores the bytes after the key: keys around those lengths, sharing heads.
static void test_vocab_map() {
  using ignite::VocabMap;
  const std::vector<std::string> keys = {"a", "abcdefg", "abcdefgh", "abcdefghi", "abcdefgh12345678",
                                         "abcdefgh123456789", "abcdefgh12345679", "zzzzzzzzzzzzzzzzzzzz"};
  std::vector<std::pair<std::string_view, std::int32_t>> entries;
  for (std::size_t i = 0; i < keys.size(); ++i) entries.emplace_back(keys[i], static_cast<std::int32_t>(i));
  entries.emplace_back("a", 42);  // a repeated key: the last one wins
  VocabMap map;
  map.build(entries);
  CHECK(map.size() == keys.size());
  CHECK(map.max_key_bytes() == 20);
  CHECK(map.find("a") == 42);
  for (std::size_t i = 1; i < keys.size(); ++i) CHECK(map.find(keys[i]) == static_cast<std::int32_t>(i));
  for (const char* absent : {"", "b", "abcdef", "abcdefgx", "abcdefgh1", "abcdefgh1234567", "abcdefgh12345677",
                             "abcdefgh1234567890", "Abcdefgh", "zzzzzzzzzzzzzzzzzzz", "zzzzzzzzzzzzzzzzzzzzz"}) {
    CHECK(map.find(absent) == -1);
  }
  // Prefixes of a longer buffer: only the first n bytes count, whatever follows.
  const std::string buf = std::string("abcdefgh123456789XYZ") + std::string(VocabMap::kPadding, '\xFF');
  for (bool likely_miss : {false, true}) {
    CHECK(map.find_padded(buf.data(), 1, likely_miss) == 42);
    CHECK(map.find_padded(buf.data(), 7, likely_miss) == 1);
    CHECK(map.find_padded(buf.data(), 8, likely_miss) == 2);
    CHECK(map.find_padded(buf.data(), 9, likely_miss) == -1);
    CHECK(map.find_padded(buf.data(), 16, likely_miss) == 4);
    CHECK(map.find_padded(buf.data(), 17, likely_miss) == 5);
    CHECK(map.find_padded(buf.data(), 18, likely_miss) == -1);
  }
  CHECK(VocabMap::hash_padded(buf.data(), 9) == VocabMap::hash_padded("abcdefgh1\0\0\0\0\0\0\0", 9));
}

// Words past the 256 bytes the model copies on the stack, and at max_input_chars_per_word.
static void test_long_words() {
  ignite::WordPieceOptions options;
  options.vocab = {{"[UNK]", 0}, {"a", 1}, {"##a", 2}, {"\xD0\xB6", 3}, {"##\xD0\xB6", 4}};
  options.max_input_chars_per_word = 200;
  const ignite::WordPiece model(options);
  for (std::size_t n : {1, 100, 200, 201, 300}) {
    for (const std::string& unit : {std::string("a"), std::string("\xD0\xB6")}) {
      std::string word;
      for (std::size_t i = 0; i < n; ++i) word += unit;
      Ids ids;
      model.tokenize(word, n, ids);
      if (n > 200) {
        CHECK(ids == Ids{0});
      } else {
        CHECK(ids.size() == n && ids[0] == (unit == "a" ? 1 : 3));
        CHECK(std::count(ids.begin(), ids.end(), unit == "a" ? 2 : 4) == static_cast<std::ptrdiff_t>(n - 1));
      }
    }
  }
  Ids ids;
  model.tokenize("aab", 3, ids);  // "b" matches nothing: the whole word is [UNK]
  CHECK(ids == Ids{0});
}

static void test_truncation() {
  const Tokenizer t = ignite::parse_tokenizer_json(tokenizer_json(), 5, "test");
  std::size_t n = 0;
  CHECK(ids_of(t, "un un un un un", &n) == (Ids{2, 5, 5, 5, 3}));
  CHECK(n == 7);
  CHECK(ids_of(t, "unaffable unaffable", &n) == (Ids{2, 5, 6, 7, 3}));
  CHECK(n == 8);
  const Tokenizer two = ignite::parse_tokenizer_json(tokenizer_json(), 2, "test");
  CHECK(ids_of(two, "un un", &n) == (Ids{2, 3}));
  const Tokenizer one = ignite::parse_tokenizer_json(tokenizer_json(), 1, "test");  // below the specials: none cut
  CHECK(ids_of(one, "un un", &n) == (Ids{2, 5, 5, 3}));
  CHECK(throws_invalid([] { ignite::parse_tokenizer_json(tokenizer_json(), 0, "test"); }));
}

static void test_refusals() {
  auto refused = [](const std::string& json) {
    return throws_invalid([&] { ignite::parse_tokenizer_json(json, 128, "test"); });
  };
  CHECK(!refused(tokenizer_json()));
  CHECK(refused(tokenizer_json(R"({"type": "Sequence", "normalizers": []})")));
  CHECK(refused(tokenizer_json(R"({"type": "BertNormalizer", "lowercase": "yes"})")));
  CHECK(refused(tokenizer_json(R"({"type": "NFKC"})")));
  CHECK(refused(tokenizer_json(R"(null)", "BPE")));
  CHECK(refused(tokenizer_json(R"(null)", "Unigram")));
  CHECK(refused(tokenizer_json(R"(null)", "WordPiece",
                               R"(, {"id": 20, "content": "x", "single_word": false, "lstrip": true, "rstrip": false, "normalized": false})")));
  CHECK(refused(tokenizer_json(R"(null)", "WordPiece",
                               R"(, {"id": 20, "content": "x", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true})")));
  std::string no_unk = tokenizer_json();
  no_unk.replace(no_unk.find("\"[UNK]\": 1,"), 11, "");
  CHECK(refused(no_unk));
  std::string pretok = tokenizer_json();
  pretok.replace(pretok.find("BertPreTokenizer"), 16, "Whitespace");
  CHECK(refused(pretok));
  CHECK(refused("{\"model\": 1"));
  CHECK(refused("[]"));
  try {
    ignite::load_tokenizer_json("/nonexistent/tokenizer.json", 128);
    CHECK(false);
  } catch (const ignite::NotFound&) {
  }
}

static void test_batch_threads() {
  const Tokenizer t = ignite::parse_tokenizer_json(tokenizer_json(), 16, "test");
  std::string arena;
  std::vector<std::int64_t> offsets{0};
  const char* pieces[] = {"un", "aff", "able ", "hello", "[MASK]", "\xE4\xB8\xAD", "!", " ", "\xFF", "Caf\xC3\xA9 ",
                          "\xF0\x9F\x98\x80", "aaaa"};
  std::uint32_t seed = 12345;
  for (int i = 0; i < 20000; ++i) {
    seed = seed * 1103515245u + 12345u;
    const int n = static_cast<int>((seed >> 16) % 40);
    for (int k = 0; k < n; ++k) {
      seed = seed * 1103515245u + 12345u;
      arena += pieces[(seed >> 16) % 12];
    }
    offsets.push_back(static_cast<std::int64_t>(arena.size()));
  }
  const std::size_t n = offsets.size() - 1;
  const auto one = t.encode_batch(arena.data(), offsets.data(), n, 1);
  const auto many = t.encode_batch(arena.data(), offsets.data(), n, 4);
  CHECK(one.ids == many.ids && one.offsets == many.offsets && one.n_tokens == many.n_tokens);
  CHECK(one.offsets.size() == n + 1 && one.offsets[n] == static_cast<std::int64_t>(one.ids.size()));
  bool within = true;
  for (std::size_t i = 0; i < n; ++i) within = within && one.offsets[i + 1] - one.offsets[i] <= 16;
  CHECK(within);
  const auto none = t.encode_batch(arena.data(), offsets.data(), 0, 4);
  CHECK(none.ids.empty() && none.offsets.size() == 1);

  // encode_rows: prefix + the texts of some rows, in any order, read in place, equals
  // encode_batch over an arena that holds those prefixed texts.
  const std::string prefix = "un [MASK]";
  std::vector<std::int64_t> rows;
  for (std::size_t i = n; i-- > 0;) {
    if (i % 3 == 0) rows.push_back(static_cast<std::int64_t>(i));
  }
  rows.push_back(7);  // repeated
  std::string joined;
  std::vector<std::int64_t> joined_offsets{0};
  for (const auto r : rows) {
    joined += prefix;
    joined.append(arena, static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(offsets[r + 1] - offsets[r]));
    joined_offsets.push_back(static_cast<std::int64_t>(joined.size()));
  }
  const auto want = t.encode_batch(joined.data(), joined_offsets.data(), rows.size(), 1);
  const ignite::TextArena texts{arena.data(), arena.size(), offsets.data(), n};
  for (const unsigned threads : {1u, 4u}) {
    const auto got = t.encode_rows(texts, rows.data(), rows.size(), prefix, threads);
    CHECK(got.ids == want.ids && got.offsets == want.offsets && got.n_tokens == want.n_tokens &&
          got.uncertain == want.uncertain);
  }
  const std::int64_t outside[] = {static_cast<std::int64_t>(n)}, negative[] = {-1};
  CHECK(throws_invalid([&] { t.encode_rows(texts, outside, 1, "", 1); }));
  CHECK(throws_invalid([&] { t.encode_rows(texts, negative, 1, "", 1); }));
  const ignite::TextArena short_arena{arena.data(), static_cast<std::size_t>(offsets[n] - 1), offsets.data(), n};
  CHECK(throws_invalid([&] { t.encode_rows(short_arena, nullptr, n, "", 1); }));
}

int main() {
  test_utf8();
  test_unicode_props();
  test_json();
  test_pipeline();
  test_canonical_ordering();
  test_truncation();
  test_vocab_map();
  test_long_words();
  test_refusals();
  test_batch_threads();
  return ignite_test::finish("test_tokenizer");
}
