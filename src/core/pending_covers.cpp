#include "shape_router/pending_covers.hpp"

#include "shape_router/huge_pages.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <new>
#include <stdexcept>

namespace shape_router {

namespace {

// A new chunk's room (an entry larger than this gets a chunk of its own size):
// the first 1 MB, each next one twice the last up to 16 MB, so that a bulk
// load's chunks are large enough for huge pages (touched lazily either way).
constexpr size_t kChunkBytes = size_t{1} << 20;
constexpr size_t kMaxChunkBytes = size_t{16} << 20;

// Writers through a pointer into room made once per entry.
void put_byte(uint8_t*& out, uint8_t value) { *out++ = value; }

template <typename T>
void put_fixed(uint8_t*& out, T value) {
  std::memcpy(out, &value, sizeof(T));
  out += sizeof(T);
}

// An upper bound of an entry's bytes.
size_t entry_bound(const sr_cover& cover, size_t atom_count) {
  return 5 + 1 + 4 + 3 + 5 + 5 * cover.alternative_count + atom_count * (1 + 1 + 2 + 8 + 8 + 8 + 3);
}

}  // namespace

PendingCovers::Chunk::Chunk(size_t capacity) {
  void* p = mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  bytes_ = static_cast<uint8_t*>(p);
  capacity_ = capacity;
  advise_huge_pages(p, capacity);
}

PendingCovers::Chunk& PendingCovers::Chunk::operator=(Chunk&& other) noexcept {
  if (this != &other) {
    release();
    std::swap(bytes_, other.bytes_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }
  return *this;
}

void PendingCovers::Chunk::release() noexcept {
  if (bytes_ != nullptr) munmap(bytes_, capacity_);
  bytes_ = nullptr;
  size_ = capacity_ = 0;
}

void PendingCovers::add(uint32_t slot, uint32_t relid, uint16_t home_column, const sr_cover& cover) {
  if (cover.alternative_count == 0 || cover.alternative_count > SR_COVER_MAX_ALTERNATIVES)
    throw std::invalid_argument("pending cover's alternatives");
  size_t atom_count = 0;
  for (size_t a = 0; a < cover.alternative_count; a++) atom_count += cover.alternative_sizes[a];
  for (size_t i = 0; i < atom_count; i++)
    if (cover.atoms[i].kind > 0x0f) throw std::invalid_argument("pending cover's atom kind");
  if (contains(slot)) throw std::invalid_argument("slot already pending");
  // Every allocation first.
  const size_t bound = entry_bound(cover, atom_count);
  if (chunks_.empty() || chunks_.back().room() < bound) {
    chunks_.reserve(chunks_.size() + 1);
    const size_t last = chunks_.empty() ? 0 : chunks_.back().capacity();  // 0: freed by a drain
    const size_t next = last == 0 ? kChunkBytes : std::min(2 * last, kMaxChunkBytes);
    chunks_.emplace_back(std::max(next, bound));
  }
  if (slot / 64 >= live_.size()) live_.resize(std::max<size_t>(slot / 64 + 1, live_.size() * 2));
  Chunk& chunk = chunks_.back();
  last_start_ = chunk.size();
  uint8_t* out = chunk.data() + chunk.size();
  before_last_slot_ = last_slot_;
  before_last_relid_ = last_relid_;
  const uint32_t delta = slot - last_slot_;
  write_leb128(out, delta << 1 ^ (0u - (delta >> 31)));
  const bool relid_changed = relid != last_relid_;
  put_byte(out, static_cast<uint8_t>(cover.alternative_count | (relid_changed ? kRelidChanged : 0)));
  if (relid_changed) put_fixed<uint32_t>(out, relid);
  write_leb128(out, home_column);
  write_leb128(out, cover.exact_alternatives);
  for (size_t a = 0; a < cover.alternative_count; a++) write_leb128(out, cover.alternative_sizes[a]);
  for (size_t i = 0; i < atom_count; i++) {
    const sr_index_atom& a = cover.atoms[i];
    const bool range = a.range_attnum != 0 || a.range_tag != 0;
    put_byte(out, static_cast<uint8_t>(a.kind | (a.upper != 0 ? kHasUpper : 0) | (a.lower != 0 ? kHasLower : 0) |
                                       (range ? kHasRange : 0) | (a.attnum > 0xff ? kWideAttnum : 0)));
    put_byte(out, a.tag);
    if (a.attnum > 0xff)
      put_fixed<uint16_t>(out, a.attnum);
    else
      put_byte(out, static_cast<uint8_t>(a.attnum));
    put_fixed<uint64_t>(out, a.key);
    if (a.upper != 0) put_fixed<uint64_t>(out, a.upper);
    if (a.lower != 0) put_fixed<uint64_t>(out, a.lower);
    if (range) {
      put_fixed<uint16_t>(out, a.range_attnum);
      put_byte(out, a.range_tag);
    }
  }
  chunk.set_size(static_cast<size_t>(out - chunk.data()));
  last_slot_ = slot;
  last_relid_ = relid;
  live_[slot / 64] |= uint64_t{1} << (slot % 64);
  count_++;
  atoms_added_ += atom_count;
}

void PendingCovers::remove_last(uint32_t slot) {
  if (!contains(slot) || chunks_.empty() || last_slot_ != slot) return;
  chunks_.back().set_size(last_start_);
  last_slot_ = before_last_slot_;
  last_relid_ = before_last_relid_;
  live_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
  count_--;
}

bool PendingCovers::drop(uint32_t slot) noexcept {
  if (!contains(slot)) return false;
  live_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
  count_--;
  return true;
}

size_t PendingCovers::bytes() const noexcept {
  size_t n = live_.capacity() * sizeof(uint64_t);
  for (const Chunk& chunk : chunks_) n += chunk.size();
  return n;
}

void PendingCovers::clear() noexcept {
  chunks_ = std::vector<Chunk>();
  live_ = std::vector<uint64_t>();
  atoms_ = std::vector<sr_index_atom>();
  sizes_ = std::vector<uint32_t>();
  count_ = 0;
  atoms_added_ = 0;
  last_start_ = 0;
  last_slot_ = last_relid_ = before_last_slot_ = before_last_relid_ = 0;
}

void PendingCovers::read(Cursor& c) const {
  sizes_.resize(SR_COVER_MAX_ALTERNATIVES);
  atoms_.clear();
  size_t alternatives;
  uint32_t exact;
  decode(c, entry_.home_column, exact, alternatives, sizes_.data(),
         [&](size_t, const sr_index_atom& atom) { atoms_.push_back(atom); });
  entry_.slot = c.slot;
  entry_.relid = c.relid;
  entry_.cover = sr_cover{atoms_.data(), sizes_.data(), alternatives, exact};
}

}  // namespace shape_router
