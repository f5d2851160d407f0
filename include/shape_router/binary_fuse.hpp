// Binary fuse filter, 3-wise, 8-bit fingerprints (Graf & Lemire, 2022): the
// first stage of a static index lookup, which stops most keys no shape has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "shape_router/mixer.hpp"

namespace shape_router {

// How BinaryFuse8 sizes its array and retries a failed construction. The sizing
// is the reference implementation's for arity 3: tighter fails to peel too
// often, looser only costs memory.
struct FuseParams {
  // Cells a key's fingerprint is spread over: 3 peels at about 1.125 cells a key.
  int arity = 3;
  // Bits a fingerprint: a key no shape has passes 1 time in 256, at ~9 bits a key.
  int fingerprint_bits = 8;
  // Segment length 2^floor(ln n / ln segment_log_base + segment_log_offset), at
  // most max_segment_length: segments grow with n so that peeling still succeeds.
  double segment_log_base = 3.33;
  double segment_log_offset = 2.25;
  uint32_t max_segment_length = uint32_t{1} << 18;
  // Cells: n × max(min_size_factor, size_factor_offset + size_factor_slope ×
  // ln size_factor_keys / ln n): small key sets need more room a key to peel.
  double min_size_factor = 1.125;
  double size_factor_offset = 0.875;
  double size_factor_slope = 0.25;
  double size_factor_keys = 1000000.0;
  // A construction that does not peel retries with a new seed,
  // mix64(seed_base + attempt × kSeedStep): each fails with a small probability,
  // so 64 attempts fail only when the keys defeat the mixer.
  int max_attempts = 64;
  uint64_t seed_base = 0x726f757465ULL;  // "route"
  // Just past a step of the segment length the sizing above can be too tight to
  // peel (also seen upstream): after this many failed seeds, one more segment.
  int attempts_per_segment_step = 4;
};
inline constexpr FuseParams kFuseParams{};

class BinaryFuse8 {
 public:
  // What a lookup reads before the fingerprints: 40 bytes, kept apart from the
  // filter (StaticIndex::heads) so that lookups of a many-part index find them
  // in a few cache lines.
  struct Head {
    const uint8_t* fingerprints = nullptr;  // nullptr: empty, contains nothing
    uint64_t seed = 0;
    uint64_t seed_mix = 0;  // mix64(seed + kGoldenGamma)
    Mixer mixer = default_mixer;
    uint32_t segment_length = 0;
    uint32_t segment_mask = 0;
    uint32_t segment_count_length = 0;
  };

  // keys must be distinct. Returns false only if construction kept failing.
  bool build(const std::vector<uint64_t>& keys, Mixer mixer = default_mixer);
  bool contains(uint64_t key) const noexcept { return contains(head(), key); }
  static bool contains(const Head& head, uint64_t key) noexcept {
    if (head.fingerprints == nullptr) return false;
    const uint64_t h = mix_key(head.mixer, key, head.seed, head.seed_mix);
    uint32_t p0, p1, p2;
    positions(head, h, p0, p1, p2);
    return static_cast<uint8_t>(fingerprint(h) ^ head.fingerprints[p0] ^ head.fingerprints[p1] ^
                                head.fingerprints[p2]) == 0;
  }
  Head head() const noexcept {
    Head h;
    h.fingerprints = fingerprints_.empty() ? nullptr : fingerprints_.data();
    h.seed = seed_;
    h.seed_mix = seed_mix_;
    h.mixer = mixer_;
    h.segment_length = segment_length_;
    h.segment_mask = segment_mask_;
    h.segment_count_length = segment_count_length_;
    return h;
  }
  size_t bytes() const noexcept { return fingerprints_.size(); }

 private:
  static uint8_t fingerprint(uint64_t h) noexcept { return static_cast<uint8_t>(h ^ (h >> 32)); }
  static void positions(const Head& head, uint64_t h, uint32_t& p0, uint32_t& p1, uint32_t& p2) noexcept {
    const uint64_t segment = (static_cast<unsigned __int128>(h) * head.segment_count_length) >> 64;
    p0 = static_cast<uint32_t>(segment);
    p1 = p0 + head.segment_length;
    p2 = p1 + head.segment_length;
    p1 ^= static_cast<uint32_t>((h >> 18) & head.segment_mask);
    p2 ^= static_cast<uint32_t>(h & head.segment_mask);
  }
  void positions(uint64_t h, uint32_t& p0, uint32_t& p1, uint32_t& p2) const noexcept {
    positions(head(), h, p0, p1, p2);
  }

  std::vector<uint8_t> fingerprints_;
  uint64_t seed_ = 0;
  uint64_t seed_mix_ = 0;  // mix64(seed_ + kGoldenGamma)
  uint32_t segment_length_ = 0;
  uint32_t segment_mask_ = 0;
  uint32_t segment_count_length_ = 0;
  Mixer mixer_ = default_mixer;
};

}  // namespace shape_router
