// Construction of the binary fuse filter (binary_fuse.hpp): hash, then peel.
#include "shape_router/binary_fuse.hpp"

#include <algorithm>
#include <cmath>

#include "radix_sort.hpp"

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace shape_router {

static_assert(kFuseParams.arity == 3, "positions() computes three cells");
static_assert(kFuseParams.fingerprint_bits == 8, "fingerprints are bytes");

bool BinaryFuse8::build(const std::vector<uint64_t>& keys, Mixer mixer) {
  mixer_ = mixer;
  fingerprints_.clear();
  if (keys.empty()) return true;
  const size_t n = keys.size();
  const double log_n = std::log(static_cast<double>(std::max<size_t>(n, 2)));
  const double segment_log = log_n / std::log(kFuseParams.segment_log_base) + kFuseParams.segment_log_offset;
  uint32_t segment_length = n == 0 ? 4 : 1u << static_cast<int>(std::floor(segment_log));
  segment_length = std::min<uint32_t>(segment_length, kFuseParams.max_segment_length);
  const double size_factor =
      n <= 1 ? 0
             : std::max(kFuseParams.min_size_factor,
                        kFuseParams.size_factor_offset +
                            kFuseParams.size_factor_slope * std::log(kFuseParams.size_factor_keys) / log_n);
  const size_t capacity = n <= 1 ? 0 : static_cast<size_t>(std::llround(static_cast<double>(n) * size_factor));
  size_t segment_count = (capacity + segment_length - 1) / segment_length;
  segment_count = segment_count > 2 ? segment_count - 2 : 1;
  segment_length_ = segment_length;
  segment_mask_ = segment_length - 1;

  std::vector<uint64_t> hashes(n);
  std::vector<uint8_t> count;  // a byte: a smaller working set; overflow retries
  std::vector<uint64_t> xor_hash;
  std::vector<uint32_t> queue;
  std::vector<uint64_t> stack_hash;
  std::vector<uint8_t> stack_which;
  stack_hash.reserve(n);
  stack_which.reserve(n);
  size_t array_length = 0;

  for (int attempt = 0; attempt < kFuseParams.max_attempts; attempt++) {
    if (attempt % kFuseParams.attempts_per_segment_step == 0) {
      if (attempt > 0) segment_count++;
      array_length = (segment_count + 2) * segment_length;
      segment_count_length_ = static_cast<uint32_t>(segment_count * segment_length);
      count.assign(array_length, 0);
      xor_hash.assign(array_length, 0);
      queue.reserve(array_length);
    }
    seed_ = mix64(kFuseParams.seed_base + static_cast<uint64_t>(attempt) * kSeedStep);
    seed_mix_ = mix64(seed_ + kGoldenGamma);
    for (size_t i = 0; i < n; i++) hashes[i] = mixer_(keys[i], seed_);
    // Distinct keys may still share a hash under a weak mixer: one entry serves both.
    radix_sort(hashes, [](uint64_t h) { return h; });
    const size_t distinct = static_cast<size_t>(std::unique(hashes.begin(), hashes.end()) - hashes.begin());
    std::fill(count.begin(), count.end(), 0);
    std::fill(xor_hash.begin(), xor_hash.end(), 0);
    bool overflow = false;
    for (size_t i = 0; i < distinct; i++) {
      uint32_t p[3];
      positions(hashes[i], p[0], p[1], p[2]);
      for (uint32_t q : p) {
        overflow |= count[q] == UINT8_MAX;
        count[q]++;
        xor_hash[q] ^= hashes[i];
      }
    }
    if (overflow) continue;  // a cell shared by 255+ keys (only with a broken mixer): new seed
    // Peel cells holding a single key.
    queue.clear();
    for (uint32_t i = 0; i < array_length; i++)
      if (count[i] == 1) queue.push_back(i);
    stack_hash.clear();
    stack_which.clear();
    while (!queue.empty()) {
      const uint32_t cell = queue.back();
      queue.pop_back();
      if (count[cell] != 1) continue;
      const uint64_t h = xor_hash[cell];
      uint32_t p[3];
      positions(h, p[0], p[1], p[2]);
      const uint8_t which = p[0] == cell ? 0 : (p[1] == cell ? 1 : 2);
      stack_hash.push_back(h);
      stack_which.push_back(which);
      for (uint32_t q : p) {
        count[q]--;
        xor_hash[q] ^= h;
        if (count[q] == 1) queue.push_back(q);
      }
    }
    if (stack_hash.size() != distinct) continue;  // a 2-core remained: new seed
    fingerprints_.assign(array_length, 0);
    for (size_t i = stack_hash.size(); i-- > 0;) {
      const uint64_t h = stack_hash[i];
      uint32_t p[3];
      positions(h, p[0], p[1], p[2]);
      const uint8_t which = stack_which[i];
      fingerprints_[p[which]] = static_cast<uint8_t>(fingerprint(h) ^ fingerprints_[p[(which + 1) % 3]] ^
                                                     fingerprints_[p[(which + 2) % 3]]);
    }
    return true;
  }
  fingerprints_.clear();
  return false;
}

}  // namespace shape_router
