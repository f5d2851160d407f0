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

  // Frees everything.
  void clear() noexcept;

 private:
  size_t read(size_t at) const;

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
