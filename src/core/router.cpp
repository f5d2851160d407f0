// Router: relation gate, per-relation scan shapes, the routing index, and the C
// API that the PostgreSQL shell calls. No PostgreSQL header may be included here.
#include "shape_router/router.hpp"
#include "shape_router/shape_spec.hpp"
#include "shape_router/range_index.hpp"
#include "shape_router/guarded.hpp"
#include "shape_router/huge_pages.hpp"

// Inlined: a key is hashed on every decoded change, and the library call costs
// more than the hash of 8 bytes. The values are the library's own.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace shape_router {
uint32_t Router::allocate_slot() {
  if (!free_slots_.empty()) {
    uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  if (slots_.size() >= 0x7fffffffu) throw std::invalid_argument("too many shapes");
  slots_.emplace_back();
  return static_cast<uint32_t>(slots_.size() - 1);
}

Router::Relation& Router::relation_for(uint32_t relid) {
  if (const uint32_t* found = find_relation(relid)) return relations_[*found];
  relations_.push_back(Relation{});
  relations_.back().relid = relid;
  relation_slot_.put(relid, static_cast<uint32_t>(relations_.size() - 1));
  try {
    relations_.back().sieve.reset(ValueSieve::kMinValues);
  } catch (const std::bad_alloc&) {
    // no sieve: its keys are always made
  }
  return relations_.back();
}

// The values of the integer keys a shape is filed under, for its relation's
// sieve: equality atoms and composites' keys (of a tag keyed as an integer).
// (Not called once a bulk load has filed more than the sieve may hold.)
void Router::sieve_keys(Relation& r, const sr_index_atom* atoms, size_t count) noexcept {
  for (size_t i = 0; i < count; i++) {
    const sr_index_atom& atom = atoms[i];
    if ((atom.kind != SR_ATOM_EQUAL && atom.kind != SR_ATOM_COMPOSITE) || !tag_keyed_as_int(atom.tag)) continue;
    if (!bulk_) {
      r.sieve.add(ValueSieve::hash(int_value_of_key(r.relid, atom.attnum, atom.tag, atom.key), atom.attnum));
      continue;
    }
    // (undone at the end, for a sieve that can hold them all)
    if (++r.sieve_loading > ValueSieve::kMaxValues) continue;
    try {
      bulk_sieve_.push_back(LoadedKey{atom.key, static_cast<uint32_t>(&r - relations_.data()), atom.attnum, atom.tag});
    } catch (const std::bad_alloc&) {
      r.sieve_loading = SIZE_MAX;  // (disabled at the end)
    }
  }
}

std::vector<uint32_t>::iterator Router::scan_position(Relation& r, uint64_t shape_id) {
  return std::lower_bound(r.scan.begin(), r.scan.end(), shape_id,
                          [&](uint32_t slot, uint64_t id) { return slots_[slot].shape_id() < id; });
}

void* Router::add_shape(uint64_t shape_id, uint32_t relid, void* payload, int index_attnum, uint8_t index_tag,
                        const uint64_t* keys, size_t key_count, const void* blob, size_t blob_len,
                        size_t own_offset, size_t own_len) {
  if (index_attnum >= INT16_MAX) throw std::invalid_argument("column number");
  if (index_attnum < 0) return add_shape(shape_id, relid, payload, sr_cover{}, blob, blob_len, own_offset, own_len);
  // One alternative: every key on the one column (no key: the shape never matches).
  std::vector<sr_index_atom> atoms(key_count);
  for (size_t i = 0; i < key_count; i++)
    atoms[i] = sr_index_atom{keys[i], 0, static_cast<uint16_t>(index_attnum), index_tag, SR_ATOM_EQUAL, 0, 0, 0};
  const uint32_t size = static_cast<uint32_t>(key_count);
  return add_shape(shape_id, relid, payload, sr_cover{atoms.data(), &size, 1, 0}, blob, blob_len, own_offset, own_len);
}

// The column of the alternative's first equality atom (else of its first atom).
uint16_t Router::home_column_for(const sr_cover& cover, size_t alternative) const noexcept {
  size_t first = 0;
  for (size_t a = 0; a < alternative; a++) first += cover.alternative_sizes[a];
  const uint32_t count = cover.alternative_sizes[alternative];
  if (count == 0) return kNoColumn;
  for (uint32_t i = 0; i < count; i++)
    if (cover.atoms[first + i].kind == SR_ATOM_EQUAL) return static_cast<uint16_t>(cover.atoms[first + i].attnum + 1);
  return static_cast<uint16_t>(cover.atoms[first].attnum + 1);
}

namespace {

// Two results on one virtual column (two expressions whose texts hash to the
// same number): a key or probe there may be the other expression's, so no hit
// proves an atom on it. The programs decide such rows.
bool shares_virtual_column(const sr_row_view* row) noexcept {
  if (row == nullptr) return false;
  for (size_t i = 1; i < row->expression_count; i++)
    for (size_t j = 0; j < i; j++)
      if (row->expressions[i].attnum == row->expressions[j].attnum) return true;
  return false;
}

}  // namespace

// A shape the index can decide: filed under an exact alternative whose equality
// atoms all lie on the home column (candidates() checks a key hit against the
// shape's own keys, which carry no column) and have injective keys.
bool Router::exact_eligible(const sr_cover& cover, size_t alternative, uint16_t home_column) const noexcept {
  if (alternative >= 32 || ((cover.exact_alternatives >> alternative) & 1) == 0) return false;
  size_t first = 0;
  for (size_t a = 0; a < alternative; a++) first += cover.alternative_sizes[a];
  for (uint32_t i = 0; i < cover.alternative_sizes[alternative]; i++) {
    const sr_index_atom& atom = cover.atoms[first + i];
    if (atom.kind == SR_ATOM_EQUAL && (atom.attnum + 1 != home_column || !tag_key_exact(atom.tag))) return false;
    if ((atom.kind == SR_ATOM_COMPOSITE || atom.kind == SR_ATOM_EXCLUDED) && !tag_key_exact(atom.tag)) return false;
    if (atom.kind == SR_ATOM_PREFIX || atom.kind == SR_ATOM_ELEMENT || atom.kind == SR_ATOM_SUBSTRING)
      return false;  // the program checks
  }
  return true;
}

// Room in the bitmap for slot (file_shape grows it before filing anything).
void Router::reserve_exact(uint32_t slot) {
  if (slot / 64 >= exact_.size()) exact_.resize(std::max<size_t>(slot / 64 + 1, exact_.size() * 2), 0);
}

// Never allocates: setting a bit needs reserve_exact first; a bit beyond the bitmap is clear.
void Router::set_exact(Relation& r, uint32_t slot, bool on) noexcept {
  if (slot / 64 >= exact_.size() || exact(slot) == on) return;
  exact_[slot / 64] ^= uint64_t{1} << (slot % 64);
  if (on)
    r.exact_shapes++;
  else
    r.exact_shapes--;
}

// The alternative whose keys have the fewest shapes (counts: from the map,
// else from the index), then the one with fewer atoms, then the first.
size_t Router::choose_alternative(uint32_t relid, const sr_cover& cover, const KeyCounts* counts,
                                  const FlatMap* range_counts) {
  size_t best = 0, best_cost = SIZE_MAX, best_atoms = SIZE_MAX;
  int best_rank = 6;
  const sr_index_atom* atom = cover.atoms;
  // Ranges on a column: filed, plus (loading) pending.
  auto column_ranges = [&](uint16_t attnum) {
    const RangeColumn* column = ranges_.find(relid, attnum);
    const uint32_t* pending =
        range_counts == nullptr ? nullptr : range_counts->find((uint64_t{relid} << 16 | attnum) + 1);
    return (column == nullptr ? 0 : column->entries()) + (pending == nullptr ? 0 : *pending);
  };
  // NULL and complement atoms on a column: filed, plus (loading) pending.
  auto column_lists = [&](uint16_t attnum, uint8_t kind) {
    const uint32_t* pending =
        range_counts == nullptr ? nullptr : range_counts->find(list_count_key(relid, attnum, kind));
    return (kind == SR_ATOM_NULL ? lists_.null_count(relid, attnum) : lists_.complement_count(relid, attnum)) +
           (pending == nullptr ? 0 : *pending);
  };
  for (size_t a = 0; a < cover.alternative_count; a++) {
    size_t cost = 0;
    for (uint32_t i = 0; i < cover.alternative_sizes[a]; i++, atom++) {
      if (atom->kind == SR_ATOM_EXCLUDED) continue;  // part of the complement before it
      if (atom->kind == SR_ATOM_ALWAYS) {
        cost = SIZE_MAX / 4;  // every change: only when nothing else is offered (set, not added: no wrap)
        continue;
      }
      if (atom->kind == SR_ATOM_NULL) {
        // Its shapes are candidates for the rows with a NULL there, a value of its own.
        cost += 1 + column_lists(atom->attnum, SR_ATOM_NULL);
        continue;
      }
      if (atom->kind == SR_ATOM_COMPLEMENT) {
        // Candidates for almost every row: after any key or range.
        cost += 64 + column_lists(atom->attnum, SR_ATOM_COMPLEMENT);
        continue;
      }
      if (atom->kind == SR_ATOM_COMPOSITE) {
        // Its candidates are those of the key, and of a range on the column,
        // whose threshold the row passes: a quarter of the fewer of the two,
        // plus two for a structure of its own, so that a key no other shape
        // has stays a plain key, and from the second (loading: counted with
        // itself) or third (while decoding) shape on a key composites win.
        size_t shared = 0;
        if (counts != nullptr) {
          shared = counts->count(ShapeIndex::stored_key(atom->key));
        } else {
          posting_scratch_.clear();
          index_.lookup(atom->key, posting_scratch_);
          shared = posting_scratch_.size() + composites_.shapes_under(relid, atom->key);
        }
        cost += 2 + std::min(shared, column_ranges(atom->range_attnum)) / 4;
      } else if (atom->kind == SR_ATOM_RANGE) {
        // A range's shapes are not known per value: count half its column's
        // ranges (what a probe at a typical value meets), and at least one more
        // than an equality key would, so that equal counts favour equality.
        cost += 1 + column_ranges(atom->attnum) / 2;
      } else if (counts != nullptr) {
        cost += counts->count(ShapeIndex::stored_key(atom->key));
      } else {
        posting_scratch_.clear();
        index_.lookup(atom->key, posting_scratch_);
        cost += posting_scratch_.size() + composites_.shapes_under(relid, atom->key);
      }
    }
    // Ties: composite before equality before range (the narrower kind), then fewer atoms.
    int rank = 0;
    for (const sr_index_atom* x = atom - cover.alternative_sizes[a]; x < atom; x++)
      rank = std::max(rank, x->kind == SR_ATOM_ALWAYS       ? 5
                            : x->kind == SR_ATOM_COMPLEMENT ? 4
                            : x->kind == SR_ATOM_NULL       ? 3
                            : x->kind == SR_ATOM_RANGE || x->kind == SR_ATOM_PREFIX ||
                                      x->kind == SR_ATOM_SUBSTRING
                                  ? 2
                            : x->kind == SR_ATOM_EQUAL      ? 1
                                                            : 0);
    if (cost < best_cost ||
        (cost == best_cost && (rank < best_rank || (rank == best_rank && cover.alternative_sizes[a] < best_atoms)))) {
      best = a;
      best_cost = cost;
      best_rank = rank;
      best_atoms = cover.alternative_sizes[a];
    }
  }
  return best;
}

// Files the shape in slot under one alternative of its cover: its equality keys
// in the index, its ranges in their columns, its columns in the relation's.
void Router::file_shape(Relation& r, uint32_t slot, uint16_t home_column, const sr_cover& cover,
                        size_t alternative, bool bulk) {
  size_t first = 0;
  for (size_t a = 0; a < alternative; a++) first += cover.alternative_sizes[a];
  const sr_index_atom* atoms = cover.atoms + first;
  const size_t count = cover.alternative_sizes[alternative];
  const bool exact = exact_eligible(cover, alternative, home_column);
  if (exact) reserve_exact(slot);
  if (count == 1 && atoms[0].kind == SR_ATOM_EQUAL && atoms[0].attnum + 1 == home_column) {
    // Most shapes (col = c): one key on the entry's column, nothing allocated.
    index_.add(slot, &atoms[0].key, 1, bulk);
    file_column(r, IndexColumn{atoms[0].attnum, atoms[0].tag, 0, 1, 0});
    set_exact(r, slot, exact);
    if (r.sieve_loading <= ValueSieve::kMaxValues) sieve_keys(r, atoms, 1);
    return;
  }
  std::vector<uint64_t>& keys = file_keys_;
  std::vector<IndexColumn>& columns = file_columns_;
  keys.clear();
  columns.clear();
  auto use_column = [&](uint16_t attnum, uint8_t tag, uint8_t kind) {
    auto it = std::find_if(columns.begin(), columns.end(), [&](const IndexColumn& c) { return c.attnum == attnum; });
    if (it == columns.end()) it = columns.insert(columns.end(), IndexColumn{attnum, tag, 0, 0, 0});
    (kind == SR_ATOM_RANGE        ? it->range_shapes
     : kind == SR_ATOM_NULL       ? it->null_shapes
     : kind == SR_ATOM_COMPLEMENT ? it->complement_shapes
     : kind == SR_ATOM_PREFIX || kind == SR_ATOM_SUBSTRING ? it->prefix_shapes
                                                           : it->shapes) = 1;
    return it;
  };
  bool composite = false, always = false;
  for (size_t i = 0; i < count; i++) {
    if (atoms[i].kind == SR_ATOM_EXCLUDED) continue;
    if (atoms[i].kind == SR_ATOM_ALWAYS) {
      always = true;
      continue;
    }
    if (atoms[i].kind == SR_ATOM_EQUAL || atoms[i].kind == SR_ATOM_PREFIX || atoms[i].kind == SR_ATOM_ELEMENT ||
        atoms[i].kind == SR_ATOM_SUBSTRING)
      keys.push_back(atoms[i].key);
    auto column = use_column(atoms[i].attnum, atoms[i].tag,
                             atoms[i].kind == SR_ATOM_COMPOSITE || atoms[i].kind == SR_ATOM_ELEMENT ? SR_ATOM_EQUAL
                                                                                                    : atoms[i].kind);
    if (atoms[i].kind == SR_ATOM_PREFIX) column->prefix_lengths |= uint64_t{1} << (atoms[i].upper - 1);
    if (atoms[i].kind == SR_ATOM_SUBSTRING)
      column->substring_grams |= static_cast<uint16_t>(1u << ((atoms[i].lower != 0 ? 8 : 0) + atoms[i].upper - 1));
    if (atoms[i].kind == SR_ATOM_COMPOSITE) {  // the row's key on attnum, its order key on range_attnum
      use_column(atoms[i].range_attnum, atoms[i].range_tag, SR_ATOM_RANGE);
      composite = true;
    }
  }
  if (always) {
    // Holds for every row: filed with the scan shapes (every change), decided
    // by the index. Its other atoms, if any, add nothing.
    keys.clear();
    columns.clear();
  }
  // What filing the columns at the end allocates, first: past the try below nothing may throw.
  r.index_columns.reserve(r.index_columns.size() + columns.size());
  for (const IndexColumn& column : columns)
    if (column.prefix_shapes > 0 &&
        std::none_of(r.prefix_counts.begin(), r.prefix_counts.end(), [&](const auto& c) { return c.first == column.attnum; }))
      r.prefix_counts.emplace_back(column.attnum, std::vector<uint32_t>(SR_PREFIX_MAX + 16, 0));
  const bool home_only = columns.size() == 1 && columns[0].range_shapes == 0 && columns[0].null_shapes == 0 &&
                           columns[0].complement_shapes == 0 && columns[0].prefix_shapes == 0 &&
                           columns[0].attnum + 1 == home_column;
  if (!home_only) put_cover_columns(slot, columns);
  bool always_filed = false;
  // this shape's distinct gram keys, with their words, once each in grams_
  std::vector<GramToFile>& grams = file_grams_;
  grams.clear();
  bool words_share_a_key = false;  // two of its grams stored as one key (0 and 1 are)
  if (!always)
    for (size_t i = 0; i < count; i++) {
      if (atoms[i].kind != SR_ATOM_SUBSTRING) continue;
      const uint64_t key = ShapeIndex::stored_key(atoms[i].key);
      const uint64_t word =
          gram_word_of_key(r.relid, atoms[i].attnum, atoms[i].lower != 0, atoms[i].upper, atoms[i].key);
      auto same = std::find_if(grams.begin(), grams.end(), [&](const auto& g) { return g.key == key; });
      if (same == grams.end())
        grams.push_back(GramToFile{key, word, atoms[i].upper});
      else if (same->word != word)
        words_share_a_key = true;
    }
  size_t grams_added = 0;
  try {
    index_.add(slot, keys.data(), keys.size(), bulk);
    for (; grams_added < grams.size(); grams_added++)
      grams_.add(grams[grams_added].key, grams[grams_added].word, grams[grams_added].len);
    if (words_share_a_key) grams_.pass_every_word();
    for (size_t i = 0; i < count && !always; i++) {
      if (atoms[i].kind == SR_ATOM_RANGE) ranges_.column(r.relid, atoms[i].attnum).add(slot, atoms[i].key, atoms[i].upper);
      if (atoms[i].kind == SR_ATOM_COMPOSITE) {
        composites_.add(slot, r.relid, atoms[i]);
        r.composite_columns |= uint64_t{1} << (atoms[i].attnum % 64);
      }
      if (atoms[i].kind == SR_ATOM_NULL) lists_.add_null(r.relid, atoms[i].attnum, slot);
      if (atoms[i].kind == SR_ATOM_ELEMENT) r.element_columns |= uint64_t{1} << (atoms[i].attnum % 64);
      if (atoms[i].kind == SR_ATOM_COMPLEMENT) {
        std::vector<uint64_t> excluded;
        for (size_t e = i + 1; e < count && atoms[e].kind == SR_ATOM_EXCLUDED; e++) excluded.push_back(atoms[e].key);
        lists_.add_complement(r.relid, atoms[i].attnum, slot, excluded.data(), excluded.size());
        r.complement_columns |= uint64_t{1} << (atoms[i].attnum % 64);
        // A complement list needs every value's key (to find the shapes whose
        // constants are not the value): no value may be sieved out.
        r.sieve.disable();
      }
    }
    if (!always && r.sieve_loading <= ValueSieve::kMaxValues) sieve_keys(r, atoms, count);
    if (always) {
      if (slot / 64 >= always_.size()) always_.resize(std::max<size_t>(slot / 64 + 1, always_.size() * 2), 0);
      r.scan.insert(scan_position(r, slots_[slot].shape_id()), slot);
      always_[slot / 64] |= uint64_t{1} << (slot % 64);
      always_filed = true;
      r.always_shapes++;
    }
  } catch (...) {
    for (size_t g = 0; g < grams_added; g++) grams_.remove(grams[g].key);
    if (always_filed) {
      r.scan.erase(scan_position(r, slots_[slot].shape_id()));
      always_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
      r.always_shapes--;
    }
    for (const IndexColumn& column : columns) {
      if (RangeColumn* ranges = column.range_shapes > 0 ? ranges_.find(r.relid, column.attnum) : nullptr)
        ranges->drop(slot);
      if (column.null_shapes > 0 || column.complement_shapes > 0) lists_.drop(r.relid, column.attnum, slot);
    }
    composites_.drop(slot);
    if (index_.contains_slot(slot)) index_.drop(slot);
    std::vector<IndexColumn> ignored;
    if (!home_only) take_cover_columns(slot, ignored);
    throw;
  }
  for (const IndexColumn& column : columns) {  // allocates nothing (reserved above)
    file_column(r, column);
    if (column.prefix_shapes > 0)
      count_prefix_lengths(r, column.attnum, column.prefix_lengths, column.substring_grams, false);
  }
  if (composite) r.composite_shapes++;
  set_exact(r, slot, exact);
}

// Adds (or, with unfile, removes) one shape's use of a column to the relation's
// index columns; a column no shape uses any more is dropped.
void Router::file_column(Relation& r, const IndexColumn& column, bool unfile) {
  auto it = std::find_if(r.index_columns.begin(), r.index_columns.end(),
                         [&](const IndexColumn& c) { return c.attnum == column.attnum; });
  // A new epoch (row plans made again, prefetched keys dropped) only when the
  // columns or what a plan reads of them change: most shapes a load files only
  // count on columns other shapes already use.
  const bool crossing = it == r.index_columns.end() || it->crosses_zero(column, unfile);
  if (unfile) {
    if (it == r.index_columns.end()) return;
    it->shapes -= column.shapes;
    it->range_shapes -= column.range_shapes;
    it->null_shapes -= column.null_shapes;
    it->complement_shapes -= column.complement_shapes;
    it->prefix_shapes -= column.prefix_shapes;
    it->lane_shapes -= column.lane_shapes;
    if (it->unused())
      r.index_columns.erase(it);
    else if (!crossing)
      return;
  } else if (it == r.index_columns.end()) {
    r.index_columns.push_back(column);
    r.index_columns.back().prefix_lengths = 0;  // count_prefix_lengths sets them
    r.index_columns.back().substring_grams = 0;
  } else {
    it->shapes += column.shapes;
    it->range_shapes += column.range_shapes;
    it->null_shapes += column.null_shapes;
    it->complement_shapes += column.complement_shapes;
    it->prefix_shapes += column.prefix_shapes;
    it->lane_shapes += column.lane_shapes;
    if (!crossing) return;
  }
  note_variable_keys(r);
}

uint64_t Router::next_columns_epoch() noexcept {
  static std::atomic<uint64_t> epochs{0};
  return epochs.fetch_add(1, std::memory_order_relaxed) + 1;
}

void Router::note_variable_keys(Relation& r) noexcept {
  columns_epoch_ = next_columns_epoch();
  r.variable_keys = std::any_of(r.index_columns.begin(), r.index_columns.end(), [](const IndexColumn& c) {
    return (c.tag & SR_TAG_ELEMENT_FLAG) != 0 || c.substring_grams != 0 || c.attnum >= SR_VIRTUAL_ATTNUM_BASE;
  });
}

// One shape's prefix lengths and substring grams on a column, added or
// removed: the column's prefix_lengths has bit L - 1 while some shape has a
// prefix of L bytes, and its substring_grams a bit while some shape has it.
void Router::count_prefix_lengths(Relation& r, uint16_t attnum, uint64_t lengths, uint16_t grams, bool unfile) {
  auto counts = std::find_if(r.prefix_counts.begin(), r.prefix_counts.end(),
                             [&](const auto& c) { return c.first == attnum; });
  if (counts == r.prefix_counts.end()) {
    if (unfile) return;
    r.prefix_counts.emplace_back(attnum, std::vector<uint32_t>(SR_PREFIX_MAX + 16, 0));
    counts = r.prefix_counts.end() - 1;
  }
  uint64_t mask = 0;
  for (int l = 0; l < SR_PREFIX_MAX; l++) {
    if ((lengths >> l) & 1) counts->second[l] += unfile ? -1 : 1;
    if (counts->second[l] > 0) mask |= uint64_t{1} << l;
  }
  uint16_t gram_mask = 0;
  for (int g = 0; g < 16; g++) {
    if ((grams >> g) & 1) counts->second[SR_PREFIX_MAX + g] += unfile ? -1 : 1;
    if (counts->second[SR_PREFIX_MAX + g] > 0) gram_mask |= static_cast<uint16_t>(1u << g);
  }
  for (IndexColumn& c : r.index_columns)
    if (c.attnum == attnum) {
      c.prefix_lengths = mask;
      c.substring_grams = gram_mask;
    }
  note_variable_keys(r);
  if (mask == 0 && gram_mask == 0) r.prefix_counts.erase(counts);
}

namespace {

uint64_t hash_words(const uint32_t* words, size_t n) noexcept {
  uint64_t h = kGoldenGamma;
  for (size_t i = 0; i < n; i++) h = mix64(h ^ words[i]);
  return h | 1;  // FlatMap keys are not 0
}

}  // namespace

void Router::put_cover_columns(uint32_t slot, const std::vector<IndexColumn>& columns) {
  // Every allocation first: a bad_alloc changes nothing (and take_cover_columns,
  // on a drop, then needs none).
  // The words: each column's, a prefix column's with its lengths and grams.
  std::vector<uint32_t>& words = cover_words_scratch_;
  words.clear();
  for (const IndexColumn& c : columns) {
    words.push_back(pack_column(c));
    if (c.prefix_shapes == 0) continue;
    words.push_back(static_cast<uint32_t>(c.prefix_lengths));
    words.push_back(static_cast<uint32_t>(c.prefix_lengths >> 32));
    words.push_back(c.substring_grams);
  }
  if (columns_scratch_.capacity() < columns.size()) columns_scratch_.reserve(columns.size());
  if (slot >= cover_column_at_.size()) {
    // Room for the slots reserved (a load's estimate): a saving, not a need.
    try {
      reserve_on_huge_pages(cover_column_at_, std::max<size_t>(slot + 1, slots_.capacity()));
    } catch (const std::bad_alloc&) {
    } catch (const std::length_error&) {
    }
    cover_column_at_.resize(std::max<size_t>(slot + 1, slots_.size()), 0);
  }
  // Most shapes of a form file the same columns: a list is kept once, with a count of its shapes.
  const uint64_t hash = hash_words(words.data(), words.size());
  const uint32_t* found = cover_list_by_hash_.find(hash);
  if (found != nullptr) {
    const uint32_t at = *found - 1;
    if (cover_column_words_[at] == words.size() &&
        std::equal(words.begin(), words.end(), cover_column_words_.begin() + at + 2)) {
      cover_column_words_[at + 1]++;
      cover_column_at_[slot] = *found;
      return;
    }
  }
  const size_t needed = cover_column_words_.size() + 2 + words.size();
  if (cover_column_words_.capacity() < needed)
    cover_column_words_.reserve(std::max(needed, cover_column_words_.capacity() * 2));
  if (found == nullptr) cover_list_by_hash_.reserve(cover_list_by_hash_.size() + 1);
  const uint32_t at = static_cast<uint32_t>(cover_column_words_.size());
  cover_column_words_.push_back(static_cast<uint32_t>(words.size()));
  cover_column_words_.push_back(1);  // shapes using the list
  cover_column_words_.insert(cover_column_words_.end(), words.begin(), words.end());
  if (found == nullptr) cover_list_by_hash_.put(hash, at + 1);  // (a colliding list stays unshared)
  cover_column_at_[slot] = at + 1;
}

// Moves the slot's columns into out (false: it has none), and compacts the
// words once most of them belong to lists no shape uses.
bool Router::take_cover_columns(uint32_t slot, std::vector<IndexColumn>& out) {
  out.clear();
  if (slot >= cover_column_at_.size() || cover_column_at_[slot] == 0) return false;
  const uint32_t offset = cover_column_at_[slot] - 1, count = cover_column_words_[offset];
  const uint32_t* w = cover_column_words_.data() + offset + 2;
  for (uint32_t i = 0; i < count; i++) {
    out.push_back(unpack_column(w[i]));
    if (out.back().prefix_shapes == 0) continue;
    out.back().prefix_lengths = w[i + 1] | uint64_t{w[i + 2]} << 32;
    out.back().substring_grams = static_cast<uint16_t>(w[i + 3]);
    i += 3;
  }
  cover_column_at_[slot] = 0;
  if (--cover_column_words_[offset + 1] > 0) return true;
  const uint64_t hash = hash_words(w, count);
  const uint32_t* listed = cover_list_by_hash_.find(hash);
  if (listed != nullptr && *listed == offset + 1) cover_list_by_hash_.erase(hash);
  dead_cover_column_words_ += 2 + count;
  if (dead_cover_column_words_ >= std::max<size_t>(4096, cover_column_words_.size() / 2)) try {
    // The live lists, in the same order, and their map: made before anything changes.
    std::vector<uint32_t> words;
    words.reserve(cover_column_words_.size() - dead_cover_column_words_);
    size_t lists = 0;
    for (size_t at = 0; at < cover_column_words_.size(); at += 2 + cover_column_words_[at])
      if (cover_column_words_[at + 1] > 0) {
        words.insert(words.end(), cover_column_words_.begin() + at,
                     cover_column_words_.begin() + at + 2 + cover_column_words_[at]);
        lists++;
      }
    FlatMap by_hash;
    by_hash.reserve(lists);
    for (size_t at = 0; at < words.size(); at += 2 + words[at]) {
      const uint64_t h = hash_words(words.data() + at + 2, words[at]);
      if (by_hash.find(h) == nullptr) by_hash.put(h, static_cast<uint32_t>(at + 1));
    }
    // Copied (the only steps that may throw): each live list's old count of
    // shapes becomes its new offset, which the slots then follow.
    uint32_t next = 0;
    for (size_t at = 0; at < cover_column_words_.size(); at += 2 + cover_column_words_[at])
      if (cover_column_words_[at + 1] > 0) {
        cover_column_words_[at + 1] = next;
        next += 2 + cover_column_words_[at];
      }
    for (uint32_t& at : cover_column_at_)
      if (at != 0) at = cover_column_words_[at] + 1;
    cover_column_words_.swap(words);
    cover_list_by_hash_ = std::move(by_hash);
    dead_cover_column_words_ = 0;
  } catch (const std::bad_alloc&) {
    // compacted on a later drop
  }
  return true;
}

void Router::unfile_columns(Relation& r, uint32_t slot, uint16_t home_column) {
  if (!take_cover_columns(slot, columns_scratch_)) {
    file_column(r, IndexColumn{static_cast<uint16_t>(home_column - 1), 0, 0, 1, 0}, true);
    return;
  }
  for (const IndexColumn& column : columns_scratch_) {
    if (RangeColumn* ranges = column.range_shapes > 0 ? ranges_.find(r.relid, column.attnum) : nullptr)
      ranges->drop(slot);
    if (column.null_shapes > 0 || column.complement_shapes > 0) lists_.drop(r.relid, column.attnum, slot);
    if (column.prefix_shapes > 0)
      count_prefix_lengths(r, column.attnum, column.prefix_lengths, column.substring_grams, true);
    file_column(r, column, true);
  }
  if (always(slot)) {
    auto it = scan_position(r, slots_[slot].shape_id());
    if (it != r.scan.end() && *it == slot) r.scan.erase(it);
    always_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
    r.always_shapes--;
  }
  if (composites_.has_slot(slot)) {
    composites_.drop(slot);
    r.composite_shapes--;
  }
}

void* Router::add_shape(uint64_t shape_id, uint32_t relid, void* payload, const sr_cover& cover, const void* blob,
                        size_t blob_len, size_t own_offset, size_t own_len) {
  if (shape_id == 0 || relid == 0) throw std::invalid_argument("shape id and relation must be non-zero");
  if (cover.alternative_count > SR_COVER_MAX_ALTERNATIVES) throw std::invalid_argument("too many cover alternatives");
  size_t atom_count = 0;
  for (size_t a = 0; a < cover.alternative_count; a++) atom_count += cover.alternative_sizes[a];
  for (size_t i = 0; i < atom_count; i++) {
    const sr_index_atom& atom = cover.atoms[i];
    if (atom.attnum >= INT16_MAX) throw std::invalid_argument("column number");
    if (atom.kind > SR_ATOM_SUBSTRING) throw std::invalid_argument("atom kind");
    if ((atom.kind == SR_ATOM_ELEMENT) != ((atom.tag & SR_TAG_ELEMENT_FLAG) != 0))
      throw std::invalid_argument("element tag");
    if (atom.kind == SR_ATOM_PREFIX && (atom.upper < 1 || atom.upper > SR_PREFIX_MAX))
      throw std::invalid_argument("prefix length");
    if (atom.kind == SR_ATOM_SUBSTRING &&
        (atom.upper < 1 || atom.upper > SR_SUBSTRING_GRAM || atom.lower > 1 || atom.tag != SR_TAG_TEXT))
      throw std::invalid_argument("substring gram");
    if ((atom.kind == SR_ATOM_RANGE && atom.key > atom.upper) ||
        (atom.kind == SR_ATOM_COMPOSITE &&
         (atom.range_attnum >= INT16_MAX || atom.range_attnum == atom.attnum || atom.lower > atom.upper)))
      throw std::invalid_argument("range bounds");
  }
  // A complement's excluded keys follow it, in its alternative; on its column.
  for (size_t a = 0, first = 0; a < cover.alternative_count; first += cover.alternative_sizes[a], a++) {
    for (size_t i = first, end = first + cover.alternative_sizes[a]; i < end; i++) {
      const sr_index_atom& atom = cover.atoms[i];
      if (atom.kind == SR_ATOM_EXCLUDED) throw std::invalid_argument("excluded key outside a complement");
      if (atom.kind != SR_ATOM_COMPLEMENT) continue;
      if (atom.upper > end - i - 1) throw std::invalid_argument("complement's excluded keys");
      for (size_t e = i + 1; e <= i + atom.upper; e++)
        if (cover.atoms[e].kind != SR_ATOM_EXCLUDED || cover.atoms[e].attnum != atom.attnum)
          throw std::invalid_argument("complement's excluded keys");
      i += atom.upper;
    }
  }
  if (blob_len > UINT32_MAX / 2 - 16 || store_.bytes() + blob_len + 16 > UINT32_MAX)
    throw std::invalid_argument("shape too large");
  if (own_offset != SR_BLOB_UNSHARED && (own_offset > blob_len || own_len > blob_len - own_offset))
    throw std::invalid_argument("own bytes outside the blob");
  void* previous = nullptr;
  // A catalog is loaded in about ascending ids: a new highest id needs no probe.
  const uint32_t existing = shape_id > highest_shape_id_ ? HandleSet::kNone : find_slot(shape_id);
  if (existing != HandleSet::kNone) {
    if (relid_of(existing) != relid) throw std::invalid_argument("shape already registered on another relation");
    previous = drop_shape(shape_id);  // re-added below, possibly with other keys
  }

  // Several alternatives: chosen now from the index's counts, or, while
  // loading, once every shape is in (file_pending_covers).
  const bool defer = bulk_ && cover.alternative_count > 1;
  const size_t alternative = cover.alternative_count <= 1 || defer ? 0 : choose_alternative(relid, cover, nullptr, nullptr);
  Relation& r = relation_for(relid);
  const uint32_t slot = allocate_slot();
  const uint16_t column = cover.alternative_count == 0 ? 0 : home_column_for(cover, alternative);
  bool stored = false;
  uint32_t entry = 0;
  try {
    entry = store_.add(column, relid, static_cast<const uint8_t*>(blob), blob_len, own_offset, own_len);
    stored = true;
    slots_[slot] = Slot(shape_id, entry);
    directory_.insert(slot, [this](uint32_t s) { return slots_[s].shape_id(); });
    if (payload != nullptr) set_payload(slot, payload);
    if (cover.alternative_count == 0) {
      if (!join_lane(r, static_cast<uint32_t>(&r - relations_.data()), slot, blob, blob_len))
        r.scan.insert(scan_position(r, shape_id), slot);
    } else if (defer) {
      pending_.add(slot, relid, column, cover);
    } else {
      file_shape(r, slot, column, cover, alternative, bulk_);
    }
  } catch (...) {
    // Leave no half-added shape behind (the caller keeps its payload).
    if (slots_[slot].shape_id() != 0) {
      directory_.erase(shape_id, [this](uint32_t s) { return slots_[s].shape_id(); });
      take_payload(slot);
    }
    auto it = scan_position(r, shape_id);
    if (it != r.scan.end() && *it == slot) r.scan.erase(it);
    if (index_.contains_slot(slot)) index_.drop(slot);
    pending_.remove_last(slot);
    if (stored) store_.undo_add(entry);
    slots_[slot] = Slot{};
    free_slots_.push_back(slot);
    throw;
  }
  if (r.members_known && cover.alternative_count > 0) {
    try {
      r.members.push_back(slot);
    } catch (const std::bad_alloc&) {
      r.members_known = false;  // made again at the next need
      std::vector<uint32_t>().swap(r.members);
    }
  }
  if (r.shape_count++ == 0) relations_with_shapes_++;
  highest_shape_id_ = std::max(highest_shape_id_, shape_id);
  return previous;
}

// Files the shapes whose choice waited for the whole catalog: a key's count is
// the shapes filed under it plus the pending shapes that name it in any
// alternative (the shapes it would have).
void Router::file_pending_covers() {
  if (pending_.empty()) return;
  // Sized once for every atom (at most that many keys): growing by doubling
  // would hold both tables at once, at the load's peak.
  KeyCounts counts(pending_.atoms_added());
  FlatMap range_counts;
  // The counts are large and read at random: each cover's keys' lines are
  // asked for a few covers before their lookups.
  constexpr size_t kCoversAhead = 8;
  auto prefetch_count = [&](uint32_t, const sr_index_atom& atom) {
    if (atom.kind == SR_ATOM_EQUAL || atom.kind == SR_ATOM_PREFIX || atom.kind == SR_ATOM_ELEMENT ||
        atom.kind == SR_ATOM_SUBSTRING || atom.kind == SR_ATOM_COMPOSITE)
      counts.prefetch(ShapeIndex::stored_key(atom.key));
  };
  pending_.for_each_ahead(kCoversAhead, prefetch_count, [&](const PendingCovers::Entry& p) {
    size_t atom_count = 0;
    for (size_t a = 0; a < p.cover.alternative_count; a++) atom_count += p.cover.alternative_sizes[a];
    for (size_t i = 0; i < atom_count; i++) {
      const sr_index_atom& atom = p.cover.atoms[i];
      // A composite's key is its conjunction's equality too, counted there: once a shape.
      if (atom.kind == SR_ATOM_COMPOSITE || atom.kind == SR_ATOM_EXCLUDED || atom.kind == SR_ATOM_ALWAYS) continue;
      if (atom.kind == SR_ATOM_NULL || atom.kind == SR_ATOM_COMPLEMENT) {
        const uint64_t key = list_count_key(p.relid, atom.attnum, atom.kind);
        const uint32_t* n = range_counts.find(key);
        range_counts.put(key, n == nullptr ? 1 : *n + 1);
        continue;
      }
      if (atom.kind == SR_ATOM_RANGE) {
        const uint64_t key = (uint64_t{p.relid} << 16 | atom.attnum) + 1;
        const uint32_t* n = range_counts.find(key);
        range_counts.put(key, n == nullptr ? 1 : *n + 1);
        continue;
      }
      counts.add(ShapeIndex::stored_key(atom.key));
    }
  });
  // The filed shapes' keys add to the counts. The map is large and read at
  // random: each key's line is asked for kAhead keys before it is looked up.
  constexpr size_t kAhead = 16;
  uint64_t ahead[kAhead];
  size_t seen = 0;
  auto count_filed = [&](uint64_t key) { counts.add_if_present(key); };
  index_.for_each_live_key([&](uint64_t key) {
    counts.prefetch(key);
    if (seen >= kAhead) count_filed(ahead[seen % kAhead]);
    ahead[seen++ % kAhead] = key;
  });
  for (size_t i = seen > kAhead ? seen - kAhead : 0; i < seen; i++) count_filed(ahead[i % kAhead]);
  // Their bytes are freed as they are filed: the filing's growth reuses them.
  pending_.drain(kCoversAhead, prefetch_count, [&](const PendingCovers::Entry& p) {
    file_shape(relations_[*relation_slot_.find(p.relid)], p.slot, p.home_column, p.cover,
               choose_alternative(p.relid, p.cover, &counts, &range_counts), true);
  });
}

void Router::set_payload(uint32_t slot, void* payload) {
  if (slot >= slots_.size() || slots_[slot].shape_id() == 0) return;
  if (payload == nullptr) {
    take_payload(slot);
    return;
  }
  if (const uint32_t* i = payload_index_.find(uint64_t{slot} + 1)) {
    payloads_[*i].payload = payload;
    return;
  }
  reserve_one_more(payloads_);  // both allocations before any change
  payload_index_.reserve(payload_index_.size() + 1);
  payload_index_.put(uint64_t{slot} + 1, static_cast<uint32_t>(payloads_.size()));
  payloads_.push_back(PayloadEntry{payload, slot});
}

void* Router::take_payload(uint32_t slot) noexcept {
  const uint32_t* found = payloads_.empty() ? nullptr : payload_index_.find(uint64_t{slot} + 1);
  if (found == nullptr) return nullptr;
  const uint32_t i = *found;
  void* payload = payloads_[i].payload;
  payload_index_.erase(uint64_t{slot} + 1);
  if (i + 1 != payloads_.size()) {  // the last entry moves into the hole
    payloads_[i] = payloads_.back();
    payload_index_.put(uint64_t{payloads_[i].slot} + 1, i);  // present: overwrites, allocates nothing
  }
  payloads_.pop_back();
  return payload;
}

void* Router::drop_shape(uint64_t shape_id) {
  const uint32_t slot = find_slot(shape_id);
  if (slot == HandleSet::kNone) return nullptr;
  Slot& s = slots_[slot];
  Relation& r = relations_[*relation_slot_.find(relid_of(slot))];
  const ShapeStore::Entry rec = store_.entry(s.entry);
  // The only allocations, made first: a bad_alloc leaves the shape registered.
  reserve_one_more(free_slots_);
  reserve_one_more(retired_slots_);
  if (rec.index_attnum < 0) {
    if (!leave_lane(r, static_cast<uint32_t>(&r - relations_.data()), slot)) r.scan.erase(scan_position(r, shape_id));
    free_slots_.push_back(slot);
  } else if (pending_.drop(slot)) {  // loading: not filed yet
    retired_slots_.push_back(slot);     // not reused before the pending covers are filed
  } else {
    // Its gram keys leave the gram filter (a key there is some shape's gram key).
    if (grams_.keys() > 0) index_.for_each_key_of(slot, [this](uint64_t key) { grams_.remove(key); });
    index_.drop(slot);
    unfile_columns(r, slot, static_cast<uint16_t>(rec.index_attnum + 1));
    set_exact(r, slot, false);
    retired_slots_.push_back(slot);  // the static index may still name it
  }
  if (rec.index_attnum >= 0) r.member_drops++;
  directory_.erase(shape_id, [this](uint32_t x) { return slots_[x].shape_id(); });
  void* payload = take_payload(slot);
  store_.release(s.entry);
  s = Slot{};
  if (--r.shape_count == 0) relations_with_shapes_--;
  return payload;
}


const std::vector<sr_shape_ref>& Router::candidates(uint32_t relid, const uint64_t* keys, size_t key_count,
                                                    bool all_shapes, const sr_range_probe* probes,
                                                    size_t probe_count, const uint16_t* key_attnums,
                                                    size_t old_keys_from, size_t old_probes_from) {
  result_.clear();
  const uint32_t* rslot = find_relation(relid);
  if (rslot == nullptr) return result_;
  return candidates_in(*rslot, keys, key_count, all_shapes, probes, probe_count, key_attnums, old_keys_from,
                       old_probes_from);
}

bool Router::quiet_change(const Relation& r, const uint64_t* keys, size_t key_count, const sr_range_probe* probes,
                          size_t probe_count, const uint16_t* key_attnums, const StaticIndex::FrontProbe* fronts) {
  if (r.lane_shapes > 0 || !r.scan.empty() || r.complement_columns != 0) return false;
  if (index_.any_passing(keys, fronts, key_count)) return false;
  if (r.composite_shapes > 0)
    for (size_t i = 0; i < key_count; i++)
      if ((key_attnums == nullptr || ((r.composite_columns >> (key_attnums[i] % 64)) & 1) != 0) &&
          composites_.may_have_key(keys[i]))
        return false;
  const bool planned_ranges = r.row_plan_epoch == columns_epoch_;
  for (size_t i = 0; i < probe_count; i++) {
    if (probes[i].is_null) return false;  // (made only for a column with NULL atoms)
    const RangeColumn* column = probe_range(r, probes[i], planned_ranges);
    if (column != nullptr && column->may_hit(probes[i].key)) return false;
  }
  return true;
}

const std::vector<sr_shape_ref>& Router::candidates_in(uint32_t rslot, const uint64_t* keys, size_t key_count,
                                                       bool all_shapes, const sr_range_probe* probes,
                                                       size_t probe_count, const uint16_t* key_attnums,
                                                       size_t old_keys_from, size_t old_probes_from,
                                                       const sr_row_view* new_row, const sr_row_view* old_row,
                                                       const StaticIndex::FrontProbe* fronts, bool own_probes) {
  result_.clear();
  const Relation& r = relations_[rslot];
  const uint32_t relid = r.relid;
  hits_.clear();
  proofs_.clear();
  // Exact decisions need every key's column, and no key stored in the same form
  // as another (0 and 1: ShapeIndex::has_key cannot tell them apart). Only a
  // change with a hit asks (few do).
  int decide_state = -1;
  auto deciding = [&]() {
    if (decide_state < 0) {
      bool d = !all_shapes && key_attnums != nullptr && r.exact_shapes > 0 &&
               !shares_virtual_column(new_row) && !shares_virtual_column(old_row);
      for (size_t i = 0; d && i < key_count; i++) d = keys[i] > 1;
      decide_state = d ? 1 : 0;
    }
    return decide_state == 1;
  };
  if (all_shapes) {
    for (uint32_t slot : relation_members(relations_[rslot]))
      if (indexed_member(r, slot)) hits_.push_back(slot);
  } else {
    size_t prefix_hits = 0, element_hits = 0, substring_hits = 0;
    seen_grams_.next();
    // Most keys stop at the front filter: no call, no perfect hash probe.
    if (passing_.size() < key_count) passing_.resize(std::max(key_count, 2 * passing_.size()));
    const size_t pass_count = index_.passing(keys, fronts, key_count, passing_.data());
    for (size_t p = 0; p < pass_count; p++) {
      const size_t i = passing_[p];
      const bool gram = key_attnums != nullptr && (key_attnums[i] & SR_SUBSTRING_KEY_FLAG) != 0;
      if (gram && !grams_.may_have(keys[i])) continue;  // keys made without the gram filter
      if (gram && !seen_grams_.insert(keys[i])) continue;  // a gram the text repeats: its shapes are in
      const size_t before = hits_.size();
      ShapeIndex::Probe probe = index_.lookup(keys[i], hits_);
      counters_.filter_passes += probe.filter_pass;
      counters_.mphf_hits += probe.slot_hit;
      if (key_attnums != nullptr && (key_attnums[i] & SR_PREFIX_KEY_FLAG) != 0) {
        prefix_hits += hits_.size() - before;  // prefix atoms are never exact
        continue;
      }
      if (gram) {
        substring_hits += hits_.size() - before;  // nor substring atoms
        continue;
      }
      // (a counter only: the bit may be another column's too, so proofs still follow)
      if (r.element_columns != 0 && key_attnums != nullptr && ((r.element_columns >> (key_attnums[i] % 64)) & 1))
        element_hits += hits_.size() - before;
      if (hits_.size() == before || !deciding()) continue;
      // A hit proves an exact shape's atom when the shape has this very key on this column.
      for (size_t h = before; h < hits_.size(); h++) {
        const uint32_t slot = hits_[h];
        if (exact(slot) && store_.entry(slots_[slot].entry).index_attnum == key_attnums[i] &&
            index_.has_key(slot, keys[i]))
          proofs_.push_back(slot | (i >= old_keys_from ? kProofOld : 0));
      }
    }
    const size_t equality_hits = hits_.size();
    counters_.equality_probes += key_count;
    counters_.equality_candidates += equality_hits - prefix_hits - element_hits - substring_hits;
    counters_.prefix_candidates += prefix_hits;
    counters_.substring_candidates += substring_hits;
    counters_.element_candidates += element_hits;
    if (r.composite_shapes > 0) {
      // Each key with the row version's value of each composite's range column.
      for (size_t i = 0; i < key_count; i++) {
        // Most keys: not on a composite's key column, or no group under them; no call.
        if (key_attnums != nullptr && ((r.composite_columns >> (key_attnums[i] % 64)) & 1) == 0) continue;
        if (!composites_.may_have_key(keys[i])) continue;
        const bool old = i >= old_keys_from;
        const size_t split = std::min(old_probes_from, probe_count);
        const size_t from = old ? split : 0, to = old ? probe_count : split;
        auto value_of = [&](uint16_t attnum) -> const uint64_t* {
          for (size_t p = from; p < to; p++)
            if (probes[p].attnum == attnum && !probes[p].is_null) return &probes[p].key;
          return nullptr;
        };
        composites_.stab(relid, keys[i], key_attnums == nullptr ? 0 : key_attnums[i], value_of, [&](uint32_t slot) {
          hits_.push_back(slot);
          if (deciding() && exact(slot)) proofs_.push_back(slot | (old ? kProofOld : 0));
        });
      }
      counters_.composite_candidates += hits_.size() - equality_hits;
    }
    if (r.complement_columns != 0) {
      // Each key on a complement column: the column's complement shapes but
      // those whose constants the value is.
      const size_t before = hits_.size();
      if (key_attnums == nullptr) {
        for (const IndexColumn& column : r.index_columns)
          if (column.complement_shapes > 0)
            lists_.all_complements(relid, column.attnum, [&](uint32_t slot) { hits_.push_back(slot); });
      } else {
        for (size_t i = 0; i < key_count; i++) {
          if (((r.complement_columns >> (key_attnums[i] % 64)) & 1) == 0) continue;
          auto column = std::find_if(r.index_columns.begin(), r.index_columns.end(),
                                     [&](const IndexColumn& c) { return c.attnum == key_attnums[i]; });
          if (column == r.index_columns.end() || column->complement_shapes == 0) continue;
          const uint32_t old = i >= old_keys_from ? kProofOld : 0;
          lists_.stab_complement(relid, key_attnums[i], keys[i], tag_key_exact(column->tag),
                                 [&](uint32_t slot, bool holds) {
                                   hits_.push_back(slot);
                                   if (holds && deciding() && exact(slot)) proofs_.push_back(slot | old);
                                 });
        }
      }
      counters_.complement_candidates += hits_.size() - before;
    }
    const size_t before_ranges = hits_.size();
    size_t null_hits = 0;
    // With the relation's plan current, its few range columns' places (a
    // probe made under another plan, or given by a caller, is looked up).
    const bool planned_ranges = r.row_plan_epoch == columns_epoch_;
    for (size_t i = 0; i < probe_count; i++) {
      if (probes[i].is_null) {
        const uint32_t old = i >= old_probes_from ? kProofOld : 0;
        const size_t before = hits_.size();
        lists_.stab_null(relid, probes[i].attnum, [&](uint32_t slot) {
          hits_.push_back(slot);
          if (deciding() && exact(slot)) proofs_.push_back(slot | old);
        });
        null_hits += hits_.size() - before;
        continue;
      }
      const RangeColumn* column = own_probes ? probe_range(r, probes[i], planned_ranges)
                                  : planned_ranges ? planned_range(r, probes[i].attnum)
                                                   : ranges_.find(relid, probes[i].attnum);
      if (column == nullptr) continue;
      const uint32_t old = i >= old_probes_from ? kProofOld : 0;
      // A range the value lies in is an atom that holds: a proof by itself.
      column->stab(probes[i].key, [&](uint32_t slot) {
        hits_.push_back(slot);
        if (deciding() && exact(slot)) proofs_.push_back(slot | old);
      });
    }
    counters_.range_probes += probe_count;
    counters_.range_candidates += hits_.size() - before_ranges - null_hits;
    counters_.null_candidates += null_hits;
  }
  if (r.lane_shapes > 0) {
    lane_decisions_.clear();
    lane_candidates(r, new_row, old_row, all_shapes || (new_row == nullptr && old_row == nullptr));
  }
  counters_.scan_candidates += r.scan.size() - r.always_shapes;
  counters_.always_candidates += r.always_shapes;
  // A scan-list entry: a whole-table shape holds for both rows, when deciding.
  auto scan_ref = [&](uint32_t slot) {
    sr_shape_ref shape = ref(slot);
    if (r.always_shapes > 0 && !all_shapes && exact(slot) && deciding()) shape.exact = SR_EXACT_NEW | SR_EXACT_OLD;
    return shape;
  };
  if (hits_.empty()) {
    if (r.scan.empty()) return result_;
    result_.reserve(r.scan.size());
    for (uint32_t slot : r.scan) result_.push_back(scan_ref(slot));
    if (r.always_shapes > 0 && !all_shapes && deciding()) decide_exact();
    return result_;
  }
  // Index hits of this relation (a hash collision may name another's), by shape id.
  // When this relation is the only one with shapes, every live hit is its own:
  // the relid, in the shape's store entry, is a second random read a hit.
  const bool other_relations = relations_with_shapes_ > 1 || r.shape_count == 0;
  size_t kept = 0;
  for (uint32_t slot : hits_)
    if (slots_[slot].shape_id() != 0 && (!other_relations || relid_of(slot) == relid)) hits_[kept++] = slot;
  hits_.resize(kept);
  auto by_id = [&](uint32_t a, uint32_t b) { return slots_[a].shape_id() < slots_[b].shape_id(); };
  std::sort(hits_.begin(), hits_.end(), by_id);
  hits_.erase(std::unique(hits_.begin(), hits_.end()), hits_.end());
  result_.reserve(r.scan.size() + hits_.size());
  size_t i = 0, j = 0;
  while (i < r.scan.size() || j < hits_.size()) {
    if (j == hits_.size() || (i < r.scan.size() && by_id(r.scan[i], hits_[j])))
      result_.push_back(scan_ref(r.scan[i++]));
    else
      result_.push_back(ref(hits_[j++]));
  }
  if (deciding()) decide_exact();
  if (r.lane_shapes > 0 && !lane_decisions_.empty()) apply_lane_decisions();
  return result_;
}

const std::vector<sr_shape_ref>& Router::route(uint32_t relid, const sr_row_view* new_row, const sr_row_view* old_row,
                                               bool trusted, uint64_t prefetched) {
  const ChangeKeys* k = &change_keys_;
  change_keys_.clear();
  const uint32_t* rslot = find_relation(relid);
  if (rslot == nullptr) {
    result_.clear();
    return result_;
  }
  const StaticIndex::FrontProbe* fronts = nullptr;
  Relation& relation = relations_[*rslot];
  if (trusted) {
    PrefetchedKeys* kept = nullptr;
    for (PrefetchedKeys& p : prefetched_)
      if (prefetched != 0 && p.token == prefetched && p.relid == relid) kept = &p;
    if (kept != nullptr && kept->epoch != columns_epoch_) kept = nullptr;
    counters_.prefetched_keys_reused += kept != nullptr;
    // The probes read ahead hold while the front filter they were made by does.
    const bool kept_fronts = kept != nullptr && kept->front_generation == index_.front_generation();
    if (kept != nullptr && !kept->partial) {
      kept->token = 0;  // once
      k = &kept->keys;
      if (kept_fronts) fronts = kept->fronts.data();
      counters_.equality_probes += k->filtered_grams;  // probed, by the gram filter
    } else {
      const RowPlan& plan = row_plan(relations_[*rslot]);
      // With the plain columns' keys prefetched, each row adds the rest.
      const KeyPart part = kept != nullptr ? KeyPart::kVariable : KeyPart::kAll;
      const ChangeKeys* plain = kept != nullptr ? &kept->keys : nullptr;
      if (kept != nullptr) kept->token = 0;
      if (plain != nullptr) change_keys_.append(*plain, 0, plain->old_keys_from, 0, plain->old_probes_from);
      // No key of an integer value the sieve shows no shape is keyed on: it
      // would find nothing. (A relation with complement atoms has no sieve.)
      const ValueSieve::View* sieve = part == KeyPart::kAll && !bulk_ ? relation.sieve.view() : nullptr;
      const size_t new_from = change_keys_.key_count;
      if (new_row != nullptr) trusted = change_keys_.add_row(plan, *new_row, nullptr, part, &grams_, sieve);
      const size_t new_to = change_keys_.key_count;
      change_keys_.start_old_row();
      if (plain != nullptr)
        change_keys_.append(*plain, plain->old_keys_from, plain->key_count, plain->old_probes_from, plain->probe_count);
      const size_t old_from = change_keys_.key_count;
      if (old_row != nullptr && trusted) trusted = change_keys_.add_row(plan, *old_row, new_row, part, &grams_, sieve);
      if (plain != nullptr) {
        // The keys made now (elements, grams, expressions) were not read ahead
        // with the plain ones: their filter words are asked for together, so
        // that their misses overlap before the probes wait on them.
        if (kept_fronts) {
          // The plain keys' probes as read ahead, beside these.
          route_fronts_.resize(std::max(route_fronts_.size(), change_keys_.key_count));
          const size_t old_plain = plain->key_count - plain->old_keys_from;
          std::copy(kept->fronts.begin(), kept->fronts.begin() + plain->old_keys_from, route_fronts_.begin());
          std::copy(kept->fronts.begin() + plain->old_keys_from, kept->fronts.begin() + plain->key_count,
                    route_fronts_.begin() + (old_from - old_plain));
          prefetch_fronts(change_keys_, new_from, new_to, route_fronts_);
          prefetch_fronts(change_keys_, old_from, change_keys_.key_count, route_fronts_);
          fronts = route_fronts_.data();
        } else {
          prefetch(change_keys_.keys.data() + new_from, new_to - new_from);
          prefetch(change_keys_.keys.data() + old_from, change_keys_.key_count - old_from);
        }
      }
      counters_.equality_probes += change_keys_.filtered_grams;  // probed, by the gram filter
    }
  }
  if (k->sieved != 0) {
    // A value the sieve has not is probed by it (candidates_in counts the rest).
    counters_.equality_probes += k->sieved;
    counters_.sieved_values += k->sieved;
  }
  // Most changes: no shape can be a candidate, known before candidates_in's setup.
  if (trusted && quiet_change(relation, k->keys.data(), k->key_count, k->probes.data(), k->probe_count,
                              k->key_attnums.data(), fronts)) {
    result_.clear();
    counters_.equality_probes += k->key_count;
    counters_.range_probes += k->probe_count;
    return result_;
  }
  return candidates_in(*rslot, k->keys.data(), k->key_count, !trusted, k->probes.data(), k->probe_count,
                       k->key_attnums.data(), k->old_keys_from, k->old_probes_from, new_row, old_row,
                       trusted ? fronts : nullptr, true);
}

void Router::prefetch_fronts(const ChangeKeys& keys, size_t from, size_t to,
                             std::vector<StaticIndex::FrontProbe>& fronts) {
  if (fronts.size() < to) fronts.resize(to);
  if (to > from) index_.prefetch_probes(keys.keys.data() + from, to - from, fronts.data() + from);
}

void Router::remake_row_plan(Relation& r) {
  static_assert(sizeof(sr_index_column) == sizeof(IndexColumn), "layouts must agree");
  r.row_plan.build(r.relid, reinterpret_cast<const sr_index_column*>(r.index_columns.data()), r.index_columns.size());
  r.range_columns.clear();
  for (const IndexColumn& column : r.index_columns) {
    const uint32_t place = column.range_shapes > 0 ? ranges_.index_of(r.relid, column.attnum) : RangeIndex::kNoColumn;
    if (place == RangeIndex::kNoColumn) continue;
    r.range_columns.emplace_back(column.attnum, place);
    r.row_plan.set_range_place(column.attnum, place + 1);
  }
  r.row_plan_epoch = columns_epoch_;
}

bool Router::prefetch_rows(uint32_t relid, const sr_row_view* new_row, const sr_row_view* old_row, uint64_t token,
                           bool complete) {
  const uint32_t* rslot = find_relation(relid);
  if (rslot == nullptr) return false;
  Relation& r = relations_[*rslot];
  const RowPlan& plan = row_plan(r);
  PrefetchedKeys& p = prefetched_[prefetched_next_];
  prefetched_next_ ^= 1;
  p.token = 0;
  p.relid = relid;
  p.keys.clear();
  // All of the rows' keys, made as route() would make them; or the plain columns'.
  const bool all = complete && r.variable_keys;
  const KeyPart part = all ? KeyPart::kAll : KeyPart::kPlain;
  const GramFilter* grams = all ? &grams_ : nullptr;
  bool made = true;
  if (new_row != nullptr) made = p.keys.add_row(plan, *new_row, nullptr, part, grams);
  p.keys.start_old_row();
  if (old_row != nullptr && made) made = p.keys.add_row(plan, *old_row, all ? new_row : nullptr, part, grams);
  if (!made) return false;  // keys route() would not trust: it decides
  prefetch_fronts(p.keys, 0, p.keys.key_count, p.fronts);
  p.front_generation = index_.front_generation();
  for (size_t i = 0; i < p.keys.probe_count && !r.range_columns.empty(); i++) {
    const sr_range_probe& probe = p.keys.probes[i];
    if (probe.is_null) continue;
    if (const RangeColumn* column = probe_range(r, probe, true)) column->prefetch(probe.key);
  }
  if (token == 0) return false;
  p.token = token;
  p.epoch = columns_epoch_;
  p.partial = r.variable_keys && !all;
  return true;
}

bool Router::join_lane(Relation& r, uint32_t rslot, uint32_t slot, const void* blob, size_t blob_len) {
  if (blob == nullptr) return false;
  const int64_t form = store_.entry(slots_[slot].entry).form;
  sr_shape_spec spec;
  if (form < 0 || !decode_shape_spec(static_cast<const uint8_t*>(blob), blob_len, &spec, lane_attnums_[0], lane_attnums_[1]) ||
      spec.program_len == 0 || spec.fallback_text != nullptr ||
      !FormLane::admits(spec.program, spec.program_len, lane_columns_))
    return false;
  // A column some other shape files with another tag: the shell reads the
  // value with that one, which this program cannot read (a stale catalog row).
  for (const FormLane::Column& c : lane_columns_)
    for (const IndexColumn& filed : r.index_columns)
      if (filed.attnum == c.attnum && filed.tag != c.tag) return false;
  const uint64_t form_key = lane_form_key(rslot, form);
  const uint32_t* found = lane_by_form_.find(form_key);
  if (found != nullptr && !r.lanes[*found].same_form(spec.program, spec.program_len)) return false;
  const bool new_lane = found == nullptr;
  const uint32_t lane = new_lane ? static_cast<uint32_t>(r.lanes.size()) : *found;
  // Everything that allocates first, each step undone if a later one throws.
  r.index_columns.reserve(r.index_columns.size() + lane_columns_.size());
  int done = 0;
  try {
    if (new_lane) {
      r.lanes.emplace_back(spec.program, spec.program_len, lane_columns_);
      done = 1;
      r.lane_forms.push_back(form);
      done = 2;
      lane_by_form_.put(form_key, lane);
      done = 3;
    }
    r.lanes[lane].add(slot, spec.program);
    done = 4;
    lane_of_.put(uint64_t{slot} + 1, lane);
    done = 5;
    for (std::vector<uint8_t>& truth : lane_truth_)
      if (truth.size() < r.lanes[lane].size()) truth.resize(std::max(r.lanes[lane].size(), 2 * truth.size()));
  } catch (...) {
    if (done >= 5) lane_of_.erase(uint64_t{slot} + 1);
    if (done >= 4) r.lanes[lane].remove(slot);
    if (done >= 3) lane_by_form_.erase(form_key);
    if (done >= 2) r.lane_forms.pop_back();
    if (done >= 1) r.lanes.pop_back();
    throw;
  }
  for (const FormLane::Column& c : r.lanes[lane].columns()) {  // reserved: allocates nothing
    IndexColumn column{c.attnum, c.tag, 0, 0, 0};
    column.lane_shapes = 1;
    file_column(r, column);
  }
  r.lane_shapes++;
  lane_shapes_++;
  if (new_lane) lane_forms_++;
  return true;
}

bool Router::leave_lane(Relation& r, uint32_t rslot, uint32_t slot) {
  const uint32_t* found = r.lane_shapes == 0 ? nullptr : lane_of_.find(uint64_t{slot} + 1);
  if (found == nullptr) return false;
  const uint32_t lane = *found;
  lane_of_.erase(uint64_t{slot} + 1);
  r.lanes[lane].remove(slot);
  for (const FormLane::Column& c : r.lanes[lane].columns()) {
    IndexColumn column{c.attnum, c.tag, 0, 0, 0};
    column.lane_shapes = 1;
    file_column(r, column, true);
  }
  r.lane_shapes--;
  lane_shapes_--;
  if (r.lanes[lane].size() == 0) {
    lane_forms_--;
    // The last lane takes its place; its members and form are told so (keys
    // present: put allocates nothing).
    lane_by_form_.erase(lane_form_key(rslot, r.lane_forms[lane]));
    const uint32_t last = static_cast<uint32_t>(r.lanes.size() - 1);
    if (lane != last) {
      r.lanes[lane] = std::move(r.lanes[last]);
      r.lane_forms[lane] = r.lane_forms[last];
      lane_by_form_.put(lane_form_key(rslot, r.lane_forms[lane]), lane);
      for (size_t m = 0; m < r.lanes[lane].size(); m++) lane_of_.put(uint64_t{r.lanes[lane].slot(m)} + 1, lane);
    }
    r.lanes.pop_back();
    r.lane_forms.pop_back();
  }
  return true;
}

void Router::lane_candidates(const Relation& r, const sr_row_view* new_row, const sr_row_view* old_row, bool all) {
  for (const FormLane& lane : r.lanes) {
    const size_t n = lane.size();
    if (all) {
      for (size_t m = 0; m < n; m++) hits_.push_back(lane.slot(m));
      continue;
    }
    const uint8_t* truth_new = nullptr;
    const uint8_t* truth_old = nullptr;
    if (new_row != nullptr) {
      lane.evaluate(new_row->values, lane_truth_[0].data());
      truth_new = lane_truth_[0].data();
      counters_.lane_runs++;
      counters_.lane_decisions += n;
    }
    if (old_row != nullptr) {
      lane.evaluate(old_row->values, lane_truth_[1].data());
      truth_old = lane_truth_[1].data();
      counters_.lane_runs++;
      counters_.lane_decisions += n;
    }
    auto decide = [&](size_t m) {
      const uint64_t bits = (truth_new != nullptr && truth_new[m] == SR_TRUE ? SR_EXACT_NEW : 0) |
                            (truth_old != nullptr && truth_old[m] == SR_TRUE ? SR_EXACT_OLD : 0);
      if (bits == 0) return;  // neither row: no record
      hits_.push_back(lane.slot(m));
      lane_decisions_.push_back(bits << 32 | lane.slot(m));
    };
    if (truth_new == nullptr || truth_old == nullptr) {
      // One row: its matches found a word at a time (most members match none).
      const uint8_t* truth = truth_new != nullptr ? truth_new : truth_old;
      for (const void* p = std::memchr(truth, SR_TRUE, n); p != nullptr;) {
        const size_t m = static_cast<size_t>(static_cast<const uint8_t*>(p) - truth);
        decide(m);
        p = m + 1 < n ? std::memchr(truth + m + 1, SR_TRUE, n - m - 1) : nullptr;
      }
    } else {
      for (size_t m = 0; m < n; m++) decide(m);
    }
  }
}

// Lane members come back decided: the shell runs no program for them.
void Router::apply_lane_decisions() {
  for (uint64_t decision : lane_decisions_) {
    const uint32_t slot = static_cast<uint32_t>(decision);
    const uint64_t id = slots_[slot].shape_id();
    auto it = std::lower_bound(result_.begin(), result_.end(), id,
                               [](const sr_shape_ref& ref, uint64_t shape_id) { return ref.shape_id < shape_id; });
    if (it != result_.end() && it->slot == slot) it->exact = static_cast<uint8_t>(SR_EXACT_DECIDED | (decision >> 32));
  }
}

// Whether slot holds one of r's indexed shapes (whole-table shapes come from the scan list).
bool Router::indexed_member(const Relation& r, uint32_t slot) const noexcept {
  return slots_[slot].shape_id() != 0 && relid_of(slot) == r.relid && store_.entry(slots_[slot].entry).index_attnum >= 0 &&
         !always(slot);
}

const std::vector<uint32_t>& Router::relation_members(Relation& r) {
  if (!r.members_known) {
    r.members.clear();
    for (uint32_t slot = 0; slot < slots_.size(); slot++)
      if (indexed_member(r, slot)) r.members.push_back(slot);
    r.members_known = true;
    r.member_drops = 0;
  } else if (r.member_drops * 2 > r.members.size()) {
    // A dropped shape's slot may since hold another of r's shapes, listed again.
    std::sort(r.members.begin(), r.members.end());
    r.members.erase(std::unique(r.members.begin(), r.members.end()), r.members.end());
    r.members.erase(std::remove_if(r.members.begin(), r.members.end(),
                                   [&](uint32_t slot) { return !indexed_member(r, slot); }),
                    r.members.end());
    r.member_drops = 0;
  }
  return r.members;
}

// Marks the exact shapes among the candidates decided, with the rows their
// proofs hold for, and leaves out those with none (the filter's false positives).
void Router::decide_exact() {
  for (uint32_t proof : proofs_) {
    const uint32_t slot = proof & ~kProofOld;
    const uint64_t id = slots_[slot].shape_id();
    auto it = std::lower_bound(result_.begin(), result_.end(), id,
                               [](const sr_shape_ref& ref, uint64_t shape_id) { return ref.shape_id < shape_id; });
    if (it != result_.end() && it->slot == slot)
      it->exact |= (proof & kProofOld) != 0 ? SR_EXACT_OLD : SR_EXACT_NEW;
  }
  size_t kept = 0;
  for (sr_shape_ref& ref : result_) {
    if (exact(ref.slot)) {
      ref.exact |= SR_EXACT_DECIDED;
      counters_.exact_hits++;
      if (ref.exact == SR_EXACT_DECIDED) continue;
    }
    result_[kept++] = ref;
  }
  result_.resize(kept);
}

void Router::begin_bulk_load(size_t expected_shapes) {
  bulk_ = true;
  // expected_shapes is an estimate (catalog statistics). Past a reservation the
  // slot table and the index's records double and the directory rehashes to twice
  // its size: at a million shapes, an estimate 1% low cost 23 MB more at the load's
  // peak. The margin costs the directory 1/16 more and the vectors nothing
  // (reserved pages never written are not resident; shrink_if_slack allows for it).
  if (expected_shapes < SIZE_MAX / 2) expected_shapes += bulk_margin(expected_shapes);
  store_.begin_bulk(expected_shapes);
  // The reservations are a saving, not a need: one that cannot be had leaves the
  // tables to grow as usual.
  try {
    reserve_on_huge_pages(slots_, slots_.size() + expected_shapes);
    directory_.reserve(directory_.size() + expected_shapes, [this](uint32_t slot) { return slots_[slot].shape_id(); });
    index_.reserve(slots_.size() + expected_shapes);
  } catch (const std::bad_alloc&) {
  } catch (const std::length_error&) {
  }
}

void Router::end_bulk_load() {
  file_pending_covers();
  bulk_ = false;
  // Each relation's sieve sized for the integer keys it was loaded with (one
  // that had values before adds to them; one loaded with more than it may
  // hold, or whose keys were not all kept, is disabled).
  for (Relation& r : relations_) {
    if (r.sieve_loading == 0) continue;
    if (r.sieve_loading > ValueSieve::kMaxValues || r.complement_columns != 0) {
      r.sieve.disable();
    } else if (r.sieve.values() == 0) {
      try {
        r.sieve.reset(r.sieve_loading);  // (it grows as registrations fill it)
      } catch (const std::bad_alloc&) {
        // the size it had: it grows or gives up as it fills
      }
    }
    r.sieve_loading = 0;
  }
  for (const LoadedKey& k : bulk_sieve_) {
    Relation& r = relations_[k.rslot];
    if (r.sieve.usable()) r.sieve.add(ValueSieve::hash(int_value_of_key(r.relid, k.attnum, k.tag, k.key), k.attnum));
  }
  std::vector<LoadedKey>().swap(bulk_sieve_);
  // Loaded once, then mostly read. Growth slack is given back when large; the
  // small overshoot of a reservation is left, since untouched pages cost no
  // memory and shrinking copies the table (the copy and the original live at
  // once, just before the index build, the moment of peak memory).
  shrink_if_slack(slots_);
  store_.end_bulk();
  index_.shrink_to_fit();
  maintain(true);
}

bool Router::maintain(bool force) {
  store_.compact_if_due([this](auto&& visit) {
    for (Slot& s : slots_)
      if (s.shape_id() != 0) visit(s.entry);
  });
  const bool ranges_rebuilt = ranges_.maintain(force) | composites_.maintain(force);
  // While loading, a retired slot may still have a pending cover (dropped): not reused until filed.
  if (bulk_ || !index_.maintain(force)) return ranges_rebuilt;
  // Retired slots that no static part names any more (current or being built) can be reused.
  free_slots_.reserve(free_slots_.size() + retired_slots_.size());
  size_t kept = 0;
  for (uint32_t slot : retired_slots_) {
    if (index_.slot_tombstoned(slot))
      retired_slots_[kept++] = slot;
    else
      free_slots_.push_back(slot);
  }
  retired_slots_.resize(kept);
  return true;
}

}  // namespace shape_router

using shape_router::Router;

struct sr_router {
  Router router;
  // sr_router_add_shape_spec's encoding, sr_router_shape_spec's attnums
  std::vector<uint8_t> spec_bytes;
  mutable std::vector<int16_t> where_attnums, column_attnums;
};

using shape_router::guarded;

extern "C" {

sr_status sr_router_create(sr_router** out) noexcept {
  *out = nullptr;
  return guarded([&] { *out = new sr_router(); });
}

void sr_router_destroy(sr_router* router) noexcept { delete router; }

sr_status sr_router_add_shape(sr_router* router, uint64_t shape_id, uint32_t relid, void* payload,
                              int index_attnum, uint8_t index_tag, const uint64_t* keys, size_t key_count,
                              void** previous) noexcept {
  *previous = nullptr;
  return guarded([&] {
    *previous = router->router.add_shape(shape_id, relid, payload, index_attnum, index_tag, keys, key_count);
  });
}

sr_status sr_router_add_shape_spec(sr_router* router, uint64_t shape_id, uint32_t relid, const sr_shape_spec* spec,
                                   const sr_cover* cover, void** previous) noexcept {
  *previous = nullptr;
  return guarded([&] {
    size_t own_offset, own_len;
    shape_router::encode_shape_spec(*spec, router->spec_bytes, &own_offset, &own_len);
    *previous = router->router.add_shape(shape_id, relid, nullptr, *cover, router->spec_bytes.data(),
                                         router->spec_bytes.size(), own_offset, own_len);
  });
}

sr_status sr_router_shape_spec(const sr_router* router, uint32_t slot, sr_shape_spec* spec) noexcept {
  *spec = sr_shape_spec{};
  return guarded([&] {
    const auto [bytes, len] = router->router.blob(slot);
    if (bytes == nullptr ||
        !shape_router::decode_shape_spec(bytes, len, spec, router->where_attnums, router->column_attnums))
      throw std::invalid_argument("no shape definition in this slot");
  });
}

sr_status sr_router_set_payload(sr_router* router, uint32_t slot, void* payload) noexcept {
  return guarded([&] { router->router.set_payload(slot, payload); });
}

uint32_t sr_router_shape_relid(const sr_router* router, uint64_t shape_id) noexcept {
  return router->router.shape_relid(shape_id);
}

sr_status sr_router_drop_shape(sr_router* router, uint64_t shape_id, void** payload) noexcept {
  *payload = nullptr;
  return guarded([&] { *payload = router->router.drop_shape(shape_id); });
}

uint64_t sr_router_columns_epoch(const sr_router* router) noexcept { return router->router.columns_epoch(); }

size_t sr_router_relation(const sr_router* router, uint32_t relid, const sr_index_column** columns,
                          size_t* column_count) noexcept {
  Router::RelationView view = router->router.relation(relid);
  static_assert(sizeof(sr_index_column) == sizeof(Router::IndexColumn), "layouts must agree");
  *columns = reinterpret_cast<const sr_index_column*>(view.index_columns);
  *column_count = view.index_column_count;
  return view.shape_count;
}

sr_status sr_router_candidates(sr_router* router, uint32_t relid, const uint64_t* keys,
                               const uint16_t* key_attnums, size_t key_count, size_t old_keys_from,
                               const sr_range_probe* probes, size_t probe_count, size_t old_probes_from,
                               int all_shapes, const sr_shape_ref** shapes, size_t* count) noexcept {
  *shapes = nullptr;
  *count = 0;
  return guarded([&] {
    const std::vector<sr_shape_ref>& result = router->router.candidates(
        relid, keys, key_count, all_shapes != 0, probes, probe_count, key_attnums, old_keys_from, old_probes_from);
    *shapes = result.data();
    *count = result.size();
  });
}

sr_status sr_router_route(sr_router* router, uint32_t relid, const sr_row_view* new_row, const sr_row_view* old_row,
                          int trusted, uint64_t prefetched, const sr_shape_ref** shapes, size_t* count) noexcept {
  *shapes = nullptr;
  *count = 0;
  return guarded([&] {
    const std::vector<sr_shape_ref>& result = router->router.route(relid, new_row, old_row, trusted != 0, prefetched);
    *shapes = result.data();
    *count = result.size();
  });
}

int sr_router_prefetch_rows(sr_router* router, uint32_t relid, const sr_row_view* new_row,
                            const sr_row_view* old_row, uint64_t token, int complete) noexcept {
  try {
    return router->router.prefetch_rows(relid, new_row, old_row, token, complete != 0) ? 1 : 0;
  } catch (...) {
    return 0;  // only a hint: nothing kept
  }
}

void sr_router_prefetch_shape(const sr_router* router, uint64_t shape_id) noexcept {
  router->router.prefetch_shape(shape_id);
}

sr_status sr_router_begin_bulk_load(sr_router* router, size_t expected_shapes) noexcept {
  return guarded([&] { router->router.begin_bulk_load(expected_shapes); });
}

sr_status sr_router_end_bulk_load(sr_router* router) noexcept {
  return guarded([&] { router->router.end_bulk_load(); });
}

sr_status sr_router_maintain(sr_router* router, int force, int* rebuilt) noexcept {
  *rebuilt = 0;
  return guarded([&] { *rebuilt = router->router.maintain(force != 0) ? 1 : 0; });
}

void sr_router_index_stats(const sr_router* router, sr_index_stats* out) noexcept {
  shape_router::IndexStats s = router->router.index_stats();
  out->keys = s.keys;
  out->static_bytes = s.static_bytes;
  out->key_store_bytes = s.key_store_bytes;
  out->overlay_keys = s.overlay_keys;
  out->tombstones = s.tombstones;
  out->rebuilds = s.rebuilds;
  out->background_builds = s.background_builds + router->router.range_background_builds();
  out->longest_pause_us = s.longest_pause_ns / 1000;
  out->range_entries = router->router.range_entries();
  out->range_bytes = router->router.range_bytes();
  out->lane_shapes = router->router.lane_shapes();
  out->lane_forms = router->router.lane_forms();
}

void sr_router_for_each_shape(const sr_router* router, void (*visit)(const sr_shape_ref*, void*), void* arg) noexcept {
  router->router.for_each_shape([&](const sr_shape_ref& s) { visit(&s, arg); });
}

size_t sr_router_shape_count(const sr_router* router) noexcept { return router->router.shape_count(); }
size_t sr_router_relation_count(const sr_router* router) noexcept { return router->router.relation_count(); }
sr_counters* sr_router_counters(sr_router* router) noexcept { return &router->router.counters(); }

const char* sr_status_message(sr_status status) noexcept {
  switch (status) {
    case SR_OK: return "ok";
    case SR_OUT_OF_MEMORY: return "out of memory";
    case SR_INVALID_ARGUMENT: return "invalid argument";
    case SR_INTERNAL_ERROR: return "internal error";
  }
  return "unknown status";
}

sr_status sr_parse_shape_id_list(const char* text, uint64_t** ids, size_t* count, size_t* bad_offset) noexcept {
  *ids = nullptr;
  *count = 0;
  *bad_offset = 0;
  std::vector<uint64_t> parsed;
  bool malformed = false;
  sr_status status = guarded([&] {
    // One pass over the NUL-terminated text: the terminator ends every loop
    // (it is neither a blank nor a digit), so no loop tests the length.
    // Below kSafe, value * 10 + 9 stays within INT64_MAX: no test a digit.
    constexpr uint64_t kSafe = static_cast<uint64_t>(INT64_MAX) / 10;
    const char* p = text;
    for (;;) {
      while (*p == ' ' || *p == '\t') ++p;
      const char* item_start = p;
      uint64_t value = 0;
      unsigned digit;
      while ((digit = static_cast<unsigned char>(*p) - static_cast<unsigned>('0')) <= 9) {
        if (value >= kSafe && value > (static_cast<uint64_t>(INT64_MAX) - digit) / 10) break;
        value = value * 10 + digit;
        ++p;
      }
      const bool digits = p != item_start && digit > 9;  // stopped by a non-digit, not by overflow
      while (*p == ' ' || *p == '\t') ++p;
      if (!digits || value == 0 || (*p != '\0' && *p != ',')) {
        malformed = true;
        *bad_offset = static_cast<size_t>(item_start - text);
        return;
      }
      parsed.push_back(value);
      if (*p == '\0') break;
      ++p;  // the comma
    }
    // a list made from ids in order (the usual case) needs no sort
    if (!std::is_sorted(parsed.begin(), parsed.end())) std::sort(parsed.begin(), parsed.end());
    parsed.erase(std::unique(parsed.begin(), parsed.end()), parsed.end());
  });
  if (status != SR_OK) return status;
  if (malformed) return SR_INVALID_ARGUMENT;
  uint64_t* out = static_cast<uint64_t*>(std::malloc(parsed.size() * sizeof(uint64_t) + 1));
  if (out == nullptr) return SR_OUT_OF_MEMORY;
  std::copy(parsed.begin(), parsed.end(), out);
  *ids = out;
  *count = parsed.size();
  return SR_OK;
}

int sr_shape_id_list_contains(const uint64_t* ids, size_t count, uint64_t shape_id, size_t* cursor) noexcept {
  // The lower bound of shape_id lies in [lo, hi).
  size_t lo = 0, hi = count;
  const size_t c = *cursor;
  if (c < count && ids[c] < shape_id) {
    // Every id before lo is below shape_id; probe lo + 1, lo + 3, lo + 7, ...
    lo = c + 1;
    size_t step = 1;
    while (lo + step <= count && ids[lo + step - 1] < shape_id) {
      lo += step;
      step *= 2;
    }
    hi = lo + step <= count ? lo + step - 1 : count;
  } else if (c <= count && (c == 0 || ids[c - 1] < shape_id)) {
    lo = hi = c;  // after the id at c - 1 (if any), and not after the one at c
  }
  const uint64_t* at = std::lower_bound(ids + lo, ids + hi, shape_id);
  *cursor = static_cast<size_t>(at - ids);
  return at != ids + count && *at == shape_id ? 1 : 0;
}

}  // extern "C"
