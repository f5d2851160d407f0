// Range atoms: which shapes' ranges (col > c, col <= c, BETWEEN ...) hold for a
// row's value, in O(log n + matches) per column probed (StaticRanges).
//
// Values are compared through order keys (order_key): 64-bit numbers that never
// decrease along the column type's order. For integers, dates and timestamps
// the map is exact; for floats it is exact up to -0 = 0 and NaN (largest, all
// alike); for text (C collation) and numeric it keeps the first 8 bytes of the
// value's memcmp-ordered form, so distinct values may share a key. Ranges are
// therefore stored with inclusive bounds on keys: a superset of the values the
// range admits, which the gate narrows down.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "shape_router/flat_map.hpp"
#include "shape_router/program.h"
#include "shape_router/rebuild_params.hpp"

namespace shape_router {

// How exactly order keys of tag follow its order (SR_ORDER_*), and the key of a value.
int tag_order(uint8_t tag) noexcept;
uint64_t bytes_order_key(const uint8_t* bytes, uint32_t len) noexcept;  // text's and numeric's
// Inline: a row makes one for each of its range columns on every change.
inline uint64_t order_key(uint8_t tag, const sr_value& value) noexcept {
  constexpr uint64_t kSignBit = uint64_t{1} << 63;
  switch (tag) {
    case SR_TAG_INT:
    case SR_TAG_DATE:
    case SR_TAG_TIMESTAMP:
    case SR_TAG_TIMESTAMPTZ:
      return static_cast<uint64_t>(value.v.i) ^ kSignBit;
    case SR_TAG_FLOAT: {
      if (std::isnan(value.v.f)) return UINT64_MAX;  // PostgreSQL: NaN above everything, all NaNs equal
      const double d = value.v.f == 0 ? 0.0 : value.v.f;  // -0 = 0
      uint64_t bits;
      std::memcpy(&bits, &d, sizeof bits);
      return (bits & kSignBit) ? ~bits : bits | kSignBit;
    }
    case SR_TAG_TEXT:
    case SR_TAG_NUMERIC:
      return bytes_order_key(value.v.bytes, value.len);
    default:
      return 0;
  }
}

// The ranges of a column as of its last build, in sorted arrays a probe
// searches by binary search and then reads contiguously, O(log n + matches):
//   - from_lo: ranges [lo, +inf) (col > c), ascending lo: those holding v are a prefix;
//   - to_hi:   ranges (-inf, hi] (col < c), descending hi: a prefix too;
//   - two-sided ranges by width class c (hi - lo < 2^c), each ascending lo: those
//     holding v have lo in (v - 2^c, v], one window per class present.
class StaticRanges {
 public:
  struct Entry {
    uint64_t lo;
    uint64_t hi;
    uint32_t slot;
  };
  // entries are taken (and reordered).
  void build(std::vector<Entry>& entries);
  // Calls emit(slot) for every range with lo <= value <= hi.
  template <typename Emit>
  void stab(uint64_t value, Emit&& emit) const {
    if (!from_lo_.empty() && from_lo_.front() <= value) {
      const size_t end = static_cast<size_t>(std::upper_bound(from_lo_.begin(), from_lo_.end(), value) - from_lo_.begin());
      for (size_t i = 0; i < end; i++) emit(from_lo_slots_[i]);
    }
    if (!to_hi_.empty() && to_hi_.front() >= value) {
      const size_t end = static_cast<size_t>(
          std::upper_bound(to_hi_.begin(), to_hi_.end(), value, [](uint64_t v, uint64_t hi) { return hi < v; }) -
          to_hi_.begin());
      for (size_t i = 0; i < end; i++) emit(to_hi_slots_[i]);
    }
    if (lo_.empty() || value < cover_lo_ || value > cover_hi_) return;
    if (!cover_.empty()) {
      const uint64_t b = (value - cover_lo_) >> cover_shift_;
      if (((cover_[b / 64] >> (b % 64)) & 1) == 0) return;  // no two-sided range meets its bucket
    }
    for (const WidthClass& c : classes_) {
      const uint64_t window = c.bits >= 64 ? UINT64_MAX : (uint64_t{1} << c.bits) - 1;
      const uint64_t from = value > window ? value - window : 0;
      auto first = std::lower_bound(lo_.begin() + c.begin, lo_.begin() + c.end, from);
      for (size_t i = static_cast<size_t>(first - lo_.begin()); i < c.end && lo_[i] <= value; i++)
        if (hi_[i] >= value) emit(slots_[i]);
    }
  }
  // Whether stab(value) may emit a range: false only when it emits none, from
  // the tests stab starts with (most values stop there).
  bool may_hit(uint64_t value) const noexcept {
    if (!from_lo_.empty() && from_lo_.front() <= value) return true;
    if (!to_hi_.empty() && to_hi_.front() >= value) return true;
    if (lo_.empty() || value < cover_lo_ || value > cover_hi_) return false;
    if (cover_.empty()) return true;
    const uint64_t b = (value - cover_lo_) >> cover_shift_;
    return ((cover_[b / 64] >> (b % 64)) & 1) != 0;
  }
  // Starts loading the line a stab of value is likeliest to miss on: the two-sided
  // ranges' bucket word (one bit in a table of 8 bytes a range, read at random;
  // the one-sided arrays' first bounds are read by every stab, so they stay cached).
  void prefetch(uint64_t value) const noexcept {
    const size_t word = cover_word(value);
    if (word != kNoWord) prefetch_line(&cover_[word]);
  }
  // The bucket cover's word of value, or kNoWord when the cover has none for it.
  static constexpr size_t kNoWord = SIZE_MAX;
  size_t cover_word(uint64_t value) const noexcept {
    if (cover_.empty() || value < cover_lo_ || value > cover_hi_) return kNoWord;
    return static_cast<size_t>(((value - cover_lo_) >> cover_shift_) / 64);
  }
  size_t cover_words() const noexcept { return cover_.size(); }
  size_t size() const noexcept { return from_lo_.size() + to_hi_.size() + lo_.size(); }
  size_t bytes() const noexcept {
    return (from_lo_.capacity() + to_hi_.capacity() + lo_.capacity() + hi_.capacity()) * 8 +
           (from_lo_slots_.capacity() + to_hi_slots_.capacity() + slots_.capacity()) * 4 +
           classes_.capacity() * sizeof(WidthClass) + cover_.capacity() * 8;
  }
  // Whether the two-sided ranges' bucket cover is in use (tests).
  bool has_cover() const noexcept { return !cover_.empty(); }
  // Calls visit(entry) for every range (for rebuilds).
  template <typename Visit>
  void for_each(Visit&& visit) const {
    for (size_t i = 0; i < from_lo_.size(); i++) visit(Entry{from_lo_[i], UINT64_MAX, from_lo_slots_[i]});
    for (size_t i = 0; i < to_hi_.size(); i++) visit(Entry{0, to_hi_[i], to_hi_slots_[i]});
    for (size_t i = 0; i < lo_.size(); i++) visit(Entry{lo_[i], hi_[i], slots_[i]});
  }

 private:
  struct WidthClass {
    uint32_t bits;
    size_t begin, end;  // its ranges in lo_, hi_, slots_
  };
  std::vector<uint64_t> from_lo_;
  std::vector<uint32_t> from_lo_slots_;
  std::vector<uint64_t> to_hi_;
  std::vector<uint32_t> to_hi_slots_;
  std::vector<uint64_t> lo_, hi_;
  std::vector<uint32_t> slots_;
  std::vector<WidthClass> classes_;
  // Which buckets of 2^cover_shift_ order keys from cover_lo_ some two-sided
  // range meets: a value in another one (most values, when the ranges are
  // narrow) skips the width classes' binary searches, a cache miss each when large.
  void build_cover();
  std::vector<uint64_t> cover_;
  uint64_t cover_lo_ = 0, cover_hi_ = 0;
  uint32_t cover_shift_ = 0;
};

// When a RangeColumn rebuilds: changes are entries added and dropped since the
// last build, against the static ranges' entries. The overlay is scanned, so a
// small column rebuilds after fewer changes than the hashed equality index.
inline constexpr RebuildParams kRangeRebuildParams = {
    /*change_divisor=*/4, /*min_changes=*/64, /*background_min_entries=*/size_t{1} << 16};

// The ranges of one column of one relation: the static ranges, plus the entries
// added since they were built (scanned) and the slots dropped from them since
// (tombstones), folded into a new build when they grow past a quarter of it.
// A build of background_min_entries or more runs on a background thread (as the
// equality index's do) from a copy of the live entries; meanwhile adds go to a
// second overlay and drops are noted, and a later maintain() installs it.
class RangeColumn {
 public:
  RangeColumn();
  RangeColumn(RangeColumn&&) noexcept;  // (a column's vector grows) the job moves along
  RangeColumn& operator=(RangeColumn&&) = delete;
  ~RangeColumn();

  void add(uint32_t slot, uint64_t lo, uint64_t hi);
  void drop(uint32_t slot);
  template <typename Emit>
  void stab(uint64_t value, Emit&& emit) const {
    if (tombstones_.size() == 0) {
      static_.stab(value, emit);
    } else {
      static_.stab(value, [&](uint32_t slot) {
        if (tombstones_.find(uint64_t{slot} + 1) == nullptr) emit(slot);
      });
    }
    for (const StaticRanges::Entry& e : overlay_)
      if (e.lo <= value && value <= e.hi) emit(e.slot);
    for (const StaticRanges::Entry& e : added_during_build_)
      if (e.lo <= value && value <= e.hi) emit(e.slot);
  }
  void prefetch(uint64_t value) const noexcept { static_.prefetch(value); }
  // Whether stab(value) may emit a slot: false only when it emits none.
  bool may_hit(uint64_t value) const noexcept {
    return !overlay_.empty() || !added_during_build_.empty() || static_.may_hit(value);
  }
  // Installs a finished background build; otherwise folds the overlay and
  // tombstones into new static ranges when they have grown (or always, with
  // force, which first waits for a background build). Returns whether new
  // static ranges were installed.
  bool maintain(bool force);
  size_t entries() const noexcept {
    return static_.size() - dropped_entries_ + overlay_.size() + added_during_build_.size();
  }
  // Added and dropped entries not yet folded into the static ranges (a build
  // under way counts as one).
  size_t pending_changes() const noexcept {
    return overlay_.size() + added_during_build_.size() + dropped_entries_ + (job_ ? 1 : 0);
  }
  size_t bytes() const noexcept {
    return static_.bytes() + (overlay_.capacity() + added_during_build_.capacity()) * sizeof(StaticRanges::Entry) +
           static_slots_.capacity() * 4;
  }
  void set_background_min_entries(size_t entries) noexcept { background_min_entries_ = entries; }
  bool building() const noexcept { return job_ != nullptr; }
  void wait_for_build() noexcept;  // without installing it (tests)
  uint64_t background_builds() const noexcept { return background_builds_; }

 private:
  struct BuildJob;
  std::vector<StaticRanges::Entry> live_entries() const;
  void install(BuildJob& job);

  StaticRanges static_;
  std::vector<uint32_t> static_slots_;  // slots in static_, sorted (a slot may have several entries)
  FlatMap tombstones_;                  // slot + 1 → entries of it in static_, dropped since the build
  size_t dropped_entries_ = 0;
  std::vector<StaticRanges::Entry> overlay_;
  // While a background build runs: entries added since its snapshot, and the
  // slots dropped since (their entries in the snapshot become tombstones).
  std::unique_ptr<BuildJob> job_;  // also holds the slots dropped since its snapshot
  std::vector<StaticRanges::Entry> added_during_build_;
  size_t background_min_entries_ = kRangeRebuildParams.background_min_entries;
  uint64_t background_builds_ = 0;
};

// Every range column of every relation: (relation, column) → RangeColumn.
class RangeIndex {
 public:
  RangeColumn& column(uint32_t relid, uint16_t attnum);
  const RangeColumn* find(uint32_t relid, uint16_t attnum) const noexcept {
    const uint32_t* i = by_column_.find(column_key(relid, attnum));
    return i == nullptr ? nullptr : &columns_[*i];
  }
  RangeColumn* find(uint32_t relid, uint16_t attnum) noexcept {
    const uint32_t* i = by_column_.find(column_key(relid, attnum));
    return i == nullptr ? nullptr : &columns_[*i];
  }
  // A column's place, kept by callers that look it up often (columns are never
  // removed, so it stays valid); kNoColumn: none.
  static constexpr uint32_t kNoColumn = UINT32_MAX;
  uint32_t index_of(uint32_t relid, uint16_t attnum) const noexcept {
    const uint32_t* i = by_column_.find(column_key(relid, attnum));
    return i == nullptr ? kNoColumn : *i;
  }
  const RangeColumn& at(uint32_t index) const noexcept { return columns_[index]; }
  bool maintain(bool force);
  size_t entries() const noexcept;
  size_t bytes() const noexcept;
  uint64_t background_builds() const noexcept;

 private:
  static uint64_t column_key(uint32_t relid, uint16_t attnum) noexcept {
    return (uint64_t{relid} << 16 | attnum) + 1;  // never 0
  }
  FlatMap by_column_;
  std::vector<RangeColumn> columns_;
};

}  // namespace shape_router
