// The shape index (shape_index.hpp): the overlay and tombstones, and the
// rebuilds that fold them into a new static index, in the caller or on a
// background thread.
#include "shape_router/shape_index.hpp"
#include "shape_router/thread.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <new>
#include <stdexcept>
#include <thread>

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace shape_router {

namespace {

// Runs work(i) for i in [0, count) on the caller and, when worth it, one more
// thread. work must not throw.
template <typename Work>
void run_parts(size_t count, bool parallel, Work&& work) {
  std::atomic<size_t> next{0};
  auto worker = [&]() noexcept {
    for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) work(i);
  };
  std::thread helper;
  const bool helped = parallel && count > 1 && start_thread(helper, worker);
  worker();
  if (helped) helper.join();
}

}  // namespace

// A rebuild's input and output. The builder thread touches only this object
// (and the mixer, a plain function); `done` publishes its result.
struct ShapeIndex::BuildJob {
  // The shapes to build from: the index's own (a build in the caller, which
  // changes nothing meanwhile) or the job's copy (a background build).
  std::vector<Shape> shape_copy;
  std::vector<uint64_t> key_copy;
  const Shape* source_shapes = nullptr;
  size_t source_count = 0;
  const uint64_t* source_keys = nullptr;
  size_t changes = 0;  // changes_since_build_ at the snapshot, restored if the build cannot be used
  Mixer mixer = default_mixer;
  size_t part_keys = kStaticIndexParams.part_keys;
  StaticIndex result;
  bool built = false;   // false: the keys defeat the hash functions
  bool failed = false;  // the build ran out of memory: nothing to install
  std::atomic<bool> done{false};
  std::thread thread;

  void run() noexcept {
    try {
      built = build_static_index(source_shapes, source_count, source_keys, mixer, part_keys, result);
    } catch (...) {
      failed = true;
    }
    std::vector<Shape>().swap(shape_copy);
    std::vector<uint64_t>().swap(key_copy);
    source_shapes = nullptr;
    source_keys = nullptr;
    done.store(true, std::memory_order_release);
  }
};

bool ShapeIndex::build_static_index(const Shape* shapes, size_t shape_count, const uint64_t* keys, Mixer mixer,
                                    size_t part_keys, StaticIndex& out) {
  auto keys_of_shape = [keys](const Shape& shape, uint64_t& single) { return keys_of(shape, keys, single); };
  size_t total = 0;
  for (size_t slot = 0; slot < shape_count; slot++)
    if (shapes[slot].live) total += shapes[slot].key_count();
  StaticIndex index;
  if (total == 0) {
    out = std::move(index);
    return true;
  }
  const size_t part_count = StaticIndex::part_count_for(total, part_keys);
  // A front filter, and then no fuse filters (StaticIndexParams.front_min_keys).
  const bool fronted = total >= kStaticIndexParams.front_min_keys;
  index.parts.resize(part_count);

  // The shapes of each part (counting sort, ascending slots; a shape with several
  // keys in a part is listed once per key, adjacent): 4 bytes a key.
  std::vector<uint32_t> start(part_count + 1, 0);
  std::vector<uint32_t> members;
  if (part_count > 1) {
    for (size_t slot = 0; slot < shape_count; slot++) {
      const Shape& shape = shapes[slot];
      if (!shape.live) continue;
      uint64_t single;
      const uint64_t* k = keys_of_shape(shape, single);
      for (uint32_t i = 0; i < shape.key_count(); i++) start[StaticIndex::part_index(k[i], part_count) + 1]++;
    }
    for (size_t p = 0; p < part_count; p++) start[p + 1] += start[p];
    members.resize(total);
    std::vector<uint32_t> fill(start.begin(), start.end() - 1);
    for (size_t slot = 0; slot < shape_count; slot++) {
      const Shape& shape = shapes[slot];
      if (!shape.live) continue;
      uint64_t single;
      const uint64_t* k = keys_of_shape(shape, single);
      for (uint32_t i = 0; i < shape.key_count(); i++)
        members[fill[StaticIndex::part_index(k[i], part_count)]++] = static_cast<uint32_t>(slot);
    }
  }

  if (fronted) {
    index.front_slice = std::max<size_t>(1, (total * kStaticIndexParams.front_bits_per_key / part_count + 63) / 64);
    index.front.assign(index.front_slice * part_count, 0);
  }
  std::atomic<bool> defeated{false}, out_of_memory{false};
  run_parts(part_count, total >= kShapeIndexParams.parallel_min_keys, [&](size_t p) noexcept {
    if (defeated.load(std::memory_order_relaxed) || out_of_memory.load(std::memory_order_relaxed)) return;
    try {
      std::vector<std::pair<uint64_t, uint32_t>> pairs;
      auto take = [&](uint32_t slot) {
        const Shape& shape = shapes[slot];
        uint64_t single;
      const uint64_t* k = keys_of_shape(shape, single);
        for (uint32_t i = 0; i < shape.key_count(); i++)
          if (part_count == 1 || StaticIndex::part_index(k[i], part_count) == p) pairs.push_back({k[i], slot});
      };
      if (part_count == 1) {
        pairs.reserve(total);
        for (size_t slot = 0; slot < shape_count; slot++)
          if (shapes[slot].live) take(static_cast<uint32_t>(slot));
      } else {
        pairs.reserve(start[p + 1] - start[p]);
        // A part's shapes lie all over the shapes: each a cache miss unless asked for ahead.
        constexpr uint32_t kAhead = 16;
        for (uint32_t m = start[p]; m < start[p + 1]; m++) {
          if (m + kAhead < start[p + 1]) prefetch_line(&shapes[members[m + kAhead]]);
          if (m == start[p] || members[m] != members[m - 1]) take(members[m]);
        }
      }
      if (fronted) {
        uint64_t* slice = index.front.data() + p * index.front_slice;
        for (const auto& pair : pairs) {
          const uint64_t h = StaticIndex::front_hash(pair.first);
          slice[StaticIndex::slice_word(h, index.front_slice)] |= StaticIndex::front_bits(h);
        }
      }
      if (!build_static_part(pairs, mixer, index.parts[p], !fronted)) defeated.store(true, std::memory_order_relaxed);
    } catch (...) {
      out_of_memory.store(true, std::memory_order_relaxed);
    }
  });
  if (out_of_memory.load()) throw std::bad_alloc();
  if (defeated.load()) return false;
  if (!fronted) index.heads.reserve(index.parts.size());
  for (const StaticPart& part : index.parts) {
    index.keys += part.keys;
    if (!fronted) index.heads.push_back(part.filter.head());  // the fingerprints stay where they are when index moves
  }
  out = std::move(index);
  return true;
}

ShapeIndex::ShapeIndex(Mixer mixer) : mixer_(mixer) {}

ShapeIndex::~ShapeIndex() { wait_for_build(); }

void ShapeIndex::wait_for_build() noexcept {
  if (job_ && job_->thread.joinable()) job_->thread.join();
}

void ShapeIndex::Overlay::insert(uint64_t key, uint32_t slot) {
  const uint32_t* value = index.find(key);
  if (value == nullptr) {
    index.put(key, slot);
  } else if ((*value & kListFlag) == 0) {
    const uint32_t first = *value;
    lists.push_back({first, slot});
    index.put(key, kListFlag | static_cast<uint32_t>(lists.size() - 1));
  } else {
    lists[*value & kListIndexMask].push_back(slot);
  }
  keys++;
}

void ShapeIndex::add(uint32_t slot, const uint64_t* keys, size_t count, bool bulk) {
  if (slot >= shapes_.size()) shapes_.resize(static_cast<size_t>(slot) + 1);
  if (shapes_[slot].live) throw std::invalid_argument("shape slot already indexed");
  if (slot_tombstoned(slot)) throw std::invalid_argument("shape slot reused before the index was rebuilt");
  if (keys_.size() + count > UINT32_MAX) throw std::invalid_argument("too many keys");
  if (job_) added_during_build_.push_back(slot);  // may name a slot that is then not added: install checks
  size_t key_count = 0;
  uint64_t key_or_offset = 0;
  if (count == 1) {
    key_count = 1;
    key_or_offset = nonzero(keys[0]);
  } else if (count > 1) {
    // Deduplicated in place at the end of the key store (no temporary vector).
    const size_t offset = keys_.size();
    reserve_more_on_huge_pages(keys_, count);
    for (size_t i = 0; i < count; i++) keys_.push_back(nonzero(keys[i]));
    std::sort(keys_.begin() + static_cast<std::ptrdiff_t>(offset), keys_.end());
    keys_.erase(std::unique(keys_.begin() + static_cast<std::ptrdiff_t>(offset), keys_.end()), keys_.end());
    key_count = keys_.size() - offset;
    key_or_offset = offset;
    if (key_count == 1) {  // duplicates of one key
      key_or_offset = keys_[offset];
      keys_.resize(offset);
    }
  }

  Shape& shape = shapes_[slot];
  shape.several = key_count > 1;
  shape.one = key_count == 1;
  shape.low = static_cast<uint32_t>(key_count > 1 ? key_or_offset : key_or_offset & UINT32_MAX);
  shape.high = static_cast<uint32_t>(key_count > 1 ? key_count : key_or_offset >> 32);
  shape.epoch = epoch_;
  shape.live = 1;
  if (!bulk) {
    uint64_t single;
    const uint64_t* shape_keys = keys_of(shape, single);
    for (size_t i = 0; i < key_count; i++) overlay_.insert(shape_keys[i], slot);
  }
  live_++;
  live_keys_ += key_count;
  // Keys, not shapes: a few shapes with long IN lists must still bring their
  // keys out of the overlay into the static part.
  changes_since_build_ += std::max<size_t>(1, shape.key_count());
}

void ShapeIndex::drop(uint32_t slot) {
  if (!contains_slot(slot)) return;
  Shape& shape = shapes_[slot];
  if (in_static(shape)) {
    if (tombstones_.size() * 64 <= slot) tombstones_.resize(slot / 64 + 1, 0);
    tombstones_[slot / 64] |= uint64_t{1} << (slot % 64);
    tombstone_count_++;
  } else {
    uint64_t single;
    const uint64_t* shape_keys = keys_of(shape, single);
    for (uint32_t i = 0; i < shape.key_count(); i++) {
      const uint64_t key = shape_keys[i];
      const uint32_t* value = overlay_.index.find(key);
      if (value == nullptr) continue;
      if ((*value & kListFlag) == 0) {
        if (*value == slot) {
          overlay_.index.erase(key);
          overlay_.keys--;
        }
        continue;
      }
      std::vector<uint32_t>& slots = overlay_.lists[*value & kListIndexMask];
      const size_t before = slots.size();
      slots.erase(std::remove(slots.begin(), slots.end(), slot), slots.end());
      overlay_.keys -= before - slots.size();
    }
  }
  // A shape of the snapshot being built: the new static part will name it.
  // (The bitmap covers every slot of the snapshot: no allocation here.)
  if (job_ && shape.epoch <= build_epoch_) {
    pending_tombstones_[slot / 64] |= uint64_t{1} << (slot % 64);
    pending_tombstone_count_++;
  }
  if (shape.several) dead_keys_ += shape.key_count();
  live_keys_ -= shape.key_count();
  shape.live = 0;
  live_--;
  changes_since_build_ += std::max<size_t>(1, shape.key_count());
}

ShapeIndex::Probe ShapeIndex::lookup(uint64_t key, std::vector<uint32_t>& out) const {
  Probe probe;
  key = nonzero(key);
  const size_t p = static_.keys > 0 ? static_.part_of(key) : 0;
  if (static_.may_contain(key) && (!static_.front.empty() || BinaryFuse8::contains(static_.heads[p], key))) {
    const StaticPart* part = &static_.parts[p];
    probe.filter_pass = true;
    const size_t s = part->perfect_hash.slot(key);
    if (part->slot_fingerprints[s] == slot_fingerprint(key)) {
      probe.slot_hit = true;
      const uint32_t value = part->slot_values[s];
      auto emit = [&](uint32_t shape_slot) {
        if (!bit(tombstones_, shape_slot)) out.push_back(shape_slot);
      };
      if ((value & kListFlag) == 0) {
        emit(value);
      } else {
        const uint32_t offset = value & kListIndexMask;
        for (uint32_t i = 0; i < part->pool[offset]; i++) emit(part->pool[offset + 1 + i]);
      }
    }
  }
  if (overlay_.keys > 0) {
    if (const uint32_t* value = overlay_.index.find(key)) {
      if ((*value & kListFlag) == 0) {
        out.push_back(*value);
      } else {
        const std::vector<uint32_t>& slots = overlay_.lists[*value & kListIndexMask];
        out.insert(out.end(), slots.begin(), slots.end());
      }
    }
  }
  return probe;
}

bool ShapeIndex::rebuild_due() const noexcept {
  // Enough registrations and drops since the last build (which also bounds the
  // overlay and the tombstones), or a key store mostly made of dropped shapes' keys.
  const RebuildParams& rebuild = kShapeIndexParams.rebuild;
  const size_t indexed = static_.keys + overlay_.keys;
  const bool changed = changes_since_build_ >= std::max<size_t>(rebuild.min_changes, indexed / rebuild.change_divisor);
  const bool dead = dead_keys_ >= std::max<size_t>(kShapeIndexParams.min_dead_keys,
                                                   keys_.size() / kShapeIndexParams.dead_key_divisor);
  return changed || dead;
}

bool ShapeIndex::maintain(bool force) {
  const auto started = std::chrono::steady_clock::now();
  bool installed = false;
  if (job_ && (force || job_->done.load(std::memory_order_acquire))) {
    wait_for_build();
    std::unique_ptr<BuildJob> job = std::move(job_);
    installed = install(*job);
  }
  if (force || (!job_ && !installed && rebuild_due())) {
    const bool background = !force && live_keys_ >= background_min_keys_;
    std::unique_ptr<BuildJob> job = snapshot(background);
    if (background) {
      start_background(std::move(job));
    } else {
      job->run();
      const bool failed = job->failed;
      installed = install(*job) || installed;
      if (failed) throw std::bad_alloc();  // the caller must know: bulk-loaded keys are only in the build
    }
  }
  const uint64_t paused = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count());
  if (!force) longest_pause_ns_ = std::max(longest_pause_ns_, paused);  // forced: loading, not a pause
  return installed;
}

// Takes the live shapes for a build (copied when copy) and compacts the key
// store. From here on, drops of the snapshot's shapes are also noted for the new part.
std::unique_ptr<ShapeIndex::BuildJob> ShapeIndex::snapshot(bool copy) {
  if (epoch_ >= kMaxEpoch) throw std::length_error("shape index epochs exhausted");
  auto job = std::make_unique<BuildJob>();
  job->mixer = mixer_;
  job->part_keys = part_keys_;
  std::vector<uint64_t> compact_keys;
  compact_keys.reserve(keys_.size() - dead_keys_);
  std::vector<uint64_t> pending(shapes_.size() / 64 + 1, 0);
  added_during_build_.reserve(64);
  // Shapes' new key offsets are applied only once every allocation has
  // succeeded: a bad_alloc anywhere above leaves the index as it was. Only
  // shapes with several keys have one.
  std::vector<std::pair<uint32_t, uint32_t>> new_offsets;  // (slot, offset)
  for (uint32_t slot = 0; slot < shapes_.size(); slot++) {
    const Shape& shape = shapes_[slot];
    if (!shape.live || !shape.several) continue;
    uint64_t single;
    const uint64_t* shape_keys = keys_of(shape, single);
    new_offsets.push_back({slot, static_cast<uint32_t>(compact_keys.size())});
    compact_keys.insert(compact_keys.end(), shape_keys, shape_keys + shape.key_count());
  }
  if (copy) {
    job->shape_copy = shapes_;
    job->key_copy = compact_keys;
  }
  for (const auto& [slot, offset] : new_offsets) {
    shapes_[slot].low = offset;
    if (copy) job->shape_copy[slot].low = offset;
  }
  keys_.swap(compact_keys);
  if (copy) {
    job->source_shapes = job->shape_copy.data();
    job->source_count = job->shape_copy.size();
    job->source_keys = job->key_copy.data();
  } else {
    job->source_shapes = shapes_.data();
    job->source_count = shapes_.size();
    job->source_keys = keys_.data();
  }
  dead_keys_ = 0;
  pending_tombstones_.swap(pending);
  pending_tombstone_count_ = 0;
  added_during_build_.clear();
  build_epoch_ = epoch_++;
  job->changes = changes_since_build_;
  changes_since_build_ = 0;
  builds_started_++;
  return job;
}

void ShapeIndex::start_background(std::unique_ptr<BuildJob> job) {
  BuildJob* raw = job.get();
  job_ = std::move(job);
  if (!start_thread(raw->thread, [raw] { raw->run(); }))
    raw->run();  // no thread to be had: build here; the next maintain() installs it
  background_builds_++;
}

// Makes job's result the static part. Shapes added since the snapshot form the
// new overlay; the snapshot's shapes dropped since are the new tombstones.
bool ShapeIndex::install(BuildJob& job) {
  if (job.failed) {
    // Out of memory while building: the current structures are exact; try again later.
    pending_tombstones_.clear();
    pending_tombstone_count_ = 0;
    added_during_build_.clear();
    changes_since_build_ += job.changes;
    return false;
  }
  if (!job.built) {
    fall_back_on_overlay();
    return true;
  }
  Overlay overlay;
  std::sort(added_during_build_.begin(), added_during_build_.end());
  added_during_build_.erase(std::unique(added_during_build_.begin(), added_during_build_.end()),
                            added_during_build_.end());
  for (uint32_t slot : added_during_build_) {
    const Shape& shape = shapes_[slot];
    if (!shape.live || shape.epoch <= build_epoch_) continue;
    uint64_t single;
    const uint64_t* shape_keys = keys_of(shape, single);
    for (uint32_t i = 0; i < shape.key_count(); i++) overlay.insert(shape_keys[i], slot);
  }
  // Nothing below allocates.
  static_ = std::move(job.result);
  front_generation_++;
  static_epoch_ = build_epoch_;
  overlay_ = std::move(overlay);
  tombstones_.swap(pending_tombstones_);
  tombstone_count_ = pending_tombstone_count_;
  pending_tombstones_.clear();
  pending_tombstone_count_ = 0;
  added_during_build_.clear();
  rebuilds_++;
  return true;
}

// The keys defeat the hash functions: keep them all in the overlay, which is
// exact. Lookups stay correct, just slower.
void ShapeIndex::fall_back_on_overlay() {
  Overlay overlay;
  for (uint32_t slot = 0; slot < shapes_.size(); slot++) {
    const Shape& shape = shapes_[slot];
    if (!shape.live) continue;
    uint64_t single;
    const uint64_t* shape_keys = keys_of(shape, single);
    for (uint32_t i = 0; i < shape.key_count(); i++) overlay.insert(shape_keys[i], slot);
  }
  static_ = StaticIndex();
  front_generation_++;
  static_epoch_ = 0;  // epochs start at 1: no shape is in the static part
  overlay_ = std::move(overlay);
  tombstones_.clear();
  tombstone_count_ = 0;
  pending_tombstones_.clear();
  pending_tombstone_count_ = 0;
  added_during_build_.clear();
  rebuilds_++;
}

IndexStats ShapeIndex::stats() const {
  IndexStats s;
  s.keys = static_.keys;
  for (const StaticPart& part : static_.parts) {
    s.filter_bytes += part.filter.bytes();
    s.perfect_hash_bytes += part.perfect_hash.bytes();
    s.slot_bytes += part.slot_fingerprints.size() * sizeof(uint8_t) + part.slot_values.size() * sizeof(uint32_t);
    s.pool_bytes += part.pool.size() * sizeof(uint32_t);
  }
  s.filter_bytes += static_.front.size() * sizeof(uint64_t);
  s.static_bytes = s.filter_bytes + s.perfect_hash_bytes + s.slot_bytes + s.pool_bytes;
  s.key_store_bytes = keys_.size() * sizeof(uint64_t) + shapes_.size() * sizeof(Shape);
  s.overlay_keys = overlay_.keys;
  s.tombstones = tombstone_count_;
  s.rebuilds = rebuilds_;
  s.builds_started = builds_started_;
  s.background_builds = background_builds_;
  s.build_running = job_ != nullptr;
  s.longest_pause_ns = longest_pause_ns_;
  return s;
}

}  // namespace shape_router
