// Range atoms: order keys, a column's static ranges, and one column's ranges
// with their overlay and tombstones (range_index.hpp).
#include "shape_router/range_index.hpp"
#include "shape_router/thread.hpp"

#include <algorithm>
#include <atomic>
#include <new>
#include <cmath>
#include <cstring>

namespace shape_router {

// The first 8 bytes, big-endian, zero-padded: never decreases along memcmp
// order with shorter strings first on a common prefix.
uint64_t bytes_order_key(const uint8_t* bytes, uint32_t len) noexcept {
  uint64_t key = 0;
  for (uint32_t i = 0; i < 8; i++) key = key << 8 | (i < len ? bytes[i] : 0);
  return key;
}

int tag_order(uint8_t tag) noexcept {
  switch (tag) {
    case SR_TAG_INT:
    case SR_TAG_DATE:
    case SR_TAG_TIMESTAMP:
    case SR_TAG_TIMESTAMPTZ:
    case SR_TAG_FLOAT:
      return SR_ORDER_EXACT;
    case SR_TAG_TEXT:
    case SR_TAG_NUMERIC:
      return SR_ORDER_PREFIX;
    default:
      return SR_ORDER_NONE;
  }
}

void StaticRanges::build(std::vector<Entry>& entries) {
  auto width_bits = [](const Entry& e) {
    const uint64_t width = e.hi - e.lo;
    return width == 0 ? 0u : 64u - static_cast<uint32_t>(__builtin_clzll(width));
  };
  // Lower-open first (lo = 0, also the whole domain), then upper-open, then the rest.
  auto kind = [](const Entry& e) { return e.hi == UINT64_MAX ? 0 : e.lo == 0 ? 1 : 2; };
  std::sort(entries.begin(), entries.end(), [&](const Entry& a, const Entry& b) {
    const int ka = kind(a), kb = kind(b);
    if (ka != kb) return ka < kb;
    if (ka == 0) return a.lo < b.lo;
    if (ka == 1) return a.hi > b.hi;
    const uint32_t wa = width_bits(a), wb = width_bits(b);
    return wa != wb ? wa < wb : a.lo < b.lo;
  });
  *this = StaticRanges();
  for (const Entry& e : entries) {
    switch (kind(e)) {
      case 0:
        from_lo_.push_back(e.lo);
        from_lo_slots_.push_back(e.slot);
        break;
      case 1:
        to_hi_.push_back(e.hi);
        to_hi_slots_.push_back(e.slot);
        break;
      default: {
        const uint32_t bits = width_bits(e);
        if (classes_.empty() || classes_.back().bits != bits) classes_.push_back(WidthClass{bits, lo_.size(), lo_.size()});
        lo_.push_back(e.lo);
        hi_.push_back(e.hi);
        slots_.push_back(e.slot);
        classes_.back().end = lo_.size();
      }
    }
  }
  build_cover();
}

// About 64 buckets a two-sided range (8 bytes a range); given up (no cover: every
// value in [cover_lo_, cover_hi_] is searched) when the ranges are so wide that
// marking them would set more than 4 bits a bucket on average.
void StaticRanges::build_cover() {
  cover_.clear();
  if (lo_.empty()) return;
  cover_lo_ = *std::min_element(lo_.begin(), lo_.end());
  cover_hi_ = *std::max_element(hi_.begin(), hi_.end());
  const uint64_t target = 64 * static_cast<uint64_t>(lo_.size());
  const uint64_t span = cover_hi_ - cover_lo_;
  cover_shift_ = 0;
  while (cover_shift_ < 63 && (span >> cover_shift_) >= target) cover_shift_++;
  const uint64_t buckets = (span >> cover_shift_) + 1;
  uint64_t marks = 0;
  for (size_t i = 0; i < lo_.size(); i++) {
    marks += ((hi_[i] - cover_lo_) >> cover_shift_) - ((lo_[i] - cover_lo_) >> cover_shift_) + 1;
    if (marks > 4 * buckets) return;
  }
  cover_.assign(static_cast<size_t>((buckets + 63) / 64), 0);
  for (size_t i = 0; i < lo_.size(); i++)
    for (uint64_t b = (lo_[i] - cover_lo_) >> cover_shift_; b <= (hi_[i] - cover_lo_) >> cover_shift_; b++)
      cover_[b / 64] |= uint64_t{1} << (b % 64);
}

struct RangeColumn::BuildJob {
  std::vector<StaticRanges::Entry> entries;  // the snapshot, taken by the build
  StaticRanges result;
  std::vector<uint32_t> slots;
  FlatMap dropped;  // slot + 1 → 1: dropped since the snapshot (the caller's, not the thread's)
  bool failed = false;
  std::atomic<bool> done{false};
  std::thread thread;

  void run() noexcept {
    try {
      slots.reserve(entries.size());
      for (const StaticRanges::Entry& e : entries) slots.push_back(e.slot);
      std::sort(slots.begin(), slots.end());
      result.build(entries);
    } catch (...) {
      failed = true;
    }
    std::vector<StaticRanges::Entry>().swap(entries);
    done.store(true, std::memory_order_release);
  }
};

RangeColumn::RangeColumn() = default;
RangeColumn::RangeColumn(RangeColumn&&) noexcept = default;
RangeColumn::~RangeColumn() { wait_for_build(); }

void RangeColumn::wait_for_build() noexcept {
  if (job_ && job_->thread.joinable()) job_->thread.join();
}

void RangeColumn::add(uint32_t slot, uint64_t lo, uint64_t hi) {
  std::vector<StaticRanges::Entry>& to = job_ ? added_during_build_ : overlay_;
  reserve_one_more(to);
  to.push_back(StaticRanges::Entry{lo, hi, slot});
}

void RangeColumn::drop(uint32_t slot) {
  auto of_slot = [&](const StaticRanges::Entry& e) { return e.slot == slot; };
  if (job_) {  // the snapshot may hold the slot's entries: the new static ranges will
    job_->dropped.reserve(job_->dropped.size() + 1);
    job_->dropped.put(uint64_t{slot} + 1, 1);
    added_during_build_.erase(std::remove_if(added_during_build_.begin(), added_during_build_.end(), of_slot),
                              added_during_build_.end());
  }
  overlay_.erase(std::remove_if(overlay_.begin(), overlay_.end(), of_slot), overlay_.end());
  auto [first, last] = std::equal_range(static_slots_.begin(), static_slots_.end(), slot);
  if (first == last || tombstones_.find(uint64_t{slot} + 1) != nullptr) return;
  tombstones_.put(uint64_t{slot} + 1, static_cast<uint32_t>(last - first));
  dropped_entries_ += static_cast<size_t>(last - first);
}

std::vector<StaticRanges::Entry> RangeColumn::live_entries() const {
  std::vector<StaticRanges::Entry> live;
  live.reserve(static_.size() - dropped_entries_ + overlay_.size());
  static_.for_each([&](const StaticRanges::Entry& e) {
    if (tombstones_.size() == 0 || tombstones_.find(uint64_t{e.slot} + 1) == nullptr) live.push_back(e);
  });
  live.insert(live.end(), overlay_.begin(), overlay_.end());
  return live;
}

// The build's ranges become the static ones; what was added since its snapshot
// is the new overlay, and the slots dropped since are tombstoned in it.
void RangeColumn::install(BuildJob& job) {
  FlatMap tombstones;
  size_t dropped = 0;
  job.dropped.for_each([&](uint64_t key, uint32_t) {
    const uint32_t slot = static_cast<uint32_t>(key - 1);
    auto [first, last] = std::equal_range(job.slots.begin(), job.slots.end(), slot);
    if (first == last) return;
    tombstones.put(key, static_cast<uint32_t>(last - first));
    dropped += static_cast<size_t>(last - first);
  });
  static_ = std::move(job.result);
  static_slots_ = std::move(job.slots);
  static_slots_.shrink_to_fit();
  tombstones_ = std::move(tombstones);
  dropped_entries_ = dropped;
  overlay_ = std::move(added_during_build_);
  added_during_build_ = std::vector<StaticRanges::Entry>();
}

bool RangeColumn::maintain(bool force) {
  bool installed = false;
  if (job_ && (force || job_->done.load(std::memory_order_acquire))) {
    wait_for_build();
    std::unique_ptr<BuildJob> job = std::move(job_);
    if (job->failed) {  // out of memory: the current structures are exact; fold them in later
      overlay_.insert(overlay_.end(), added_during_build_.begin(), added_during_build_.end());
      added_during_build_ = std::vector<StaticRanges::Entry>();
    } else {
      install(*job);
      installed = true;
    }
  }
  const size_t changes = overlay_.size() + dropped_entries_;
  const size_t divisor = kRangeRebuildParams.change_divisor;
  if (job_ || changes == 0 ||
      (!force && changes * divisor < std::max<size_t>(static_.size(), kRangeRebuildParams.min_changes * divisor)))
    return installed;
  auto job = std::make_unique<BuildJob>();
  job->entries = live_entries();
  if (!force && job->entries.size() >= background_min_entries_) {
    BuildJob* raw = job.get();
    job_ = std::move(job);
    if (!start_thread(raw->thread, [raw] { raw->run(); })) raw->run();  // no thread: here; installed next time
    background_builds_++;
    return installed;
  }
  job->run();
  if (job->failed) throw std::bad_alloc();
  install(*job);
  return true;
}

RangeColumn& RangeIndex::column(uint32_t relid, uint16_t attnum) {
  if (RangeColumn* found = find(relid, attnum)) return *found;
  reserve_one_more(columns_);
  columns_.emplace_back();  // first: a bad_alloc here leaves the map naming no missing column
  try {
    by_column_.put(column_key(relid, attnum), static_cast<uint32_t>(columns_.size() - 1));
  } catch (...) {
    columns_.pop_back();
    throw;
  }
  return columns_.back();
}

bool RangeIndex::maintain(bool force) {
  bool rebuilt = false;
  for (RangeColumn& c : columns_) rebuilt |= c.maintain(force);
  return rebuilt;
}

size_t RangeIndex::entries() const noexcept {
  size_t n = 0;
  for (const RangeColumn& c : columns_) n += c.entries();
  return n;
}

uint64_t RangeIndex::background_builds() const noexcept {
  uint64_t n = 0;
  for (const RangeColumn& c : columns_) n += c.background_builds();
  return n;
}

size_t RangeIndex::bytes() const noexcept {
  size_t n = 0;
  for (const RangeColumn& c : columns_) n += c.bytes();
  return n;
}

}  // namespace shape_router
