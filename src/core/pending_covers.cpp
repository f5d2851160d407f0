#include "shape_router/pending_covers.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <stdexcept>

namespace shape_router {

namespace {

// An entry: slot, relid (4 bytes each), home column (2), exact bits (4),
// alternative count (1), each alternative's atom count (2), then the atoms.
// An atom: kind, tag, which optional fields follow (1 byte each), column (2),
// key (8), then upper and lower (8 each) and the composite's range column and
// tag (2 + 1), each only if not zero. (PendingCovers::skim reads this layout too.)
enum : uint8_t { kHasUpper = 1, kHasLower = 2, kHasRange = 4 };

// Writes through a pointer into room made once per entry: a vector insert per
// field cost about 90 instructions each.
template <typename T>
void put(uint8_t*& out, T value) {
  std::memcpy(out, &value, sizeof(T));
  out += sizeof(T);
}

template <typename T>
T get(const uint8_t* bytes, size_t& at) {
  T value;
  std::memcpy(&value, bytes + at, sizeof(T));
  at += sizeof(T);
  return value;
}

size_t packed_size(const sr_cover& cover, size_t atom_count) {
  size_t n = 4 + 4 + 2 + 4 + 1 + 2 * cover.alternative_count;
  for (size_t i = 0; i < atom_count; i++) {
    const sr_index_atom& a = cover.atoms[i];
    n += 3 + 2 + 8 + (a.upper != 0 ? 8 : 0) + (a.lower != 0 ? 8 : 0) +
         (a.range_attnum != 0 || a.range_tag != 0 ? 3 : 0);
  }
  return n;
}

}  // namespace

void PendingCovers::add(uint32_t slot, uint32_t relid, uint16_t home_column, const sr_cover& cover,
                        size_t expected_more) {
  if (cover.alternative_count == 0 || cover.alternative_count > SR_COVER_MAX_ALTERNATIVES)
    throw std::invalid_argument("pending cover's alternatives");
  size_t atom_count = 0;
  for (size_t a = 0; a < cover.alternative_count; a++) {
    if (cover.alternative_sizes[a] > UINT16_MAX) throw std::invalid_argument("pending cover's atoms");
    atom_count += cover.alternative_sizes[a];
  }
  if (contains(slot)) throw std::invalid_argument("slot already pending");
  const size_t n = packed_size(cover, atom_count);
  if (bytes_.size() + n > bytes_.capacity()) {
    // Grow once to the projected total at the average entry so far (or double).
    const size_t average = count_ == 0 ? n : bytes_.size() / count_ + 1;
    bytes_.reserve(std::max(bytes_.size() + n + expected_more * average, bytes_.capacity() * 2));
  }
  if (slot / 64 >= live_.size()) live_.resize(std::max<size_t>(slot / 64 + 1, live_.size() * 2));
  last_start_ = bytes_.size();
  bytes_.resize(last_start_ + n);
  uint8_t* out = bytes_.data() + last_start_;
  put<uint32_t>(out, slot);
  put<uint32_t>(out, relid);
  put<uint16_t>(out, home_column);
  put<uint32_t>(out, cover.exact_alternatives);
  put<uint8_t>(out, static_cast<uint8_t>(cover.alternative_count));
  for (size_t a = 0; a < cover.alternative_count; a++) put<uint16_t>(out, static_cast<uint16_t>(cover.alternative_sizes[a]));
  for (size_t i = 0; i < atom_count; i++) {
    const sr_index_atom& a = cover.atoms[i];
    const bool range = a.range_attnum != 0 || a.range_tag != 0;
    put<uint8_t>(out, a.kind);
    put<uint8_t>(out, a.tag);
    put<uint8_t>(out, static_cast<uint8_t>((a.upper != 0 ? kHasUpper : 0) | (a.lower != 0 ? kHasLower : 0) |
                                              (range ? kHasRange : 0)));
    put<uint16_t>(out, a.attnum);
    put<uint64_t>(out, a.key);
    if (a.upper != 0) put<uint64_t>(out, a.upper);
    if (a.lower != 0) put<uint64_t>(out, a.lower);
    if (range) {
      put<uint16_t>(out, a.range_attnum);
      put<uint8_t>(out, a.range_tag);
    }
  }
  assert(out == bytes_.data() + bytes_.size());
  live_[slot / 64] |= uint64_t{1} << (slot % 64);
  count_++;
  atoms_added_ += atom_count;
}

void PendingCovers::remove_last(uint32_t slot) {
  if (!contains(slot)) return;
  bytes_.resize(last_start_);
  live_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
  count_--;
}

bool PendingCovers::drop(uint32_t slot) noexcept {
  if (!contains(slot)) return false;
  live_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
  count_--;
  return true;
}

void PendingCovers::clear() noexcept {
  bytes_ = std::vector<uint8_t>();
  live_ = std::vector<uint64_t>();
  atoms_ = std::vector<sr_index_atom>();
  sizes_ = std::vector<uint32_t>();
  count_ = 0;
  last_start_ = 0;
  atoms_added_ = 0;
}

size_t PendingCovers::read(size_t at) const {
  const uint8_t* b = bytes_.data();
  entry_.slot = get<uint32_t>(b, at);
  entry_.relid = get<uint32_t>(b, at);
  entry_.home_column = get<uint16_t>(b, at);
  const uint32_t exact = get<uint32_t>(b, at);
  const size_t alternatives = get<uint8_t>(b, at);
  sizes_.resize(alternatives);
  size_t atom_count = 0;
  for (size_t a = 0; a < alternatives; a++) atom_count += sizes_[a] = get<uint16_t>(b, at);
  atoms_.resize(atom_count);
  for (size_t i = 0; i < atom_count; i++) {
    sr_index_atom& a = atoms_[i];
    a = sr_index_atom{};
    a.kind = get<uint8_t>(b, at);
    a.tag = get<uint8_t>(b, at);
    const uint8_t has = get<uint8_t>(b, at);
    a.attnum = get<uint16_t>(b, at);
    a.key = get<uint64_t>(b, at);
    if (has & kHasUpper) a.upper = get<uint64_t>(b, at);
    if (has & kHasLower) a.lower = get<uint64_t>(b, at);
    if (has & kHasRange) {
      a.range_attnum = get<uint16_t>(b, at);
      a.range_tag = get<uint8_t>(b, at);
    }
  }
  entry_.cover = sr_cover{atoms_.data(), sizes_.data(), alternatives, exact};
  return at;
}

}  // namespace shape_router
