// The routing index: which shapes may match a row, found from the row's value of
// an indexed column in (close to) constant time whatever the number of shapes.
//
//   key (64-bit hash of relation, column, normalised value)
//     → binary fuse filter (8-bit fingerprints): most keys no shape wants stop here
//     → perfect hash (PtrHash-style: byte pilots, hash-and-evict) → slot
//     → slot fingerprint (8 bits): catches the filter's false positives
//     → one shape inline, or an offset into a deduplicated pool of shape lists
// plus a small mutable overlay for shapes added since the last build and a
// tombstone bitmap for shapes dropped since then. Answers are supersets, never
// misses: the gate re-checks every candidate's full WHERE.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "shape_router/flat_map.hpp"

namespace shape_router {

// A 64-bit mixer whose quality the structures depend on; tests can swap in a weak
// one to force collisions.
using Mixer = uint64_t (*)(uint64_t key, uint64_t seed);
uint64_t default_mixer(uint64_t key, uint64_t seed);


// The mixer on the lookup path: the default one inline, with its seed's half
// mixed once at build (seed_mix), instead of two calls through the pointer.
inline uint64_t mix_key(Mixer mixer, uint64_t key, uint64_t seed, uint64_t seed_mix) noexcept {
  return mixer == default_mixer ? mix64(key ^ seed_mix) : mixer(key, seed);
}

// Binary fuse filter, 3-wise, 8-bit fingerprints (Graf & Lemire, 2022).
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
  // Asks the CPU to bring in the fingerprints contains() will read for key.
  static void prefetch(const Head& head, uint64_t key) noexcept {
    if (head.fingerprints == nullptr) return;
    const uint64_t h = mix_key(head.mixer, key, head.seed, head.seed_mix);
    uint32_t p0, p1, p2;
    positions(head, h, p0, p1, p2);
    __builtin_prefetch(head.fingerprints + p0);
    __builtin_prefetch(head.fingerprints + p1);
    __builtin_prefetch(head.fingerprints + p2);
  }
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

// Minimal-ish perfect hash: n distinct keys → distinct slots in [0, table_size).
class PerfectHash {
 public:
  bool build(const std::vector<uint64_t>& keys, Mixer mixer = default_mixer);
  size_t slot(uint64_t key) const noexcept {
    const uint64_t h = mix_key(mixer_, key, seed_, seed_mix_);
    return slot_for(h, pilots_[bucket_of(h)]);
  }
  size_t table_size() const noexcept { return table_size_; }
  size_t bytes() const noexcept { return pilots_.size(); }

 private:
  // Skewed buckets (PTHash): 60% of keys go to the first 30% of buckets.
  size_t bucket_of(uint64_t h) const noexcept {
    const uint64_t b = mix64(h + 0x243f6a8885a308d3ULL);
    const uint32_t hi = static_cast<uint32_t>(b >> 32), lo = static_cast<uint32_t>(b);
    if (hi < static_cast<uint32_t>(0.6 * 4294967296.0))
      return static_cast<size_t>((static_cast<uint64_t>(lo) * dense_buckets_) >> 32);
    return dense_buckets_ + static_cast<size_t>((static_cast<uint64_t>(lo) * (buckets_ - dense_buckets_)) >> 32);
  }
  // h is already well mixed: one multiply spreads h ^ pilot key over the table.
  size_t slot_for(uint64_t h, uint8_t pilot) const noexcept {
    const uint64_t x = (h ^ pilot_keys_[pilot]) * 0x9e3779b97f4a7c15ULL;
    return static_cast<size_t>((static_cast<unsigned __int128>(x) * table_size_) >> 64);
  }
  bool try_build(const std::vector<uint64_t>& hashes);

  std::vector<uint8_t> pilots_;
  uint64_t pilot_keys_[256];
  uint64_t seed_ = 0;
  uint64_t seed_mix_ = 0;  // mix64(seed_ + kGoldenGamma)
  size_t table_size_ = 0;
  size_t buckets_ = 0;
  size_t dense_buckets_ = 0;
  Mixer mixer_ = default_mixer;
};

struct IndexStats {
  size_t keys = 0;             // distinct keys in the static part
  size_t static_bytes = 0;     // filter + pilots + slot table + pool
  size_t filter_bytes = 0;
  size_t perfect_hash_bytes = 0;
  size_t slot_bytes = 0;
  size_t pool_bytes = 0;
  size_t key_store_bytes = 0;  // per-shape keys kept to rebuild (not needed by lookups)
  size_t overlay_keys = 0;
  size_t tombstones = 0;
  uint64_t rebuilds = 0;            // static parts installed (or fallen back on the overlay)
  uint64_t builds_started = 0;      // snapshots taken, on this thread or for a background build
  uint64_t background_builds = 0;   // of those, built on a background thread
  bool build_running = false;       // a background build has not been installed yet
  uint64_t longest_pause_ns = 0;    // longest time one maintain(false) call held the caller
};

// One part of the static index: everything lookups of its keys read. Built from
// (key, slot) pairs by a pure function, so a build can run on another thread.
struct StaticPart {
  BinaryFuse8 filter;
  PerfectHash perfect_hash;
  std::vector<uint8_t> slot_fingerprints;
  std::vector<uint32_t> slot_values;  // high bit clear: one shape slot; set: offset into pool
  std::vector<uint32_t> pool;         // count, then shape slots
  size_t keys = 0;
};

// Builds a part of pairs (key, shape slot), which it sorts. Returns false when
// the keys defeat the hash functions (only a broken mixer does that); throws
// std::bad_alloc. Touches nothing but its arguments.
bool build_static_part(std::vector<std::pair<uint64_t, uint32_t>>& pairs, Mixer mixer, StaticPart& out);

// The static index: keys split by a multiplicative hash into parts of about
// kPartKeys keys. A build holds the temporaries of one part per thread, not of
// every key at once (at a million keys they were most of the peak memory), and
// a part's working set stays in cache while it is built.
struct StaticIndex {
  static constexpr size_t kPartKeys = size_t{1} << 15;
  static constexpr uint64_t kPartMultiplier = 0x9e3779b97f4a7c15ULL;

  std::vector<StaticPart> parts;
  std::vector<BinaryFuse8::Head> heads;  // parts[i].filter.head(): what most lookups read
  size_t keys = 0;
  // A blocked Bloom filter in front of the parts: each key sets two bits of one
  // 64-bit word, 7 bits a key (within the 8 bytes a key of the static index), so
  // about 6% of the keys no shape has pass.
  // The others stop after one memory read instead of the fuse filter's four
  // (head and three cells) and its hashing. Only from kFrontMinKeys keys on: a
  // smaller index's filter sits in cache, and its funnel stays as it was (the
  // regression suite counts the fuse filter's false positives on a 2,001-key index).
  static constexpr size_t kFrontMinKeys = 8192;
  std::vector<uint64_t> front;

  static uint64_t front_hash(uint64_t key) noexcept {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    return key ^ (key >> 29);
  }
  size_t front_word(uint64_t h) const noexcept {
    return static_cast<size_t>((static_cast<unsigned __int128>(h) * front.size()) >> 64);
  }
  static uint64_t front_bits(uint64_t h) noexcept {
    return (uint64_t{1} << (h & 63)) | (uint64_t{1} << ((h >> 6) & 63));
  }
  // Whether key (as stored: never 0) may be in a part: never false for one that is.
  bool may_contain(uint64_t key) const noexcept {
    if (front.empty()) return keys > 0;
    const uint64_t h = front_hash(key), bits = front_bits(h);
    return (front[front_word(h)] & bits) == bits;
  }

  static size_t part_count_for(size_t keys, size_t part_keys) noexcept {
    return keys <= part_keys ? 1 : (keys + part_keys - 1) / part_keys;
  }
  static size_t part_index(uint64_t key, size_t part_count) noexcept {
    return static_cast<size_t>((static_cast<unsigned __int128>(key * kPartMultiplier) * part_count) >> 64);
  }
  size_t part_of(uint64_t key) const noexcept { return part_index(key, parts.size()); }
};

// Shapes are small integers ("slots", dense, chosen by the caller).
//
// Rebuilds of at least background_min_keys keys run on a background thread (a
// plain thread: no caller state, every signal blocked) from a snapshot of the
// live (key, shape) pairs, while lookups keep using the current static part,
// overlay and tombstones, which add() and drop() keep exact meanwhile. A later
// maintain() installs the result: shapes added since the snapshot stay in a new
// overlay, shapes of the snapshot dropped since become the new tombstones. The
// caller's pause is the snapshot (a copy of the key store) and the install.
class ShapeIndex {
 public:
  static constexpr size_t kDefaultBackgroundMinKeys = size_t{1} << 16;

  explicit ShapeIndex(Mixer mixer = default_mixer);
  ~ShapeIndex();
  ShapeIndex(const ShapeIndex&) = delete;
  ShapeIndex& operator=(const ShapeIndex&) = delete;

  // Rebuilds with fewer live keys run in the caller (SIZE_MAX: always).
  void set_background_min_keys(size_t keys) noexcept { background_min_keys_ = keys; }
  // Keys per part of the static index (tests use small parts to have many).
  void set_part_keys(size_t keys) noexcept { part_keys_ = std::max<size_t>(1, keys); }

  // Registers shape slot under keys (deduplicated here); a slot may have no key
  // (an empty IN list: it can never match). bulk: do not enter it in the overlay;
  // the caller runs maintain(true) before the next lookup (loading a catalog).
  void add(uint32_t slot, const uint64_t* keys, size_t count, bool bulk = false);
  void drop(uint32_t slot);
  bool contains_slot(uint32_t slot) const noexcept {
    return slot < shapes_.size() && shapes_[slot].live;
  }
  // Whether the live shape in slot was added under key itself (not merely
  // under one that shares a stored form: 0 and 1 are both stored as 1).
  bool has_key(uint32_t slot, uint64_t key) const noexcept {
    if (key <= 1 || !contains_slot(slot)) return false;
    const Shape& shape = shapes_[slot];
    const uint64_t* keys = keys_of(shape);
    for (uint32_t i = 0; i < shape.key_count; i++)
      if (keys[i] == key) return true;
    return false;
  }
  // Whether a static part (current, or being built) may still name the slot:
  // it cannot be reused until that part is replaced.
  bool slot_tombstoned(uint32_t slot) const noexcept {
    return bit(tombstones_, slot) || bit(pending_tombstones_, slot);
  }

  // Appends the slots registered under key (superset: may include none that
  // match; includes every live one). Returns counters of the stages passed.
  struct Probe {
    bool filter_pass = false;
    bool slot_hit = false;
  };
  Probe lookup(uint64_t key, std::vector<uint32_t>& out) const;
  // Whether lookup(key) may append a slot: false for most keys no shape has,
  // from one word of the front filter, inline (no call, no fuse filter probe).
  bool may_have(uint64_t key) const noexcept { return overlay_.keys > 0 || static_.may_contain(nonzero(key)); }

  // Starts loading the memory a later lookup(key) reads first (the filter's
  // fingerprints), so that the lookup of a change known in advance finds it in
  // cache. No effect on results.
  void prefetch(uint64_t key) const noexcept;

  // Installs a finished background build; otherwise, when the overlay and
  // tombstones grew past a fraction of the static part, starts a rebuild (in
  // the background when large enough). force: wait for any background build and
  // rebuild everything now. Returns whether a new static part was installed.
  bool maintain(bool force = false);
  // Gives back the key store's growth slack (after loading).
  void reserve(size_t slots) { shapes_.reserve(slots); }
  void shrink_to_fit() {
    shrink_if_slack(keys_);
    shrink_if_slack(shapes_);
  }
  // Waits for a background build to finish, without installing it (tests).
  void wait_for_build() noexcept;
  IndexStats stats() const;
  size_t live_shapes() const noexcept { return live_; }
  // Calls visit(key) for each key of each live shape, bulk-loaded ones included
  // (keys as stored: 0 is kept as 1).
  template <typename Visit>
  void for_each_live_key(Visit&& visit) const {
    for (const Shape& shape : shapes_) {
      if (!shape.live) continue;
      const uint64_t* keys = keys_of(shape);
      for (uint32_t i = 0; i < shape.key_count; i++) visit(keys[i]);
    }
  }
  static uint64_t stored_key(uint64_t key) noexcept { return nonzero(key); }
  // Calls visit(key) for each key of the live shape in slot (as stored).
  template <typename Visit>
  void for_each_key_of(uint32_t slot, Visit&& visit) const {
    if (!contains_slot(slot)) return;
    const Shape& shape = shapes_[slot];
    const uint64_t* keys = keys_of(shape);
    for (uint32_t i = 0; i < shape.key_count; i++) visit(keys[i]);
  }

 private:
  // 16 bytes a shape, its key included when it has one (most shapes): only
  // shapes with several keys (IN lists) use keys_.
  struct Shape {
    uint64_t key_or_offset = 0;  // key_count == 1: the key; > 1: offset of its keys in keys_
    uint32_t epoch = 0;          // epoch_ when added: in the static part iff <= static_epoch_
    uint32_t key_count : 31;
    uint32_t live : 1;
    Shape() : key_count(0), live(0) {}
  };
  const uint64_t* keys_of(const Shape& shape) const noexcept {
    return shape.key_count == 1 ? &shape.key_or_offset : keys_.data() + shape.key_or_offset;
  }
  struct BuildJob;
  static uint64_t nonzero(uint64_t key) noexcept { return key == 0 ? 1 : key; }  // FlatMap reserves 0
  static bool bit(const std::vector<uint64_t>& bits, uint32_t i) noexcept {
    return i < bits.size() * 64 && ((bits[i / 64] >> (i % 64)) & 1);
  }
  bool in_static(const Shape& shape) const noexcept { return shape.epoch <= static_epoch_; }
  bool rebuild_due() const noexcept;
  // copy: the job builds from its own copy of the shapes (a background build);
  // otherwise from the index's own, so the caller must build before changing them.
  std::unique_ptr<BuildJob> snapshot(bool copy);
  // Builds the static index of the live shapes' keys, part by part, on up to two threads.
  static bool build_static_index(const Shape* shapes, size_t shape_count, const uint64_t* keys, Mixer mixer,
                                 size_t part_keys, StaticIndex& out);
  void start_background(std::unique_ptr<BuildJob> job);
  bool install(BuildJob& job);
  void fall_back_on_overlay();

  Mixer mixer_;
  size_t background_min_keys_ = kDefaultBackgroundMinKeys;
  size_t part_keys_ = StaticIndex::kPartKeys;
  // per shape slot
  std::vector<Shape> shapes_;
  std::vector<uint64_t> keys_;       // the keys of shapes with several, for rebuilds
  size_t dead_keys_ = 0;             // keys_ entries of dropped shapes
  size_t live_keys_ = 0;             // keys of live shapes (inline ones included)
  std::vector<uint64_t> tombstones_; // bitmap over slots dropped while in the static part
  size_t tombstone_count_ = 0;
  size_t live_ = 0;
  uint32_t epoch_ = 1;               // shapes added now get this epoch
  uint32_t static_epoch_ = 0;        // the static part holds the live shapes of epochs <= this

  // static part
  StaticIndex static_;

  // overlay: key → shape slots added since the last build. The map's value is
  // the slot itself (high bit clear), or 0x80000000 | index into overlay_lists_
  // when the key has several: most keys have one shape and allocate nothing.
  struct Overlay {
    FlatMap index;
    std::vector<std::vector<uint32_t>> lists;
    size_t keys = 0;
    void insert(uint64_t key, uint32_t slot);
  };
  Overlay overlay_;
  size_t changes_since_build_ = 0;  // keys added and dropped: a failed build is not retried until more come

  // background build in progress (nullptr when none)
  std::unique_ptr<BuildJob> job_;
  uint32_t build_epoch_ = 0;                  // the job holds the live shapes of epochs <= this
  std::vector<uint64_t> pending_tombstones_;  // its shapes dropped since the snapshot
  size_t pending_tombstone_count_ = 0;
  std::vector<uint32_t> added_during_build_;  // slots added since the snapshot

  uint64_t rebuilds_ = 0;
  uint64_t builds_started_ = 0;
  uint64_t background_builds_ = 0;
  uint64_t longest_pause_ns_ = 0;
};

}  // namespace shape_router
