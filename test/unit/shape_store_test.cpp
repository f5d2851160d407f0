// ShapeStore: entries inline and by shared form, read back whole, released,
// compacted and taken back, against a model of the blobs.
#include "shape_router/shape_store.hpp"
#include "shape_router/router.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <stdexcept>
#include <vector>

namespace {

using shape_router::ShapeStore;
using Bytes = std::vector<uint8_t>;

Bytes blob_of(const ShapeStore& store, uint32_t offset) {
  auto [p, n] = store.blob(offset);
  return p == nullptr ? Bytes() : Bytes(p, p + n);
}

TEST(ShapeStore, InlineAndSharedForms) {
  ShapeStore store;
  const Bytes a = {1, 2, 3, 9, 9, 4, 5}, b = {1, 2, 3, 7, 0, 4, 5}, c = {1, 2, 3, 7, 7, 4, 6};
  const uint32_t ea = store.add(3, 77, a.data(), a.size(), 3, 2);
  const uint32_t eb = store.add(3, 77, b.data(), b.size(), 3, 2);
  const uint32_t ec = store.add(3, 77, c.data(), c.size(), 3, 2);
  const uint32_t ed = store.add(0, 77, a.data(), a.size(), SR_BLOB_UNSHARED, 0);
  EXPECT_EQ(store.form_count(), 2u);  // a and b share one; c differs outside its own bytes
  EXPECT_EQ(blob_of(store, ea), a);
  EXPECT_EQ(blob_of(store, eb), b);  // a trailing zero own byte comes back
  EXPECT_EQ(blob_of(store, ec), c);
  EXPECT_EQ(blob_of(store, ed), a);
  EXPECT_EQ(store.entry(ea).index_attnum, 2);
  EXPECT_EQ(store.entry(ed).index_attnum, -1);
  EXPECT_GE(store.entry(ea).form, 0);
  EXPECT_EQ(store.entry(ed).form, -1);
  EXPECT_EQ(store.entry(eb).stored_len, 1u);
  store.release(ea);
  store.release(eb);
  EXPECT_EQ(store.form_count(), 1u);
  EXPECT_THROW(store.add(1, 77, a.data(), a.size(), 6, 2), std::invalid_argument);
}

// An entry gives its relation back; shapes of two relations never share a form.
TEST(ShapeStore, RelationKeptPerEntry) {
  ShapeStore store;
  const Bytes a = {1, 2, 3, 9, 9, 4, 5}, b = {1, 2, 3, 7, 0, 4, 5};
  const uint32_t ea = store.add(3, 100, a.data(), a.size(), 3, 2);
  const uint32_t eb = store.add(3, 200, b.data(), b.size(), 3, 2);
  const uint32_t ec = store.add(3, 100, b.data(), b.size(), 3, 2);
  const uint32_t ed = store.add(0, 0xfedcba98u, a.data(), a.size(), SR_BLOB_UNSHARED, 0);
  EXPECT_EQ(store.form_count(), 2u);
  EXPECT_EQ(store.entry(ea).form, store.entry(ec).form);
  EXPECT_EQ(store.entry(ea).relid, 100u);
  EXPECT_EQ(store.entry(eb).relid, 200u);
  EXPECT_EQ(store.entry(ec).relid, 100u);
  EXPECT_EQ(store.entry(ed).relid, 0xfedcba98u);
  EXPECT_EQ(blob_of(store, eb), b);
  EXPECT_EQ(blob_of(store, ed), a);
}

TEST(ShapeStore, UndoAddLeavesNothing) {
  ShapeStore store;
  const Bytes a = {5, 6, 7, 8};
  const uint32_t kept = store.add(2, 77, a.data(), a.size(), 1, 1);
  const size_t bytes = store.bytes();
  const uint32_t e = store.add(2, 77, a.data(), a.size(), 1, 1);
  store.undo_add(e);
  EXPECT_EQ(store.bytes(), bytes);
  EXPECT_EQ(store.form_count(), 1u);
  store.release(kept);
  EXPECT_EQ(store.form_count(), 0u);
}

// Random adds and releases with compaction: every live entry reads back its blob.
TEST(ShapeStore, CompactionKeepsLiveEntries) {
  ShapeStore store;
  std::mt19937_64 rng(11);
  std::map<uint64_t, std::pair<uint32_t, Bytes>> live;  // id -> (offset, blob)
  store.begin_bulk(1000);
  for (uint64_t id = 1; id <= 60000; id++) {
    Bytes blob(40 + rng() % 40);
    for (size_t i = 0; i < blob.size(); i++) blob[i] = static_cast<uint8_t>(i < 8 ? rng() % 4 : i);
    const bool shared = rng() % 2 == 0;
    live[id] = {store.add(static_cast<uint16_t>(1 + rng() % 3), 77, blob.data(), blob.size(),
                          shared ? 0 : SR_BLOB_UNSHARED, shared ? 8 : 0),
                blob};
    if (id == 1000) store.end_bulk();
    if (rng() % 3 != 0) {
      auto it = live.lower_bound(1 + rng() % id);
      if (it != live.end()) {
        store.release(it->second.first);
        live.erase(it);
      }
    }
    store.compact_if_due([&](auto&& visit) {
      for (auto& [shape, entry] : live) visit(entry.first);
    });
  }
  EXPECT_LT(store.bytes(), 60000u * 40);  // compacted at least once
  for (const auto& [shape, entry] : live) ASSERT_EQ(blob_of(store, entry.first), entry.second) << shape;
}

}  // namespace
