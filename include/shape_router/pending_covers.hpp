// Covers of shapes loaded in bulk whose alternative is chosen once every
// shape is in (when each key's shape count is known), kept packed meanwhile.
//
// They are live at the load's peak of memory, so a cover is held as bytes,
// not as sr_index_atom (32 bytes): numbers as LEB128, a slot as the
// difference from the one before, a relid only when it changes, and an
// atom's optional fields only when they are not zero. The mix's typical
// deferred cover (two equality alternatives) takes 28 bytes. The bytes lie in
// chunks, which drain() frees as it reads them: what the filing adds to the
// router is then offset by what it frees here.
#ifndef SHAPE_ROUTER_PENDING_COVERS_HPP
#define SHAPE_ROUTER_PENDING_COVERS_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "shape_router/leb128.hpp"
#include "shape_router/router.h"

namespace shape_router {

class PendingCovers {
 public:
  struct Entry {
    uint32_t slot;
    uint32_t relid;
    uint16_t home_column;
    sr_cover cover;  // valid until the next entry is read
  };

  // Keeps slot's cover. Throws std::invalid_argument for a cover it cannot
  // hold (no alternative, too many, an atom kind over 15), std::bad_alloc;
  // keeps nothing then.
  void add(uint32_t slot, uint32_t relid, uint16_t home_column, const sr_cover& cover);
  // Undoes the last add (a failed registration).
  void remove_last(uint32_t slot);
  // Forgets slot's cover (the shape was dropped while loading). A slot dropped
  // here must not be added again before clear(): the router retires it.
  bool drop(uint32_t slot) noexcept;
  bool contains(uint32_t slot) const noexcept {
    return slot / 64 < live_.size() && (live_[slot / 64] >> (slot % 64) & 1) != 0;
  }
  bool empty() const noexcept { return count_ == 0; }
  size_t size() const noexcept { return count_; }
  // Atoms of every cover added since clear(), dropped ones included: a bound for sizing.
  size_t atoms_added() const noexcept { return atoms_added_; }
  // Bytes held by the covers (the chunks' used bytes and the slot bitmap).
  size_t bytes() const noexcept;

  // Calls f(const Entry&) for every cover not dropped, in the order added.
  template <typename F>
  void for_each(F&& f) const {
    auto none = [](uint32_t, const sr_index_atom&) {};
    visit(0, none, f, false);
  }
  // As for_each, also calling ahead(relid, const sr_index_atom&) for the
  // atoms (kind, attnum and key set) of the cover `distance` entries further
  // on, dropped or not: a caller that looks atoms up in a large map can ask
  // for their lines before it needs them.
  template <typename Ahead, typename F>
  void for_each_ahead(size_t distance, Ahead&& ahead, F&& f) const {
    visit(distance, ahead, f, false);
  }
  // As for_each_ahead, freeing each chunk once read; then clear(). Also
  // clear() when f throws: the entries left cannot be decoded without the
  // chunks freed before them.
  template <typename Ahead, typename F>
  void drain(size_t distance, Ahead&& ahead, F&& f) {
    try {
      visit(distance, ahead, f, true);
    } catch (...) {
      clear();
      throw;
    }
    clear();
  }

  // Frees everything.
  void clear() noexcept;

 private:
  // Where an entry starts, and what the entries before it left to decode it.
  struct Cursor {
    size_t chunk = 0, at = 0;
    uint32_t slot = 0, relid = 0;
  };
  bool at_end(const Cursor& c) const noexcept {
    return c.chunk >= chunks_.size() || (c.chunk + 1 == chunks_.size() && c.at >= chunks_[c.chunk].size());
  }
  // The next entry's start (an entry never spans chunks).
  void next_chunk_if_done(Cursor& c) const noexcept {
    while (c.chunk + 1 < chunks_.size() && c.at >= chunks_[c.chunk].size()) {
      c.chunk++;
      c.at = 0;
    }
  }
  // Decodes the entry at c into entry_ and moves c past it.
  void read(Cursor& c) const;
  // Moves c past the entry at c, calling ahead(relid, atom) for its atoms.
  template <typename Ahead>
  void skim(Cursor& c, Ahead& ahead) const {
    uint16_t home;
    uint32_t exact, sizes[SR_COVER_MAX_ALTERNATIVES];
    size_t alternatives;
    decode(c, home, exact, alternatives, sizes, [&](size_t, const sr_index_atom& atom) { ahead(c.relid, atom); });
  }

  // The layout (add writes it): LEB128 of the slot's difference from the
  // entry before's (zigzag), a byte of the alternative count (low 5 bits) and
  // whether the relid changed (bit 5), the relid (4 bytes) if so, LEB128s of
  // the home column, the exact bits and each alternative's atom count; then
  // the atoms: a byte of kind (low 4 bits) and which of upper, lower, range
  // column and a two-byte attnum follow (bits 4 to 7), the tag, the attnum
  // (1 or 2 bytes), the key (8), then upper and lower (8 each) and the range
  // column and tag (2 + 1) if set.
  template <typename T>
  static T fixed(const uint8_t* b, size_t& at) noexcept {
    T value;
    std::memcpy(&value, b + at, sizeof(T));
    at += sizeof(T);
    return value;
  }
  enum : uint8_t { kHasUpper = 1 << 4, kHasLower = 1 << 5, kHasRange = 1 << 6, kWideAttnum = 1 << 7 };
  enum : uint8_t { kRelidChanged = 1 << 5 };
  template <typename Atom>
  void decode(Cursor& c, uint16_t& home, uint32_t& exact, size_t& alternatives, uint32_t* sizes,
              Atom&& atom) const {
    const uint8_t* b = chunks_[c.chunk].data();
    size_t at = c.at;
    const uint32_t zigzag = read_leb128(b, at);
    c.slot += (zigzag >> 1) ^ (0u - (zigzag & 1));
    const uint8_t head = b[at++];
    alternatives = head & 0x1f;
    if (head & kRelidChanged) c.relid = fixed<uint32_t>(b, at);
    home = static_cast<uint16_t>(read_leb128(b, at));
    exact = read_leb128(b, at);
    size_t atom_count = 0;
    for (size_t a = 0; a < alternatives; a++) atom_count += sizes[a] = read_leb128(b, at);
    for (size_t i = 0; i < atom_count; i++) {
      sr_index_atom a{};
      const uint8_t flags = b[at++];
      a.kind = flags & 0x0f;
      a.tag = b[at++];
      a.attnum = (flags & kWideAttnum) ? fixed<uint16_t>(b, at) : b[at++];
      a.key = fixed<uint64_t>(b, at);
      if (flags & kHasUpper) a.upper = fixed<uint64_t>(b, at);
      if (flags & kHasLower) a.lower = fixed<uint64_t>(b, at);
      if (flags & kHasRange) {
        a.range_attnum = fixed<uint16_t>(b, at);
        a.range_tag = b[at++];
      }
      atom(i, static_cast<const sr_index_atom&>(a));
    }
    c.at = at;
  }

  template <typename Ahead, typename F>
  void visit(size_t distance, Ahead& ahead, F& f, bool free_read) const {
    Cursor lead, at;
    next_chunk_if_done(lead);
    next_chunk_if_done(at);
    for (size_t i = 0; i < distance && !at_end(lead); i++) {
      skim(lead, ahead);
      next_chunk_if_done(lead);
    }
    while (!at_end(at)) {
      if (!at_end(lead)) {
        skim(lead, ahead);
        next_chunk_if_done(lead);
      }
      read(at);
      if (contains(entry_.slot)) f(static_cast<const Entry&>(entry_));
      const size_t chunk = at.chunk;
      next_chunk_if_done(at);
      if (free_read && at.chunk != chunk) chunks_[chunk].release();
    }
  }

  // Bytes mapped from the system, not taken from the heap: a freed chunk
  // between live heap blocks would stay resident (malloc serves blocks of a
  // megabyte from the heap once a larger one has been freed).
  class Chunk {
   public:
    explicit Chunk(size_t capacity);  // throws std::bad_alloc
    Chunk(Chunk&& other) noexcept { *this = std::move(other); }
    Chunk& operator=(Chunk&& other) noexcept;
    Chunk(const Chunk&) = delete;
    Chunk& operator=(const Chunk&) = delete;
    ~Chunk() { release(); }
    void release() noexcept;
    uint8_t* data() const noexcept { return bytes_; }
    size_t size() const noexcept { return size_; }
    size_t room() const noexcept { return capacity_ - size_; }
    size_t capacity() const noexcept { return capacity_; }
    void set_size(size_t n) noexcept { size_ = n; }

   private:
    uint8_t* bytes_ = nullptr;
    size_t size_ = 0, capacity_ = 0;
  };
  // The chunks (mutable: drain frees them as it reads).
  mutable std::vector<Chunk> chunks_;
  std::vector<uint64_t> live_;  // bit per slot: its cover is here and not dropped
  size_t count_ = 0;            // covers not dropped
  size_t atoms_added_ = 0;
  // The last entry added: where it began, and the slot and relid before it.
  size_t last_start_ = 0;
  uint32_t last_slot_ = 0, last_relid_ = 0, before_last_slot_ = 0, before_last_relid_ = 0;
  // read()'s decoding buffers
  mutable Entry entry_{};
  mutable std::vector<sr_index_atom> atoms_;
  mutable std::vector<uint32_t> sizes_;
};

}  // namespace shape_router

#endif
