// The router's C++ face: the relation gate, per-relation scan shapes, and the
// routing index for shapes with an equality key. The C API in router.h wraps
// this class; unit tests use it directly.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "shape_router/column_lists.hpp"
#include "shape_router/composite_index.hpp"
#include "shape_router/epoch_key_set.hpp"
#include "shape_router/gram_filter.hpp"
#include "shape_router/flat_map.hpp"
#include "shape_router/form_lane.hpp"
#include "shape_router/key_counts.hpp"
#include "shape_router/shape_index.hpp"
#include "shape_router/pending_covers.hpp"
#include "shape_router/program.h"
#include "shape_router/range_index.hpp"
#include "shape_router/row_keys.hpp"
#include "shape_router/value_sieve.hpp"
#include "shape_router/shape_store.hpp"
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
  // blob: bytes kept with the shape (blob() gives them back); its bytes
  // [own_offset, own_offset + own_len) are the shape's own, the rest may be
  // shared with shapes of the same form (SR_BLOB_UNSHARED: none is).
  void* add_shape(uint64_t shape_id, uint32_t relid, void* payload, int index_attnum, uint8_t index_tag,
                  const uint64_t* keys, size_t key_count, const void* blob = nullptr, size_t blob_len = 0,
                  size_t own_offset = SR_BLOB_UNSHARED, size_t own_len = 0);
  // The same with a cover (router.h: sr_cover; no alternative: a scan shape).
  // The shape is filed under the alternative whose keys have the fewest shapes
  // now; while bulk loading, once every shape is loaded (end_bulk_load), counting
  // the shapes each key has or would have. Throws std::invalid_argument for a
  // cover past SR_COVER_MAX_ALTERNATIVES or SR_COVER_MAX_ATOMS.
  void* add_shape(uint64_t shape_id, uint32_t relid, void* payload, const sr_cover& cover,
                  const void* blob = nullptr, size_t blob_len = 0, size_t own_offset = SR_BLOB_UNSHARED,
                  size_t own_len = 0);
  // The blob of the shape in slot, whole: valid until the next call on the router.
  std::pair<const uint8_t*, uint32_t> blob(uint32_t slot) const {
    if (slot >= slots_.size() || slots_[slot].shape_id() == 0) return {nullptr, 0};
    return store_.blob(slots_[slot].entry);
  }
  // Sets (or, with nullptr, clears) the payload of the shape in slot. Throws std::bad_alloc.
  void set_payload(uint32_t slot, void* payload);
  uint32_t shape_relid(uint64_t shape_id) const noexcept {
    const uint32_t slot = find_slot(shape_id);
    return slot == HandleSet::kNone ? 0 : relid_of(slot);
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
    uint16_t substring_grams;  // as sr_index_column's
    uint32_t shapes;        // shapes with equality atoms on it
    uint32_t range_shapes;  // shapes with range atoms on it
    uint32_t null_shapes = 0;        // shapes with NULL atoms on it
    uint32_t complement_shapes = 0;  // shapes with complement atoms on it
    uint32_t prefix_shapes = 0;      // shapes with prefix or substring atoms on it
    uint64_t prefix_lengths = 0;     // in the relation's columns: bit L - 1, some prefix is L bytes;
                                     // in one shape's: the lengths of its prefixes
    uint32_t lane_shapes = 0;        // scan shapes in a form lane that read its value (no key)
    bool unused() const noexcept {
      return shapes == 0 && range_shapes == 0 && null_shapes == 0 && complement_shapes == 0 && prefix_shapes == 0 &&
             lane_shapes == 0;
    }
    // Whether adding (or taking away) other's counts takes one of these to or
    // from zero: what a row plan reads of them.
    bool crosses_zero(const IndexColumn& other, bool take) const noexcept {
      auto crosses = [take](uint32_t count, uint32_t by) { return by != 0 && count == (take ? by : 0); };
      return crosses(shapes, other.shapes) || crosses(range_shapes, other.range_shapes) ||
             crosses(null_shapes, other.null_shapes) || crosses(complement_shapes, other.complement_shapes) ||
             crosses(prefix_shapes, other.prefix_shapes) || crosses(lane_shapes, other.lane_shapes);
    }
  };
  struct RelationView {
    size_t shape_count = 0;
    const IndexColumn* index_columns = nullptr;
    size_t index_column_count = 0;
  };

  // The relation gate: one probe.
  RelationView relation(uint32_t relid) const noexcept {
    RelationView view;
    const uint32_t* slot = find_relation(relid);
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
  // probes: the rows' values of range columns (their order keys).
  const std::vector<sr_shape_ref>& candidates(uint32_t relid, const uint64_t* keys, size_t key_count,
                                              bool all_shapes = false, const sr_range_probe* probes = nullptr,
                                              size_t probe_count = 0, const uint16_t* key_attnums = nullptr,
                                              size_t old_keys_from = SIZE_MAX, size_t old_probes_from = SIZE_MAX);

  // candidates() for a change's rows (router.h: sr_router_route), their keys
  // made from the rows' values.
  // prefetched: the token of prefetch_rows() for these rows (0: none).
  const std::vector<sr_shape_ref>& route(uint32_t relid, const sr_row_view* new_row, const sr_row_view* old_row,
                                         bool trusted, uint64_t prefetched = 0);
  // Starts loading what route() will first read for these rows' plain
  // columns, and keeps their keys under token (route() then makes only the
  // rows' other keys, from the same values); says whether it kept them.
  // complete: the rows are all route() would be given, and all their keys
  // are made here (none kept when route() would not trust them).
  bool prefetch_rows(uint32_t relid, const sr_row_view* new_row, const sr_row_view* old_row, uint64_t token = 0,
                     bool complete = false);
  // Changes whenever some relation's index columns change (router.h: sr_router_columns_epoch).
  uint64_t columns_epoch() const noexcept { return columns_epoch_; }

  // See ShapeIndex::prefetch.
  // Starts loading the directory lines an add or drop of shape_id reads first.
  void prefetch_shape(uint64_t shape_id) const noexcept { directory_.prefetch(shape_id); }
  void prefetch(const uint64_t* keys, size_t key_count) const noexcept {
    for (size_t i = 0; i < key_count; i++) index_.prefetch(keys[i]);
  }

  bool maintain(bool force);
  IndexStats index_stats() const { return index_.stats(); }
  uint64_t range_background_builds() const noexcept { return ranges_.background_builds(); }
  size_t range_entries() const noexcept { return ranges_.entries() + composites_.entries() + lists_.entries(); }
  size_t range_bytes() const noexcept { return ranges_.bytes() + composites_.bytes() + lists_.bytes(); }
  size_t shape_count() const noexcept { return directory_.size(); }
  size_t lane_shapes() const noexcept { return lane_shapes_; }
  size_t lane_forms() const noexcept { return lane_forms_; }
  size_t relation_count() const noexcept { return relations_with_shapes_; }
  sr_counters& counters() noexcept { return counters_; }

  template <typename Visit>
  void for_each_shape(Visit&& visit) const {
    for (uint32_t slot = 0; slot < slots_.size(); slot++)
      if (slots_[slot].shape_id() != 0) visit(ref(slot));
  }
  size_t blob_bytes() const noexcept { return store_.bytes(); }
  size_t directory_bytes() const noexcept { return directory_.bytes(); }
  size_t slot_bytes() const noexcept { return slots_.capacity() * sizeof(Slot); }
  size_t cover_column_bytes() const noexcept { return cover_column_words_.size() * sizeof(uint32_t); }
  size_t form_count() const noexcept { return store_.form_count(); }

 private:
  // 12 bytes a shape (the id in two halves: a 64-bit member would align the
  // record to 16); the rest, its relation included, is in its store entry.
  struct Slot {
    uint32_t id_low = 0, id_high = 0;  // the shape id; 0: a free slot
    uint32_t entry = 0;                // offset of the shape's entry in store_
    Slot() = default;
    Slot(uint64_t shape_id, uint32_t store_entry)
        : id_low(static_cast<uint32_t>(shape_id)), id_high(static_cast<uint32_t>(shape_id >> 32)), entry(store_entry) {}
    uint64_t shape_id() const noexcept { return id_low | uint64_t{id_high} << 32; }
  };
  static_assert(sizeof(Slot) == 12, "a slot is 12 bytes");
  uint32_t relid_of(uint32_t slot) const noexcept { return store_.entry(slots_[slot].entry).relid; }
  struct Relation {
    uint32_t relid = 0;
    size_t shape_count = 0;
    size_t exact_shapes = 0;     // shapes the index decides (exact_)
    size_t composite_shapes = 0; // shapes with composite atoms
    uint64_t composite_columns = 0;  // bit attnum % 64: some composite's key column (never cleared)
    size_t always_shapes = 0;    // whole-table shapes (SR_ATOM_ALWAYS), kept in scan and exact
    uint64_t complement_columns = 0;  // bit attnum % 64: some complement atom's column (never cleared)
    uint64_t element_columns = 0;     // bit attnum % 64: some element atom's column (never cleared)
    std::vector<uint32_t> scan;  // slots of its scan and whole-table shapes, ascending shape_id
    // Slots of its indexed shapes, for candidates(all_shapes): made at the first
    // such call from every slot, then kept by add_shape; a drop leaves its slot
    // behind (skipped when read) until they are half of it.
    std::vector<uint32_t> members;
    bool members_known = false;
    size_t member_drops = 0;
    std::vector<IndexColumn> index_columns;
    // Some index column is an array, has grams or is virtual: a row has keys
    // beyond its plain columns' (kept with index_columns).
    bool variable_keys = false;
    // index_columns as ChangeKeys reads a row, made again when columns_epoch_ moves.
    RowPlan row_plan;
    uint64_t row_plan_epoch = 0;
    // Its range columns (attnum, place in ranges_), made with row_plan: what
    // prefetch_rows reads ahead for a row's range probes.
    std::vector<std::pair<uint16_t, uint32_t>> range_columns;
    // Its scan shapes whose programs can run together (FormLane): a lane a form.
    std::vector<FormLane> lanes;
    // The values of its integer equality and composite keys (ValueSieve), and
    // how many of them a bulk load is filing.
    ValueSieve sieve;
    size_t sieve_loading = 0;
    std::vector<int64_t> lane_forms;  // each lane's form in store_
    size_t lane_shapes = 0;
    // Per column with prefix or substring atoms: how many shapes have a prefix
    // of each length (SR_PREFIX_MAX entries), then a gram of each substring_grams bit (16).
    std::vector<std::pair<uint16_t, std::vector<uint32_t>>> prefix_counts;
  };

  const RowPlan& row_plan(Relation& r) {
    if (r.row_plan_epoch != columns_epoch_) remake_row_plan(r);
    return r.row_plan;
  }
  void remake_row_plan(Relation& r);
  // The range column of r's attnum from its row plan's list (current plans
  // only), or nullptr: what ranges_.find says, without hashing.
  const RangeColumn* planned_range(const Relation& r, uint16_t attnum) const noexcept {
    for (const auto& [column, place] : r.range_columns)
      if (column == attnum) return &ranges_.at(place);
    return nullptr;
  }
  // The range column of a probe this router made (route, prefetch_rows): at the
  // place its row plan gave it (places never change), else looked up.
  const RangeColumn* probe_range(const Relation& r, const sr_range_probe& probe, bool planned) const noexcept {
    if (probe.place != 0) return &ranges_.at(probe.place - 1);
    return planned ? planned_range(r, probe.attnum) : ranges_.find(r.relid, probe.attnum);
  }
  void* payload_of(uint32_t slot) const noexcept {
    if (payloads_.empty()) return nullptr;
    const uint32_t* i = payload_index_.find(uint64_t{slot} + 1);
    return i == nullptr ? nullptr : payloads_[*i].payload;
  }
  sr_shape_ref ref(uint32_t slot) const noexcept {
    return sr_shape_ref{slots_[slot].shape_id(), payload_of(slot), slot, 0};
  }
  bool exact(uint32_t slot) const noexcept {
    return slot / 64 < exact_.size() && ((exact_[slot / 64] >> (slot % 64)) & 1);
  }
  void reserve_exact(uint32_t slot);
  void set_exact(Relation& r, uint32_t slot, bool on) noexcept;  // keeps r.exact_shapes
  bool exact_eligible(const sr_cover& cover, size_t alternative, uint16_t home_column) const noexcept;
  void decide_exact();
  uint32_t find_slot(uint64_t shape_id) const noexcept {
    if (shape_id == 0) return HandleSet::kNone;
    return directory_.find(shape_id, [this](uint32_t slot) { return slots_[slot].shape_id(); });
  }
  // Index columns a shape's cover uses, when they are not exactly its entry's
  // column (a cover over several columns, or none): slot → columns. Most
  // shapes have one column and no entry.
  static constexpr uint16_t kNoColumn = 0xffff;  // home column of a cover without atoms
  uint16_t home_column_for(const sr_cover& cover, size_t alternative) const noexcept;
  size_t choose_alternative(uint32_t relid, const sr_cover& cover, const KeyCounts* counts,
                            const FlatMap* range_counts);
  void file_shape(Relation& r, uint32_t slot, uint16_t home_column, const sr_cover& cover, size_t alternative,
                  bool bulk);
  void unfile_columns(Relation& r, uint32_t slot, uint16_t home_column);
  void file_column(Relation& r, const IndexColumn& column, bool unfile = false);
  void count_prefix_lengths(Relation& r, uint16_t attnum, uint64_t lengths, uint16_t grams, bool unfile);
  void note_variable_keys(Relation& r) noexcept;
  void file_pending_covers();
  void* take_payload(uint32_t slot) noexcept;
  std::vector<uint32_t>::iterator scan_position(Relation& r, uint64_t shape_id);
  // candidates() of the relation in relations_[rslot].
  const std::vector<sr_shape_ref>& candidates_in(uint32_t rslot, const uint64_t* keys, size_t key_count,
                                                 bool all_shapes, const sr_range_probe* probes, size_t probe_count,
                                                 const uint16_t* key_attnums, size_t old_keys_from,
                                                 size_t old_probes_from, const sr_row_view* new_row = nullptr,
                                                 const sr_row_view* old_row = nullptr,
                                                 const StaticIndex::FrontProbe* fronts = nullptr, bool own_probes = false);
  // Whether no shape of r can be a candidate for these keys and probes: no
  // key the front filter passes, no composite key, no range that may hold,
  // and no scan, lane, complement or NULL atom to offer. Most changes are.
  // (probes: made by this router)
  bool quiet_change(const Relation& r, const uint64_t* keys, size_t key_count, const sr_range_probe* probes,
                    size_t probe_count, const uint16_t* key_attnums, const StaticIndex::FrontProbe* fronts);
  bool indexed_member(const Relation& r, uint32_t slot) const noexcept;
  // A scan shape joins its form's lane when its program can run there (its
  // columns become value-only index columns); false: it stays a scan shape.
  bool join_lane(Relation& r, uint32_t rslot, uint32_t slot, const void* blob, size_t blob_len);
  // Takes slot out of its lane; false when it is in none.
  bool leave_lane(Relation& r, uint32_t rslot, uint32_t slot);
  // Lane members for candidates_in: every member (rows == nullptr: no rows to
  // decide on), or the members the new or old row satisfies, decided.
  void lane_candidates(const Relation& r, const sr_row_view* new_row, const sr_row_view* old_row, bool all);
  void apply_lane_decisions();
  const std::vector<uint32_t>& relation_members(Relation& r);
  uint32_t allocate_slot();
  Relation& relation_for(uint32_t relid);

  FlatMap relation_slot_;  // relid → index into relations_ (never removed)
  // The last relation found: a change's gate, its route and the next change's
  // prefetch ask for the same one.
  mutable uint32_t last_relid_ = 0;
  mutable uint32_t last_rslot_ = 0;
  const uint32_t* find_relation(uint32_t relid) const noexcept {
    if (relid == last_relid_ && relid != 0) return &last_rslot_;
    const uint32_t* slot = relation_slot_.find(relid);
    if (slot != nullptr) {
      last_relid_ = relid;
      last_rslot_ = *slot;
    }
    return slot;
  }
  HandleSet directory_;    // shape id → slot (4 bytes a shape: the id is read from the slot)
  std::vector<Relation> relations_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;     // reusable now
  std::vector<uint32_t> retired_slots_;  // free once the static index no longer refers to them
  size_t relations_with_shapes_ = 0;
  ShapeIndex index_;
  RangeIndex ranges_;
  CompositeIndex composites_;
  ColumnLists lists_;
  ShapeStore store_;
  // The shell's state of the shapes it has evaluated (few of a large set):
  // slot + 1 → index into payloads_.
  struct PayloadEntry {
    void* payload;
    uint32_t slot;
  };
  FlatMap payload_index_;
  std::vector<PayloadEntry> payloads_;
  // The index columns of shapes whose cover does not lie on their entry's
  // column alone (a cover over several columns, or none): by slot, 1 + the
  // offset in cover_column_words_ of a list: its length, how many shapes use
  // it, then its packed columns (pack_column); 0: none. Shapes of one form
  // mostly file the same columns, so a list is kept once (cover_list_by_hash_:
  // hash of its columns → offset + 1). (By slot, not in a hash map: 4 bytes a
  // slot instead of 16 a shape, and a load, filling slots in order, writes it
  // in order instead of missing the cache once a shape.)
  std::vector<uint32_t> cover_column_at_;
  std::vector<uint32_t> cover_column_words_;
  FlatMap cover_list_by_hash_;
  std::vector<uint32_t> cover_words_scratch_;
  size_t dead_cover_column_words_ = 0;
  static uint32_t pack_column(const IndexColumn& c) noexcept {
    return uint32_t{c.attnum} | uint32_t{c.tag} << 16 | (c.shapes > 0 ? 1u : 0u) << 24 | (c.range_shapes > 0 ? 1u : 0u) << 25 |
           (c.null_shapes > 0 ? 1u : 0u) << 26 | (c.complement_shapes > 0 ? 1u : 0u) << 27 |
           (c.prefix_shapes > 0 ? 1u : 0u) << 28;
  }
  // (A prefix column's word is followed by two words of its prefix_lengths and
  // one of its substring_grams.)
  static IndexColumn unpack_column(uint32_t w) noexcept {
    return IndexColumn{static_cast<uint16_t>(w & 0xffff), static_cast<uint8_t>(w >> 16), 0, (w >> 24) & 1, (w >> 25) & 1,
                       (w >> 26) & 1, (w >> 27) & 1, (w >> 28) & 1, 0};
  }
  void put_cover_columns(uint32_t slot, const std::vector<IndexColumn>& columns);
  bool take_cover_columns(uint32_t slot, std::vector<IndexColumn>& out);
  // Shapes with several alternatives loaded in bulk: filed at end_bulk_load,
  // when every key's shape count is known.
  PendingCovers pending_;
  std::vector<uint32_t> posting_scratch_;
  // file_shape's keys, columns and gram keys of one shape, kept between calls
  // (a load files a million shapes; allocating three vectors each cost ~300
  // instructions a shape).
  std::vector<uint64_t> file_keys_;
  std::vector<IndexColumn> file_columns_;
  struct GramToFile {
    uint64_t key, word, len;
  };
  std::vector<GramToFile> file_grams_;
  std::vector<IndexColumn> columns_scratch_;
  bool bulk_ = false;
  // The integer keys filed while loading in bulk, up to as many a relation as
  // its sieve may hold: each relation's sieve is sized for its own at the end.
  struct LoadedKey {
    uint64_t key;
    uint32_t rslot;
    uint16_t attnum;
    uint8_t tag;
  };
  std::vector<LoadedKey> bulk_sieve_;
  void sieve_keys(Relation& r, const sr_index_atom* atoms, size_t count) noexcept;
  uint64_t highest_shape_id_ = 0;  // of every shape ever added: a higher id is not in the directory
  sr_counters counters_{};
  // scratch for candidates()
  std::vector<uint32_t> hits_;
  std::vector<uint32_t> passing_;  // positions of the keys the index's front filter passes
  EpochKeySet seen_grams_;  // the substring gram keys looked up in this call
  GramFilter grams_;        // every filed substring atom's key, in front of the index
  // Exact shapes' atoms that hold (slot | kProofOld for the old row's).
  static constexpr uint32_t kProofOld = 0x80000000u;
  // Counts of pending NULL and complement atoms while loading (in the map of range counts).
  static uint64_t list_count_key(uint32_t relid, uint16_t attnum, uint8_t kind) noexcept {
    return ((uint64_t{relid} << 16 | attnum) + 1) | uint64_t{kind} << 56;
  }
  std::vector<uint32_t> proofs_;
  // Form lanes: slot + 1 → index of its lane in its relation's lanes;
  // (relation slot, form) → index of the form's lane there.
  FlatMap lane_of_;
  FlatMap lane_by_form_;
  static uint64_t lane_form_key(uint32_t rslot, int64_t form) noexcept {
    return (static_cast<uint64_t>(form) << 32 | rslot) + 1;
  }
  size_t lane_shapes_ = 0, lane_forms_ = 0;     // in every relation's lanes
  std::vector<FormLane::Column> lane_columns_;  // join_lane's scratch
  std::vector<int16_t> lane_attnums_[2];        // join_lane's scratch
  // A lane's members' truth on the new and the old row (room for the largest lane).
  std::vector<uint8_t> lane_truth_[2];
  // Members a lane decided this call: slot, and SR_EXACT_NEW/OLD << 32.
  std::vector<uint64_t> lane_decisions_;
  std::vector<uint64_t> exact_;  // bitmap over slots: shapes the index decides
  std::vector<uint64_t> always_;  // bitmap over slots: whole-table shapes (in their relation's scan list)
  bool always(uint32_t slot) const noexcept {
    return slot / 64 < always_.size() && ((always_[slot / 64] >> (slot % 64)) & 1);
  }
  std::vector<sr_shape_ref> result_;
  ChangeKeys change_keys_;  // route()'s
  // The keys of the last two prefetch_rows() calls, for route() to reuse.
  struct PrefetchedKeys {
    uint64_t token = 0;  // 0: none kept
    uint32_t relid = 0;
    uint64_t epoch = 0;    // columns_epoch_ the keys were made at
    bool partial = false;  // the plain columns' keys only: route() adds the rest
    ChangeKeys keys;
    // keys' front filter probes, made by the filter of this generation
    std::vector<StaticIndex::FrontProbe> fronts;
    uint64_t front_generation = 0;
  };
  // The front probes of change_keys_, when route() made them (from a read-ahead).
  std::vector<StaticIndex::FrontProbe> route_fronts_;
  // Reads ahead the front filter words of keys [from, to) of ChangeKeys, into fronts[from, to).
  void prefetch_fronts(const ChangeKeys& keys, size_t from, size_t to, std::vector<StaticIndex::FrontProbe>& fronts);
  PrefetchedKeys prefetched_[2];
  // Unique across the process's routers (a router made after another was
  // destroyed never repeats one of its epochs).
  static uint64_t next_columns_epoch() noexcept;
  uint64_t columns_epoch_ = next_columns_epoch();
  int prefetched_next_ = 0;
};

}  // namespace shape_router
