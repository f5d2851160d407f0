// Covers of shapes loaded in bulk whose alternative is chosen once every
// shape is in (when each key's shape count is known), kept packed meanwhile.
//
// A cover is held as bytes, not as sr_index_atom (32 bytes): an atom stores
// its kind, tag, column and key, and only the other fields that are not zero.
// At a million shapes, 30% of them with several alternatives, the unpacked
// covers were about 45 MB of the load's peak memory; packed, about 12.
#ifndef SHAPE_ROUTER_PENDING_COVERS_HPP
#define SHAPE_ROUTER_PENDING_COVERS_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

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

  // Keeps slot's cover. expected_more: how many more covers are likely to come
  // (an estimate), so that the bytes grow once to the projected total rather
  // than by doubling, whose slack and copy would be live at the load's peak.
  void add(uint32_t slot, uint32_t relid, uint16_t home_column, const sr_cover& cover, size_t expected_more);
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
  size_t bytes() const noexcept { return bytes_.capacity() + live_.capacity() * sizeof(uint64_t); }

  // Calls f(const Entry&) for every cover not dropped, in the order added.
  template <typename F>
  void for_each(F&& f) const {
    for (size_t at = 0; at < bytes_.size();) {
      at = read(at);
      if (contains(entry_.slot)) f(static_cast<const Entry&>(entry_));
    }
  }

  // As for_each, also calling ahead(relid, const sr_index_atom&) for the
  // atoms (kind, attnum and key set) of the cover `distance` entries further
  // on, dropped or not: a caller that looks atoms up in a large map can ask
  // for their lines before it needs them.
  template <typename Ahead, typename F>
  void for_each_ahead(size_t distance, Ahead&& ahead, F&& f) const {
    size_t lead = 0;
    for (size_t i = 0; i < distance && lead < bytes_.size(); i++) lead = skim(lead, ahead);
    for (size_t at = 0; at < bytes_.size();) {
      if (lead < bytes_.size()) lead = skim(lead, ahead);
      at = read(at);
      if (contains(entry_.slot)) f(static_cast<const Entry&>(entry_));
    }
  }

  // Frees everything.
  void clear() noexcept;

 private:
  size_t read(size_t at) const;
  // The entry at `at`'s atoms' kind, column and key, for ahead (layout: pending_covers.cpp).
  template <typename Ahead>
  size_t skim(size_t at, Ahead& ahead) const {
    const uint8_t* b = bytes_.data();
    uint32_t relid;
    std::memcpy(&relid, b + at + 4, 4);
    const size_t alternatives = b[at + 14];
    size_t atom_count = 0;
    for (size_t a = 0; a < alternatives; a++) {
      uint16_t n;
      std::memcpy(&n, b + at + 15 + 2 * a, 2);
      atom_count += n;
    }
    at += 15 + 2 * alternatives;
    for (size_t i = 0; i < atom_count; i++) {
      sr_index_atom atom{};
      atom.kind = b[at];
      atom.tag = b[at + 1];
      const uint8_t has = b[at + 2];
      std::memcpy(&atom.attnum, b + at + 3, 2);
      std::memcpy(&atom.key, b + at + 5, 8);
      at += 13 + ((has & 1) ? 8 : 0) + ((has & 2) ? 8 : 0) + ((has & 4) ? 3 : 0);
      ahead(relid, static_cast<const sr_index_atom&>(atom));
    }
    return at;
  }

  std::vector<uint8_t> bytes_;
  std::vector<uint64_t> live_;  // bit per slot: its cover is here and not dropped
  size_t count_ = 0;            // covers not dropped
  size_t last_start_ = 0;       // where the last add began
  size_t atoms_added_ = 0;
  // read()'s decoding buffers
  mutable Entry entry_{};
  mutable std::vector<sr_index_atom> atoms_;
  mutable std::vector<uint32_t> sizes_;
};

}  // namespace shape_router

#endif
