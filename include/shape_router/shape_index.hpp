// The routing index: which shapes may match a row, found from the row's value of
// an indexed column in (close to) constant time whatever the number of shapes.
// A static index (static_index.hpp) of the shapes as of its last build, plus a
// small mutable overlay for shapes added since and a tombstone bitmap for shapes
// dropped since, folded into a new static index by a rebuild, in the caller or
// on a background thread. Answers are supersets, never misses: the gate
// re-checks every candidate's full WHERE.
#pragma once

#include "shape_router/huge_pages.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "shape_router/flat_map.hpp"
#include "shape_router/mixer.hpp"
#include "shape_router/rebuild_params.hpp"
#include "shape_router/static_index.hpp"

namespace shape_router {

// When ShapeIndex rebuilds, and on how many threads.
struct ShapeIndexParams {
  // Changes are keys added and dropped since the last build, against the keys
  // of the static index and the overlay.
  RebuildParams rebuild = {/*change_divisor=*/4, /*min_changes=*/4096, /*background_min_entries=*/size_t{1} << 16};
  // The key store (the keys of shapes with several, kept for rebuilds) is
  // compacted by a rebuild once dropped shapes' keys are 1/dead_key_divisor of
  // it, and at least min_dead_keys: shapes added and dropped between builds
  // must not grow it without bound.
  size_t dead_key_divisor = 2;
  size_t min_dead_keys = 4096;
  // Builds of fewer keys use one thread: below, a second one costs more than it saves.
  size_t parallel_min_keys = size_t{1} << 16;
};
inline constexpr ShapeIndexParams kShapeIndexParams{};

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
    uint64_t single;
    const uint64_t* keys = keys_of(shape, single);
    for (uint32_t i = 0; i < shape.key_count(); i++)
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
  // from one word of the front filter, inline (no call, no perfect hash probe).
  bool may_have(uint64_t key) const noexcept { return overlay_.keys > 0 || static_.may_contain(nonzero(key)); }

  // Starts loading the memory a later lookup(key) reads first (the front
  // filter's word), so that the lookup of a change known in advance finds it in
  // cache. No effect on results.
  void prefetch(uint64_t key) const noexcept {
    if (static_.front.empty()) return;
    key = nonzero(key);
    prefetch_line(&static_.front[static_.front_word(key, StaticIndex::front_hash(key))]);
  }
  // prefetch of count keys, keeping what may_have(probe) then needs of each:
  // valid while front_generation() stays the same. (The filter's fields in
  // locals: the stores to out would make the loop reload them.)
  void prefetch_probes(const uint64_t* keys, size_t count, StaticIndex::FrontProbe* out) const noexcept {
    if (static_.front.empty()) {
      for (size_t i = 0; i < count; i++) out[i] = StaticIndex::FrontProbe{0, 0};
      return;
    }
    const uint64_t* front = static_.front.data();
    const size_t part_count = static_.parts.size(), slice = static_.front_slice;
    for (size_t i = 0; i < count; i++) {
      const uint64_t key = nonzero(keys[i]);
      const uint64_t h = StaticIndex::front_hash(key);
      const size_t word = StaticIndex::word_of(key, h, part_count, slice);
      prefetch_line(front + word);
      out[i] = StaticIndex::FrontProbe{StaticIndex::front_bits(h), word};
    }
  }
  bool may_have(const StaticIndex::FrontProbe& probe) const noexcept {
    return overlay_.keys > 0 || static_.may_contain(probe);
  }
  // The positions i of keys[0, count) that may_have passes, in order, into out
  // (room for count); with fronts (prefetch_probes of the keys, under the
  // current front_generation), in a loop of a few instructions a key, without
  // a branch. Returns how many.
  size_t passing(const uint64_t* keys, const StaticIndex::FrontProbe* fronts, size_t count,
                 uint32_t* out) const noexcept {
    size_t n = 0;
    if (fronts != nullptr && overlay_.keys == 0 && !static_.front.empty()) {
      const uint64_t* front = static_.front.data();
      for (size_t i = 0; i < count; i++) {
        out[n] = static_cast<uint32_t>(i);
        n += (front[fronts[i].word] & fronts[i].bits) == fronts[i].bits;
      }
      return n;
    }
    for (size_t i = 0; i < count; i++)
      if (may_have(keys[i])) out[n++] = static_cast<uint32_t>(i);
    return n;
  }
  // Whether passing(keys, fronts, count) would list any key: the same tests,
  // with the filter's fields read once and no list kept (most changes pass none).
  bool any_passing(const uint64_t* keys, const StaticIndex::FrontProbe* fronts, size_t count) const noexcept {
    if (count == 0) return false;
    if (overlay_.keys > 0) return true;
    if (static_.front.empty()) return static_.keys > 0;
    const uint64_t* front = static_.front.data();
    bool any = false;
    if (fronts != nullptr) {
      for (size_t i = 0; i < count; i++) any |= (front[fronts[i].word] & fronts[i].bits) == fronts[i].bits;
      return any;
    }
    const size_t part_count = static_.parts.size(), slice = static_.front_slice;
    if (part_count == 1) {  // (the part's slice is the whole filter)
      for (size_t i = 0; i < count; i++) {
        const uint64_t h = StaticIndex::front_hash(nonzero(keys[i])), bits = StaticIndex::front_bits(h);
        any |= (front[StaticIndex::slice_word(h, slice)] & bits) == bits;
      }
      return any;
    }
    for (size_t i = 0; i < count; i++) {
      const uint64_t key = nonzero(keys[i]);
      const uint64_t h = StaticIndex::front_hash(key), bits = StaticIndex::front_bits(h);
      any |= (front[StaticIndex::word_of(key, h, part_count, slice)] & bits) == bits;
    }
    return any;
  }
  // Changes whenever the static part (and its front filter) is replaced.
  uint64_t front_generation() const noexcept { return front_generation_; }

  // Installs a finished background build; otherwise, when the overlay and
  // tombstones grew past a fraction of the static part, starts a rebuild (in
  // the background when large enough). force: wait for any background build and
  // rebuild everything now. Returns whether a new static part was installed.
  bool maintain(bool force = false);
  // Gives back the key store's growth slack (after loading).
  void reserve(size_t slots) { reserve_on_huge_pages(shapes_, slots); }
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
      uint64_t single;
      const uint64_t* keys = keys_of(shape, single);
      for (uint32_t i = 0; i < shape.key_count(); i++) visit(keys[i]);
    }
  }
  static uint64_t stored_key(uint64_t key) noexcept { return nonzero(key); }
  // Calls visit(key) for each key of the live shape in slot (as stored).
  template <typename Visit>
  void for_each_key_of(uint32_t slot, Visit&& visit) const {
    if (!contains_slot(slot)) return;
    const Shape& shape = shapes_[slot];
    uint64_t single;
    const uint64_t* keys = keys_of(shape, single);
    for (uint32_t i = 0; i < shape.key_count(); i++) visit(keys[i]);
  }

 private:
  // 12 bytes a shape, its key included when it has one (most shapes): only
  // shapes with several keys (IN lists) use keys_. (Two 32-bit halves: a
  // 64-bit key would align the record to 16 bytes.)
  struct Shape {
    uint32_t low = 0, high = 0;  // one key: the key; several: their offset in keys_ (low) and count (high)
    // epoch_ when added: in the static part iff <= static_epoch_. 29 bits: a
    // build folds at least min_changes changes, so a session never runs out.
    uint32_t epoch : 29;
    uint32_t several : 1;  // keys in keys_
    uint32_t one : 1;      // one key, in low and high
    uint32_t live : 1;
    Shape() : epoch(0), several(0), one(0), live(0) {}
    uint32_t key_count() const noexcept { return several ? high : one; }
  };
  static_assert(sizeof(Shape) == 12, "a shape's record is 12 bytes");
  static constexpr uint32_t kMaxEpoch = (uint32_t{1} << 29) - 1;
  // The shape's key_count() keys; a single key is copied into `single`.
  static const uint64_t* keys_of(const Shape& shape, const uint64_t* keys, uint64_t& single) noexcept {
    if (shape.several) return keys + shape.low;
    single = shape.low | uint64_t{shape.high} << 32;
    return &single;
  }
  const uint64_t* keys_of(const Shape& shape, uint64_t& single) const noexcept {
    return keys_of(shape, keys_.data(), single);
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
  size_t background_min_keys_ = kShapeIndexParams.rebuild.background_min_entries;
  size_t part_keys_ = kStaticIndexParams.part_keys;
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
  // the slot itself (kListFlag clear), or kListFlag | index into lists when the
  // key has several: most keys have one shape and allocate nothing.
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
  uint64_t front_generation_ = 0;
  uint64_t builds_started_ = 0;
  uint64_t background_builds_ = 0;
  uint64_t longest_pause_ns_ = 0;
};

}  // namespace shape_router
