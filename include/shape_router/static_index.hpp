// The static index: the part of the routing index built whole from (key, shape
// slot) pairs and never changed, only replaced.
//
//   key (64-bit hash of relation, column, normalised value)
//     → front filter (blocked Bloom, one word): most keys no shape has stop here
//     → the key's part, by a multiplicative hash
//     → binary fuse filter (8-bit fingerprints), only in an index too small for
//       a front filter
//     → perfect hash → slot
//     → slot fingerprint (8 bits): catches the filters' false positives
//     → one shape inline, or an offset into a deduplicated pool of shape lists
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "shape_router/binary_fuse.hpp"
#include "shape_router/mixer.hpp"
#include "shape_router/perfect_hash.hpp"

namespace shape_router {

// How the static index is cut into parts and filtered in front.
struct StaticIndexParams {
  // Keys a part (about): a build holds the temporaries of one part per thread,
  // not of every key at once (at a million keys they were most of the peak
  // memory), and a part's working set stays in cache while it is built.
  size_t part_keys = size_t{1} << 15;
  // The front filter is built from this many keys (with their shapes) on, and
  // then the parts have no fuse filter: a key the front filter lets through
  // reads the perfect hash's pilot and its slot, as many lines as the fuse
  // filter's cells would have been, and the build and the memory of the fuse
  // filters are saved. A smaller index keeps its fuse filter, which sits in
  // cache (the regression suite counts its false positives on a 2,001-key index).
  size_t front_min_keys = 8192;
  // Front filter bits a key (as the shapes list them: a key n shapes share counts
  // n times): each key sets four bits of one 64-bit word, so that about 0.56% of
  // the keys no shape has pass (4.7% at 7 bits). At a million shapes each key
  // that passes reads the perfect hash's pilot and slot from memory, two misses
  // that cost more than the filter's 9 more bits a key.
  size_t front_bits_per_key = 16;
};
inline constexpr StaticIndexParams kStaticIndexParams{};

// A slot value or overlay entry with this bit names a list of shapes (its index
// in the pool or in lists, the other 31 bits) instead of one shape.
constexpr uint32_t kListFlag = 0x80000000u;
constexpr uint32_t kListIndexMask = ~kListFlag;

// Slot fingerprint: independent of the filter's (different mixing), so a key the
// filter wrongly lets through (1 in 256) is caught here with probability 255/256:
// about 1 probe in 65,536 of keys no shape has yields a (harmless) extra candidate.
inline uint8_t slot_fingerprint(uint64_t key) {
  return static_cast<uint8_t>(mix64(key + 0x5851f42d4c957f2dULL) >> 56);
}

// One part of the static index: everything lookups of its keys read. Built from
// (key, slot) pairs by a pure function, so a build can run on another thread.
struct StaticPart {
  BinaryFuse8 filter;
  PerfectHash perfect_hash;
  std::vector<uint8_t> slot_fingerprints;
  std::vector<uint32_t> slot_values;  // kListFlag clear: one shape slot; set: offset into pool
  std::vector<uint32_t> pool;         // count, then shape slots
  size_t keys = 0;
};

// Builds a part of pairs (key, shape slot), which it sorts by key, stably: a
// key's list of shapes keeps the pairs' order; without with_filter, the part
// has no fuse filter (an index with a front filter). Returns false when the
// keys defeat the hash functions (only a broken mixer does that); throws
// std::bad_alloc. Touches nothing but its arguments.
bool build_static_part(std::vector<std::pair<uint64_t, uint32_t>>& pairs, Mixer mixer, StaticPart& out,
                       bool with_filter = true);

// The front filter's bit patterns (StaticIndex::front_bits), fixed at compile time.
struct FrontPatterns {
  uint64_t masks[64];
};
constexpr FrontPatterns make_front_patterns() {
  FrontPatterns patterns{};
  uint64_t state = 0;
  for (uint64_t& mask : patterns.masks) {
    int bits = 0;
    while (bits < 4) {
      // splitmix64
      uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      const uint64_t bit = uint64_t{1} << (z & 63);
      if ((mask & bit) == 0) {
        mask |= bit;
        bits++;
      }
    }
  }
  return patterns;
}
inline constexpr FrontPatterns kFrontPatterns = make_front_patterns();

// The parts, and a blocked Bloom filter in front of them: the keys no shape has
// that it stops cost one memory read instead of the perfect hash's two (pilot
// and slot) and its hashing.
struct StaticIndex {
  std::vector<StaticPart> parts;
  std::vector<BinaryFuse8::Head> heads;  // parts[i].filter.head(); none with a front filter
  size_t keys = 0;
  // Cut into a slice of front_slice words a part, so that each part's build
  // fills its own slice (in its thread, in cache).
  std::vector<uint64_t> front;  // empty below kStaticIndexParams.front_min_keys keys (and fuse filters)
  size_t front_slice = 0;

  // A key's front hash: the key itself. Every stored key is a hash already
  // (xxh3 or mix64 of a value), its bits as even as a second mix would make them.
  static uint64_t front_hash(uint64_t key) noexcept { return key; }
  // The word of front hash h within a slice of slice words.
  static size_t slice_word(uint64_t h, size_t slice) noexcept {
    return static_cast<size_t>((static_cast<unsigned __int128>(h) * slice) >> 64);
  }
  // The word of a key with front hash h: in its part's slice.
  size_t front_word(uint64_t key, uint64_t h) const noexcept { return word_of(key, h, parts.size(), front_slice); }
  static size_t word_of(uint64_t key, uint64_t h, size_t part_count, size_t slice) noexcept {
    return part_index(key, part_count) * slice + slice_word(h, slice);
  }
  // A key's four bits: one of 64 patterns of four distinct bits, rotated by six
  // bits of the hash (4,096 masks, as selective as four bits drawn at random)
  // for a load from a 512-byte table and a rotate, not four variable shifts.
  static uint64_t front_bits(uint64_t h) noexcept {
    const uint64_t pattern = kFrontPatterns.masks[h & 63];
    const unsigned r = static_cast<unsigned>(h >> 6) & 63;
    return (pattern << r) | (pattern >> ((64 - r) & 63));
  }
  // Whether key (as stored: never 0) may be in a part: never false for one that is.
  bool may_contain(uint64_t key) const noexcept {
    if (front.empty()) return keys > 0;
    const uint64_t h = front_hash(key), bits = front_bits(h);
    return (front[front_word(key, h)] & bits) == bits;
  }
  // A key's front filter word and bits, made when the key is read ahead so
  // that its test later is one load and a compare (ShapeIndex::prefetch_probes).
  struct FrontProbe {
    uint64_t bits;
    size_t word;
  };
  // may_contain of the key probe was made for, by this very filter.
  bool may_contain(const FrontProbe& probe) const noexcept {
    if (front.empty()) return keys > 0;
    return (front[probe.word] & probe.bits) == probe.bits;
  }

  static size_t part_count_for(size_t keys, size_t part_keys) noexcept {
    return keys <= part_keys ? 1 : (keys + part_keys - 1) / part_keys;
  }
  // Fibonacci hashing: the multiply spreads the key's bits upwards, the high
  // bits of the product pick the part.
  static size_t part_index(uint64_t key, size_t part_count) noexcept {
    return static_cast<size_t>((static_cast<unsigned __int128>(key * kGoldenGamma) * part_count) >> 64);
  }
  size_t part_of(uint64_t key) const noexcept { return part_index(key, parts.size()); }
};

}  // namespace shape_router
