// The router's C++ face: the relation gate, per-relation scan shapes, and the
// routing index for shapes with an equality key. The C API in router.h wraps
// this class; unit tests use it directly.
#pragma once

#include <cstdint>
#include <vector>

#include "shape_router/flat_map.hpp"
#include "shape_router/index.hpp"
#include "shape_router/program.h"
#include "shape_router/router.h"

namespace shape_router {

class Router {
 public:
  explicit Router(Mixer mixer = default_mixer) : index_(mixer) {}

  // Adds or replaces a shape. index_attnum < 0: a scan shape (evaluated for every
  // change of its relation); otherwise its WHERE holds only for rows whose column
  // index_attnum (of type tag index_tag) hashes to one of keys. Returns the
  // replaced payload (nullptr when new). Throws std::invalid_argument for a zero
  // id/relid or a shape moving relation.
  // blob: bytes kept with the shape (copied into the router's arena) and handed
  // back in every sr_shape_ref.
  void* add_shape(uint64_t shape_id, uint32_t relid, void* payload, int index_attnum, uint8_t index_tag,
                  const uint64_t* keys, size_t key_count, const void* blob = nullptr, size_t blob_len = 0);
  void set_payload(uint32_t slot, void* payload) noexcept {
    if (slot < slots_.size() && slots_[slot].live) slots_[slot].payload = payload;
  }
  uint32_t shape_relid(uint64_t shape_id) const noexcept {
    const uint32_t* slot = shape_slot_.find(shape_id);
    return slot == nullptr ? 0 : slots_[*slot].relid;
  }

  // Loading many shapes: reserve room, and keep new keys out of the overlay
  // until end_bulk_load() builds the static index once.
  void begin_bulk_load(size_t expected_shapes);
  void end_bulk_load();

  // Removes; returns the payload, or nullptr when the shape was not present.
  void* drop_shape(uint64_t shape_id);

  struct IndexColumn {
    uint16_t attnum;
    uint8_t tag;
    uint32_t shapes;  // how many shapes are indexed on it
  };
  struct RelationView {
    size_t shape_count = 0;
    const IndexColumn* index_columns = nullptr;
    size_t index_column_count = 0;
  };

  // The relation gate: one probe.
  RelationView relation(uint32_t relid) const noexcept {
    RelationView view;
    const uint32_t* slot = relation_slot_.find(relid);
    if (slot == nullptr) return view;
    const Relation& r = relations_[*slot];
    view.shape_count = r.shape_count;
    view.index_columns = r.index_columns.data();
    view.index_column_count = r.index_columns.size();
    return view;
  }

  // Candidate shapes of a change on relid whose indexed columns hash to keys
  // (from the new and/or old row): the relation's scan shapes plus the index's
  // hits, ascending by shape id, without duplicates. all_shapes: every shape of
  // the relation instead (TRUNCATE, or when the row's keys cannot be trusted).
  const std::vector<sr_shape_ref>& candidates(uint32_t relid, const uint64_t* keys, size_t key_count,
                                              bool all_shapes = false);

  bool maintain(bool force);
  IndexStats index_stats() const { return index_.stats(); }
  size_t shape_count() const noexcept { return shape_slot_.size(); }
  size_t relation_count() const noexcept { return relations_with_shapes_; }
  sr_counters& counters() noexcept { return counters_; }

  template <typename Visit>
  void for_each_shape(Visit&& visit) const {
    for (uint32_t slot = 0; slot < slots_.size(); slot++)
      if (slots_[slot].live) visit(ref(slot));
  }
  size_t blob_bytes() const noexcept { return blobs_.size(); }

 private:
  struct Slot {
    uint64_t shape_id = 0;
    void* payload = nullptr;
    uint32_t relid = 0;
    uint32_t blob_offset = 0;  // into blobs_
    uint32_t blob_len = 0;
    int16_t index_attnum = -1;  // -1: scan shape
    bool live = false;
  };
  struct Relation {
    uint32_t relid = 0;
    size_t shape_count = 0;
    std::vector<uint32_t> scan;  // slots of its scan shapes, ascending shape_id
    std::vector<IndexColumn> index_columns;
  };

  sr_shape_ref ref(uint32_t slot) const noexcept {
    const Slot& s = slots_[slot];
    return sr_shape_ref{s.shape_id, s.payload, s.blob_len > 0 ? blobs_.data() + s.blob_offset : nullptr, s.blob_len,
                        slot};
  }
  std::vector<uint32_t>::iterator scan_position(Relation& r, uint64_t shape_id);
  void compact_blobs();

  uint32_t allocate_slot();
  Relation& relation_for(uint32_t relid);

  FlatMap relation_slot_;  // relid → index into relations_
  FlatMap shape_slot_;     // shape id → slot
  std::vector<Relation> relations_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;     // reusable now
  std::vector<uint32_t> retired_slots_;  // free once the static index no longer refers to them
  size_t relations_with_shapes_ = 0;
  ShapeIndex index_;
  // Every shape's blob, back to back; dropped shapes' bytes are reclaimed by
  // compaction at maintain() once they are half of it.
  std::vector<uint8_t> blobs_;
  size_t dead_blob_bytes_ = 0;
  bool bulk_ = false;
  sr_counters counters_{};
  // scratch for candidates()
  std::vector<uint32_t> hits_;
  std::vector<sr_shape_ref> result_;
};

// The index key of a value of column attnum of relation relid: a 64-bit hash of
// the value normalised as the VM compares it (so values equal under the type's =
// hash alike: int2/int4/int8 as int64, -0 as 0, every NaN alike, char(n) without
// trailing blanks, numeric without scale).
uint64_t index_key(uint32_t relid, uint16_t attnum, uint8_t tag, const sr_value& value);

}  // namespace shape_router
