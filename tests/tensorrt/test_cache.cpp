// Tests of the TensorRT-independent parts of engine/trt: SHA-256, the profile plan, the engine
// cache key and file format (round trip, every rejection), atomic writes and the build lock.
// Built and run by tests/test_tensorrt_cache.py with the sources:
//   g++ -std=c++17 -I engine tests/tensorrt/test_cache.cpp engine/trt/{sha256,profiles,engine_cache}.cpp
// usage: test_cache SCRATCH_DIR
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "trt/engine_cache.h"
#include "trt/profiles.h"
#include "trt/sha256.h"

namespace fs = std::filesystem;
using namespace ignite;
using namespace ignite::trt;

static int failures = 0;
#define EXPECT(cond)                                                      \
  do {                                                                    \
    if (!(cond)) {                                                        \
      std::fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                         \
    }                                                                     \
  } while (0)

template <typename E, typename F>
bool throws(F f) {
  try {
    f();
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
  return false;
}

static bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

static void test_sha256() {
  EXPECT(sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT(sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT(sha256_hex(two_blocks.data(), two_blocks.size()) ==
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  Sha256 pieces;  // uneven pieces must give the one-shot digest
  for (std::size_t at = 0, step = 1; at < million.size(); at += step, step = step * 7 % 997 + 1) {
    pieces.update(million.data() + at, std::min(step, million.size() - at));
  }
  const std::string expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  EXPECT(pieces.hex_digest() == expected);
  EXPECT(sha256_hex(million.data(), million.size()) == expected);
}

static void test_profiles() {
  const ProfilePlan plan = plan_profiles(65536, 256, {}, 1024, 2);
  EXPECT(plan.buckets.size() == 4);  // 32, 64, 128, 256
  EXPECT(plan.nb_profiles() == 8);
  std::int64_t next = 1;
  for (const auto& b : plan.buckets) {  // contiguous ranges covering 1..max_seq
    EXPECT(b.min_seq == next);
    EXPECT(b.opt_seq == b.max_seq);
    EXPECT(b.min_rows == 1 && b.opt_rows <= b.max_rows && b.max_rows <= 1024);
    next = b.max_seq + 1;
  }
  EXPECT(next == 257);
  EXPECT(plan.buckets[0].max_rows == 1024);                           // capped by max_rows
  EXPECT(plan.buckets[3].max_rows == 65536 / 129);                    // budget / shortest length
  EXPECT(plan.buckets[3].opt_rows == 65536 / 256);                    // full batch at the top
  EXPECT(plan.bucket_for(1) == 0 && plan.bucket_for(32) == 0 && plan.bucket_for(33) == 1);
  EXPECT(plan.bucket_for(256) == 3 && plan.bucket_for(257) == -1 && plan.bucket_for(0) == -1);
  EXPECT(plan.profile_index(1, 2) == 6);
  EXPECT(plan.max_tokens() >= 65536 && plan.max_rows() == 1024);
  // Every batch the batcher can make (rows x len <= budget, rows <= 1024, or one long row) fits.
  for (std::int64_t len = 1; len <= 256; ++len) {
    const std::int64_t rows = std::max<std::int64_t>(1, std::min<std::int64_t>(1024, 65536 / len));
    EXPECT(rows <= plan.buckets[static_cast<std::size_t>(plan.bucket_for(len))].max_rows);
  }
  const ProfilePlan tiny = plan_profiles(100, 512, {}, 1024, 1);
  EXPECT(tiny.buckets.back().max_rows == 1);  // a record longer than the budget still fits alone
  const ProfilePlan given = plan_profiles(65536, 512, {64, 128}, 1024, 2);
  EXPECT(given.buckets.size() == 3 && given.buckets.back().max_seq == 512);
  EXPECT(given.describe() != plan.describe());
  EXPECT(throws<InvalidArgument>([] { plan_profiles(65536, 512, {128, 64}, 1024, 2); }));
  EXPECT(throws<InvalidArgument>([] { plan_profiles(65536, 512, {64, 1024}, 1024, 2); }));
  EXPECT(throws<InvalidArgument>([] { plan_profiles(0, 512, {}, 1024, 2); }));
  EXPECT(throws<InvalidArgument>([] { plan_profiles(65536, 512, {}, 1024, 0); }));
}

static EngineKey sample_key() {
  EngineKey key;
  key.onnx_sha256 = sha256_hex("graph", 5);
  key.trt_version = 110100;
  key.gpu_name = "NVIDIA H100 80GB HBM3";
  key.sm_major = 9;
  key.sm_minor = 0;
  key.precision = "onnx/strong";
  key.profiles = plan_profiles(65536, 256, {}, 1024, 2).describe();
  return key;
}

static void test_key() {
  const EngineKey key = sample_key();
  EXPECT(key.digest().size() == 64);
  EXPECT(key.digest() == sample_key().digest());
  EXPECT(key.gpu_slug() == "nvidia-h100-80gb-hbm3-sm90");
  auto differs = [&](auto change) {
    EngineKey other = sample_key();
    change(other);
    return other.digest() != key.digest();
  };
  EXPECT(differs([](EngineKey& k) { k.onnx_sha256 = sha256_hex("other", 5); }));
  EXPECT(differs([](EngineKey& k) { k.trt_version = 101600; }));
  EXPECT(differs([](EngineKey& k) { k.gpu_name = "NVIDIA A100-SXM4-80GB"; }));
  EXPECT(differs([](EngineKey& k) { k.sm_minor = 9; }));
  EXPECT(differs([](EngineKey& k) { k.precision = "fp16/weak"; }));
  EXPECT(differs([](EngineKey& k) { k.profiles = "s1"; }));
  EXPECT(differs([](EngineKey& k) { k.builder_level = 5; }));
}

static void overwrite_byte(const std::string& path, std::streamoff offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(offset);
  f.write(&c, 1);
}

static void test_cache_file(const std::string& dir) {
  const EngineCache cache(dir, sample_key());
  std::string why = "stale";
  EXPECT(!cache.load(&why));
  EXPECT(why.empty());  // absent is not an error
  EXPECT(contains(cache.engine_path(), "nvidia-h100-80gb-hbm3-sm90-"));
  EXPECT(contains(cache.lock_path(), "nvidia-h100-80gb-hbm3-sm90.lock"));
  EXPECT(contains(cache.timing_cache_path(), "-trt110100.timing"));

  std::vector<char> plan(100000);
  for (std::size_t i = 0; i < plan.size(); ++i) plan[i] = static_cast<char>(i * 31 + 7);
  const std::string metadata = sample_key().describe() + "built_precision=bf16\n";
  cache.store(plan.data(), plan.size(), metadata);
  auto loaded = cache.load(&why);
  EXPECT(loaded && loaded->plan == plan && loaded->metadata == metadata);
  EXPECT(loaded && metadata_value(loaded->metadata, "built_precision").value_or("") == "bf16");
  EXPECT(loaded && metadata_value(loaded->metadata, "precision").value_or("") == "onnx/strong");
  EXPECT(loaded && !metadata_value(loaded->metadata, "missing"));
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT(!contains(entry.path().filename().string(), ".tmp."));  // no temporary left behind
  }

  const auto size = fs::file_size(cache.engine_path());
  overwrite_byte(cache.engine_path(), static_cast<std::streamoff>(size - 10));  // rot in the plan
  EXPECT(!cache.load(&why) && contains(why, "checksum"));
  cache.store(plan.data(), plan.size(), metadata);  // a rebuild replaces it
  EXPECT(cache.load(&why));

  fs::resize_file(cache.engine_path(), size - 1);  // a torn write
  EXPECT(!cache.load(&why) && contains(why, "size mismatch"));
  fs::resize_file(cache.engine_path(), 20);
  EXPECT(!cache.load(&why) && contains(why, "shorter than the header"));

  cache.store(plan.data(), plan.size(), metadata);
  overwrite_byte(cache.engine_path(), 0);
  EXPECT(!cache.load(&why) && contains(why, "bad magic"));

  EngineKey other_key = sample_key();
  other_key.trt_version = 101600;
  const EngineCache other(dir, other_key);
  other.store(plan.data(), plan.size(), metadata);
  fs::rename(other.engine_path(), cache.engine_path());  // right place, wrong key
  EXPECT(!cache.load(&why) && contains(why, "another key"));

  EXPECT(throws<InvalidArgument>([&] { cache.store(plan.data(), 0, metadata); }));
  EXPECT(throws<InvalidArgument>([] { EngineCache("", sample_key()); }));
  const EngineCache unwritable("/proc/ignite-cannot-write-here", sample_key());
  EXPECT(throws<IoError>([&] { unwritable.store(plan.data(), plan.size(), metadata); }));
}

static void test_lock(const std::string& dir) {
  const std::string path = dir + "/locks/gpu.lock";
  {
    FileLock first(path, nullptr);
    int polls = 0;
    // flock conflicts between open file descriptions, even in one process.
    EXPECT(throws<Cancelled>([&] { FileLock second(path, [&] { return ++polls >= 3; }); }));
    EXPECT(polls == 3);
  }
  FileLock again(path, [] { return true; });  // free again: taken at once, never asks to stop
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  test_sha256();
  test_profiles();
  test_key();
  test_cache_file(dir + "/cache");
  test_lock(dir);
  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
