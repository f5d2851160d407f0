// Perfect hash, PTHash-style with byte pilots and hash-and-evict (PtrHash):
// n distinct keys to distinct slots of a table a little larger than n, the
// second stage of a static index lookup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "shape_router/mixer.hpp"

namespace shape_router {

// How PerfectHash sizes its table and buckets and searches for pilots.
struct PhfParams {
  // Keys a bucket on average (λ): small buckets, so that one of a byte's 256
  // pilots almost always places a bucket's keys on free slots.
  double keys_per_bucket = 3.0;
  // n keys on n / load_factor slots: near-minimal (the slot table is most of
  // the index's memory), with enough free slots that few pilots are tried.
  double load_factor = 0.90;
  // Skewed buckets (PTHash): dense_key_share of the keys go to the first
  // dense_bucket_share of the buckets, so the large buckets are placed first,
  // while the table is empty.
  double dense_key_share = 0.6;
  double dense_bucket_share = 0.3;
  // Added to a key's hash before it is mixed again into its bucket: the bucket's
  // bits are independent of those that pick the slot, and 0 does not mix to 0.
  uint64_t bucket_salt = 0x243f6a8885a308d3ULL;  // the digits of pi
  // A build that fails retries with a new seed, mix64(seed_base + attempt ×
  // kSeedStep): after max_attempts, only keys that defeat the mixer remain.
  int max_attempts = 8;
  uint64_t seed_base = 0x6d706866ULL;  // "mphf"
  // An attempt gives up after evictions_per_key × n + min_evictions evictions:
  // a cycle of evictions would otherwise never end.
  size_t evictions_per_key = 64;
  size_t min_evictions = 1024;
  // After a placement that evicted, pilots are tried from this much further on,
  // so that eviction cycles break (coprime with 256: successive rotations start
  // from every pilot in turn).
  uint32_t rotation_step = 97;
};
inline constexpr PhfParams kPhfParams{};

// Non-minimal perfect hash: n distinct keys → distinct slots in [0, table_size).
class PerfectHash {
 public:
  // A pilot is a byte: a bucket has this many to choose from.
  static constexpr int kPilots = 256;

  bool build(const std::vector<uint64_t>& keys, Mixer mixer = default_mixer);
  size_t slot(uint64_t key) const noexcept {
    const uint64_t h = mix_key(mixer_, key, seed_, seed_mix_);
    return slot_for(h, pilots_[bucket_of(h)]);
  }
  size_t table_size() const noexcept { return table_size_; }
  size_t bytes() const noexcept { return pilots_.size(); }

 private:
  size_t bucket_of(uint64_t h) const noexcept {
    const uint64_t b = mix64(h + kPhfParams.bucket_salt);
    const uint32_t hi = static_cast<uint32_t>(b >> 32), lo = static_cast<uint32_t>(b);
    if (hi < static_cast<uint32_t>(kPhfParams.dense_key_share * 4294967296.0))
      return static_cast<size_t>((static_cast<uint64_t>(lo) * dense_buckets_) >> 32);
    return dense_buckets_ + static_cast<size_t>((static_cast<uint64_t>(lo) * (buckets_ - dense_buckets_)) >> 32);
  }
  // h is already well mixed: one multiply (Fibonacci hashing) spreads h ^ pilot key over the table.
  size_t slot_for(uint64_t h, uint8_t pilot) const noexcept {
    const uint64_t x = (h ^ pilot_keys_[pilot]) * kGoldenGamma;
    return static_cast<size_t>((static_cast<unsigned __int128>(x) * table_size_) >> 64);
  }
  bool try_build(const std::vector<uint64_t>& hashes);

  std::vector<uint8_t> pilots_;
  uint64_t pilot_keys_[kPilots];
  uint64_t seed_ = 0;
  uint64_t seed_mix_ = 0;  // mix64(seed_ + kGoldenGamma)
  size_t table_size_ = 0;
  size_t buckets_ = 0;
  size_t dense_buckets_ = 0;
  Mixer mixer_ = default_mixer;
};

}  // namespace shape_router
