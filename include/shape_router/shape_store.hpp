// What the router keeps of each shape beyond its slot: its relation, its
// index column and its definition bytes (the blob the shell reads back as an sr_shape_spec), in
// one arena of entries. Shapes of one form (the same bytes but for their own
// constants) share those bytes, kept once.
//
// An entry starts with a LEB128 number v:
//   v even: the blob is inline: uint16 index column (0: a scan shape, else
//           attnum + 1), uint32 relid, then the blob's v / 2 bytes;
//   v odd:  the shape's form is forms_[v / 2] (which holds the index column
//           and the relid);
//           then a LEB128 length and the shape's own bytes, trailing zero
//           bytes dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "shape_router/flat_map.hpp"
#include "shape_router/leb128.hpp"

namespace shape_router {

class ShapeStore {
 public:
  struct Entry {
    int index_attnum;      // -1: scan shape
    uint32_t relid;
    uint32_t blob_len;     // of the whole blob
    const uint8_t* bytes;  // inline: the blob; shared form: the stored own bytes
    uint32_t stored_len;   // shared form: how many own bytes are stored
    int64_t form;          // index into forms_, or -1: inline
    size_t size;           // of the whole entry
  };

  // Stores a shape's entry and returns its offset. column: 0 for a scan shape,
  // else the index attnum + 1; relid: its relation. own_offset/own_len: the blob's own bytes
  // (SR_BLOB_UNSHARED: it shares none). Throws std::invalid_argument for a
  // blob the arena cannot address, std::bad_alloc; stores nothing then.
  uint32_t add(uint16_t column, uint32_t relid, const uint8_t* blob, size_t blob_len, size_t own_offset,
               size_t own_len);
  // Takes back the entry the last add() returned (its shape could not be added).
  void undo_add(uint32_t offset) noexcept;
  // Its bytes become garbage, reclaimed by compact().
  void release(uint32_t offset) noexcept;

  Entry entry(uint32_t offset) const noexcept {
    const uint8_t* p = bytes_.data() + offset;
    size_t pos = 0;
    const uint32_t v = read_leb128(p, pos);
    Entry e;
    if ((v & 1) == 0) {
      e.index_attnum = static_cast<int>(p[pos] | (p[pos + 1] << 8)) - 1;
      pos += 2;
      std::memcpy(&e.relid, p + pos, 4);
      pos += 4;
      e.blob_len = v >> 1;
      e.bytes = p + pos;
      e.stored_len = e.blob_len;
      e.form = -1;
      e.size = pos + e.blob_len;
    } else {
      const Form& f = forms_[v >> 1];
      e.index_attnum = static_cast<int>(f.column) - 1;
      e.relid = f.relid;
      e.blob_len = static_cast<uint32_t>(f.bytes.size()) + f.own_len;
      e.stored_len = read_leb128(p, pos);
      e.bytes = p + pos;
      e.form = v >> 1;
      e.size = pos + e.stored_len;
    }
    return e;
  }
  // The entry's blob, whole: valid until the next call on the store.
  std::pair<const uint8_t*, uint32_t> blob(uint32_t offset) const;

  // Loading many shapes: the arena grows to the projected total at the average
  // entry size so far, not by doubling (whose slack would be live at the load's peak).
  void begin_bulk(size_t expected_entries) noexcept;
  void end_bulk();

  // Once released entries are half of the arena (and at least 1 MiB): moves the
  // live ones together. for_each_offset(visit) calls visit(uint32_t& offset) for
  // each live entry's offset, which compact() rewrites.
  template <typename ForEachOffset>
  bool compact_if_due(ForEachOffset&& for_each_offset) {
    if (dead_bytes_ < std::max<size_t>(1 << 20, bytes_.size() / 2)) return false;
    std::vector<uint8_t> compact;
    compact.reserve(bytes_.size() - dead_bytes_);
    for_each_offset([&](uint32_t& offset) {
      const size_t at = compact.size(), size = entry(offset).size;
      compact.insert(compact.end(), bytes_.begin() + offset, bytes_.begin() + offset + size);
      offset = static_cast<uint32_t>(at);
    });
    bytes_.swap(compact);
    dead_bytes_ = 0;
    return true;
  }

  size_t bytes() const noexcept { return bytes_.size(); }
  size_t form_count() const noexcept { return forms_.size() - free_forms_.size(); }

 private:
  // The bytes shared by the shapes of one form: their blob without the own bytes.
  struct Form {
    std::vector<uint8_t> bytes;
    uint64_t hash = 0;  // its key in form_by_hash_
    uint32_t own_offset = 0, own_len = 0;
    uint32_t uses = 0;
    uint32_t relid = 0;
    uint16_t column = 0;
  };

  // The form of a blob whose own bytes are [own_offset, own_offset + own_len):
  // an existing form (one more use) or a new one; -1 when it cannot be shared.
  int64_t acquire_form(const uint8_t* blob, size_t blob_len, size_t own_offset, size_t own_len, uint16_t column,
                       uint32_t relid);
  void release_form(int64_t form) noexcept;

  std::vector<uint8_t> bytes_;  // the entries, back to back
  size_t dead_bytes_ = 0;       // of released entries
  std::vector<Form> forms_;
  FlatMap form_by_hash_;  // hash (never 0) → index into forms_
  std::vector<uint32_t> free_forms_;
  // The form acquire_form last returned: a load adds the shapes of one form in
  // runs, and a match here needs no hash of the blob.
  int64_t last_form_ = -1;
  mutable std::vector<uint8_t> scratch_;  // a shared form's blob, put together by blob()
  bool bulk_ = false;
  size_t bulk_expected_ = 0, bulk_added_ = 0, bulk_start_bytes_ = 0;
};

}  // namespace shape_router
