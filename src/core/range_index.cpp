// Range atoms: order keys, the centered interval tree, and one column's ranges
// with their overlay and tombstones (range_index.hpp).
#include "shape_router/range_index.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace shape_router {

namespace {
constexpr uint64_t kSignBit = uint64_t{1} << 63;

// The first 8 bytes, big-endian, zero-padded: never decreases along memcmp
// order with shorter strings first on a common prefix.
uint64_t prefix_key(const uint8_t* bytes, uint32_t len) noexcept {
  uint64_t key = 0;
  for (uint32_t i = 0; i < 8; i++) key = key << 8 | (i < len ? bytes[i] : 0);
  return key;
}
}  // namespace

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

uint64_t order_key(uint8_t tag, const sr_value& value) noexcept {
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
      return prefix_key(value.v.bytes, value.len);
    default:
      return 0;
  }
}

void RangeTree::build(std::vector<Entry>& entries) {
  nodes_.clear();
  by_lo_.clear();
  by_hi_.clear();
  by_lo_.reserve(entries.size());
  by_hi_.reserve(entries.size());
  struct Pending {
    size_t begin, end;  // a run of entries still to place
    int32_t parent;
    bool left;
  };
  // Midpoints without overflow: lo/2 + hi/2 + (both odd).
  auto mid = [](const Entry& e) { return e.lo / 2 + e.hi / 2 + (e.lo & e.hi & 1); };
  std::vector<Pending> stack{{0, entries.size(), -1, false}};
  std::vector<Entry> left, right;
  while (!stack.empty()) {
    const Pending p = stack.back();
    stack.pop_back();
    if (p.begin == p.end) continue;
    // Center: the median midpoint, so each side gets at most half the run.
    const size_t m = p.begin + (p.end - p.begin) / 2;
    std::nth_element(entries.begin() + static_cast<std::ptrdiff_t>(p.begin),
                     entries.begin() + static_cast<std::ptrdiff_t>(m),
                     entries.begin() + static_cast<std::ptrdiff_t>(p.end),
                     [&](const Entry& a, const Entry& b) { return mid(a) < mid(b); });
    const uint64_t center = mid(entries[m]);
    left.clear();
    right.clear();
    const size_t begin = by_lo_.size();
    for (size_t i = p.begin; i < p.end; i++) {
      const Entry& e = entries[i];
      if (e.hi < center)
        left.push_back(e);
      else if (e.lo > center)
        right.push_back(e);
      else
        by_lo_.push_back(e);
    }
    by_hi_.insert(by_hi_.end(), by_lo_.begin() + static_cast<std::ptrdiff_t>(begin), by_lo_.end());
    std::sort(by_lo_.begin() + static_cast<std::ptrdiff_t>(begin), by_lo_.end(),
              [](const Entry& a, const Entry& b) { return a.lo < b.lo; });
    std::sort(by_hi_.begin() + static_cast<std::ptrdiff_t>(begin), by_hi_.end(),
              [](const Entry& a, const Entry& b) { return a.hi > b.hi; });
    const int32_t node = static_cast<int32_t>(nodes_.size());
    nodes_.push_back(Node{center, static_cast<uint32_t>(begin), static_cast<uint32_t>(by_lo_.size()), -1, -1});
    if (p.parent >= 0) (p.left ? nodes_[static_cast<size_t>(p.parent)].left : nodes_[static_cast<size_t>(p.parent)].right) = node;
    // The run's entries are placed or copied out: reuse its room for the two sides.
    std::copy(left.begin(), left.end(), entries.begin() + static_cast<std::ptrdiff_t>(p.begin));
    std::copy(right.begin(), right.end(), entries.begin() + static_cast<std::ptrdiff_t>(p.begin + left.size()));
    stack.push_back(Pending{p.begin, p.begin + left.size(), node, true});
    stack.push_back(Pending{p.begin + left.size(), p.begin + left.size() + right.size(), node, false});
  }
  by_lo_.shrink_to_fit();
  by_hi_.shrink_to_fit();
  nodes_.shrink_to_fit();
}

void RangeColumn::add(uint32_t slot, uint64_t lo, uint64_t hi) {
  reserve_one_more(overlay_);
  overlay_.push_back(RangeTree::Entry{lo, hi, slot});
}

void RangeColumn::drop(uint32_t slot) {
  overlay_.erase(std::remove_if(overlay_.begin(), overlay_.end(),
                                [&](const RangeTree::Entry& e) { return e.slot == slot; }),
                 overlay_.end());
  auto [first, last] = std::equal_range(static_slots_.begin(), static_slots_.end(), slot);
  if (first == last || tombstones_.find(uint64_t{slot} + 1) != nullptr) return;
  tombstones_.put(uint64_t{slot} + 1, static_cast<uint32_t>(last - first));
  dropped_entries_ += static_cast<size_t>(last - first);
}

bool RangeColumn::maintain(bool force) {
  const size_t changes = overlay_.size() + dropped_entries_;
  if (changes == 0 || (!force && changes * 4 < std::max<size_t>(tree_.size(), 256))) return false;
  std::vector<RangeTree::Entry> live;
  live.reserve(tree_.size() - dropped_entries_ + overlay_.size());
  for (const RangeTree::Entry& e : tree_.entries())
    if (tombstones_.size() == 0 || tombstones_.find(uint64_t{e.slot} + 1) == nullptr) live.push_back(e);
  live.insert(live.end(), overlay_.begin(), overlay_.end());
  std::vector<uint32_t> slots;
  slots.reserve(live.size());
  for (const RangeTree::Entry& e : live) slots.push_back(e.slot);
  std::sort(slots.begin(), slots.end());
  tree_.build(live);
  static_slots_.swap(slots);
  static_slots_.shrink_to_fit();
  tombstones_ = FlatMap();
  dropped_entries_ = 0;
  overlay_.clear();
  overlay_.shrink_to_fit();
  return true;
}

RangeColumn& RangeIndex::column(uint32_t relid, uint16_t attnum) {
  if (RangeColumn* found = find(relid, attnum)) return *found;
  reserve_one_more(columns_);
  by_column_.put(column_key(relid, attnum), static_cast<uint32_t>(columns_.size()));
  columns_.emplace_back();
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

size_t RangeIndex::bytes() const noexcept {
  size_t n = 0;
  for (const RangeColumn& c : columns_) n += c.bytes();
  return n;
}

}  // namespace shape_router
