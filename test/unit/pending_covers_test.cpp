// PendingCovers: covers packed while a bulk load runs read back exactly as
// added (every atom field, zero or not), in order, without the dropped ones.
#include "shape_router/pending_covers.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <algorithm>
#include <map>
#include <new>
#include <random>
#include <tuple>
#include <vector>

using shape_router::PendingCovers;

namespace {

struct Spec {
  uint32_t relid;
  uint16_t column;
  uint32_t exact;
  std::vector<uint32_t> sizes;
  std::vector<sr_index_atom> atoms;
};

sr_cover cover_of(const Spec& s) {
  return sr_cover{s.atoms.data(), s.sizes.data(), s.sizes.size(), s.exact};
}

bool same_atom(const sr_index_atom& a, const sr_index_atom& b) {
  return a.key == b.key && a.upper == b.upper && a.lower == b.lower && a.attnum == b.attnum && a.tag == b.tag &&
         a.kind == b.kind && a.range_attnum == b.range_attnum && a.range_tag == b.range_tag;
}

Spec random_spec(std::mt19937_64& rng) {
  Spec s;
  s.relid = static_cast<uint32_t>(rng());
  s.column = static_cast<uint16_t>(rng());
  s.exact = static_cast<uint32_t>(rng() % (1u << 16));
  const size_t alternatives = 1 + rng() % SR_COVER_MAX_ALTERNATIVES;
  // Fields are zero half the time: the packing leaves zeros out.
  auto field = [&](int bits) -> uint64_t {
    if (rng() % 2) return 0;
    const uint64_t v = rng();
    return bits == 64 ? v : v & ((uint64_t{1} << bits) - 1);
  };
  for (size_t a = 0; a < alternatives; a++) {
    const uint32_t n = static_cast<uint32_t>(rng() % 5);
    s.sizes.push_back(n);
    for (uint32_t i = 0; i < n; i++) {
      sr_index_atom atom{};
      atom.key = field(64);
      atom.upper = field(64);
      atom.lower = field(64);
      atom.attnum = static_cast<uint16_t>(field(16));
      atom.tag = static_cast<uint8_t>(field(8));
      atom.kind = static_cast<uint8_t>(rng() % 10);
      atom.range_attnum = static_cast<uint16_t>(field(16));
      atom.range_tag = static_cast<uint8_t>(field(8));
      s.atoms.push_back(atom);
    }
  }
  return s;
}

void expect_same(const PendingCovers::Entry& e, uint32_t slot, const Spec& s) {
  ASSERT_EQ(e.slot, slot);
  EXPECT_EQ(e.relid, s.relid);
  EXPECT_EQ(e.home_column, s.column);
  EXPECT_EQ(e.cover.exact_alternatives, s.exact);
  ASSERT_EQ(e.cover.alternative_count, s.sizes.size());
  for (size_t a = 0; a < s.sizes.size(); a++) EXPECT_EQ(e.cover.alternative_sizes[a], s.sizes[a]);
  for (size_t i = 0; i < s.atoms.size(); i++) EXPECT_TRUE(same_atom(e.cover.atoms[i], s.atoms[i])) << i;
}

}  // namespace

TEST(PendingCovers, RoundTripsEveryFieldInOrder) {
  std::mt19937_64 rng(7);
  PendingCovers p;
  std::vector<std::pair<uint32_t, Spec>> added;
  for (uint32_t slot = 0; slot < 3000; slot += 1 + rng() % 3) {
    added.emplace_back(slot, random_spec(rng));
    p.add(slot, added.back().second.relid, added.back().second.column, cover_of(added.back().second));
  }
  EXPECT_EQ(p.size(), added.size());
  size_t i = 0;
  p.for_each([&](const PendingCovers::Entry& e) {
    ASSERT_LT(i, added.size());
    expect_same(e, added[i].first, added[i].second);
    i++;
  });
  EXPECT_EQ(i, added.size());
}

TEST(PendingCovers, DroppedAndUndoneCoversAreNotRead) {
  std::mt19937_64 rng(11);
  PendingCovers p;
  std::map<uint32_t, Spec> live;
  for (uint32_t slot = 0; slot < 2000; slot++) {
    Spec s = random_spec(rng);
    p.add(slot, s.relid, s.column, cover_of(s));
    if (rng() % 5 == 0) {
      p.remove_last(slot);  // a registration that failed after its cover was kept
      EXPECT_FALSE(p.contains(slot));
      continue;
    }
    live[slot] = s;
    if (rng() % 4 == 0) {
      EXPECT_TRUE(p.drop(slot));
      EXPECT_FALSE(p.drop(slot));
      live.erase(slot);
    }
  }
  EXPECT_EQ(p.size(), live.size());
  auto it = live.begin();
  p.for_each([&](const PendingCovers::Entry& e) {
    ASSERT_NE(it, live.end());
    expect_same(e, it->first, it->second);
    ++it;
  });
  EXPECT_EQ(it, live.end());
  p.clear();
  EXPECT_TRUE(p.empty());
  EXPECT_FALSE(p.contains(0));
  size_t seen = 0;
  p.for_each([&](const PendingCovers::Entry&) { seen++; });
  EXPECT_EQ(seen, 0u);
}

TEST(PendingCovers, RefusesASlotTwiceAndBadCovers) {
  PendingCovers p;
  sr_index_atom atom{};
  atom.key = 5;
  const uint32_t one = 1;
  const sr_cover cover{&atom, &one, 1, 0};
  p.add(3, 1, 1, cover);
  EXPECT_THROW(p.add(3, 1, 1, cover), std::invalid_argument);
  const sr_cover none{&atom, &one, 0, 0};
  EXPECT_THROW(p.add(4, 1, 1, none), std::invalid_argument);
  atom.kind = 16;  // kinds have four bits
  EXPECT_THROW(p.add(5, 1, 1, cover), std::invalid_argument);
  EXPECT_FALSE(p.contains(5));
  EXPECT_EQ(p.size(), 1u);
}

TEST(PendingCovers, PackedSmallerThanAtoms) {
  // The mix's typical deferred cover: two equality alternatives.
  sr_index_atom atoms[2]{};
  atoms[0].key = 0x1234567890abcdefULL;
  atoms[0].attnum = 5;
  atoms[1].key = 0xfedcba0987654321ULL;
  atoms[1].attnum = 4;
  const uint32_t sizes[2] = {1, 1};
  PendingCovers p;
  for (uint32_t slot = 0; slot < 10000; slot++) p.add(slot, 1, 4, sr_cover{atoms, sizes, 2, 3});
  // 6 bytes of entry header and sizes, 11 per atom: 28 a shape, against 40 + 2 * 32 + 2 * 4 unpacked.
  EXPECT_LE(p.bytes(), 10000u * 28 + 4 + 4096);  // (the first relid, the slot bitmap)
}

// for_each_ahead reads the same covers as for_each, and hands ahead every
// atom's kind, column and key (of dropped covers too) `distance` covers early.
TEST(PendingCovers, AheadSeesEveryAtomBeforeItsCover) {
  std::mt19937_64 rng(13);
  PendingCovers p;
  std::vector<std::pair<uint32_t, Spec>> added;
  for (uint32_t slot = 0; slot < 1500; slot++) {
    added.emplace_back(slot, random_spec(rng));
    p.add(slot, added.back().second.relid, added.back().second.column, cover_of(added.back().second));
  }
  for (uint32_t slot = 0; slot < 1500; slot += 7) p.drop(slot);
  for (size_t distance : {0, 1, 8, 5000}) {
    std::vector<std::tuple<uint32_t, uint8_t, uint16_t, uint64_t>> skimmed;
    size_t covers_read = 0, index = 0;
    p.for_each_ahead(
        distance,
        [&](uint32_t relid, const sr_index_atom& a) { skimmed.emplace_back(relid, a.kind, a.attnum, a.key); },
        [&](const PendingCovers::Entry& e) {
          while (added[index].first != e.slot) index++;  // dropped ones skipped
          expect_same(e, added[index].first, added[index].second);
          covers_read++;
          // every cover up to distance past this one has been skimmed
          size_t atoms_due = 0;
          for (size_t c = 0; c <= std::min(added.size() - 1, index + distance); c++)
            atoms_due += added[c].second.atoms.size();
          EXPECT_GE(skimmed.size(), atoms_due);
        });
    EXPECT_EQ(covers_read, p.size());
    size_t k = 0;
    for (const auto& [slot, spec] : added)
      for (const sr_index_atom& a : spec.atoms) {
        ASSERT_LT(k, skimmed.size());
        EXPECT_EQ(skimmed[k], std::make_tuple(spec.relid, a.kind, a.attnum, a.key)) << k;
        k++;
      }
    EXPECT_EQ(k, skimmed.size());
  }
}

// Covers over many chunks, slots out of order and relids changing, read back
// by drain() (which frees each chunk once read) as they were added.
TEST(PendingCovers, DrainReadsEveryChunkAndFreesThem) {
  std::mt19937_64 rng(19);
  PendingCovers p;
  std::vector<std::pair<uint32_t, Spec>> added;
  std::vector<uint32_t> slots(60000);
  for (uint32_t i = 0; i < slots.size(); i++) slots[i] = i * 3 + 1;
  std::shuffle(slots.begin(), slots.end(), rng);
  for (uint32_t slot : slots) {
    Spec s = random_spec(rng);
    if (rng() % 4 != 0 && !added.empty()) s.relid = added.back().second.relid;  // runs of one relation
    added.emplace_back(slot, s);
    p.add(slot, s.relid, s.column, cover_of(s));
  }
  for (size_t i = 0; i < added.size(); i += 5) p.drop(added[i].first);
  const size_t full = p.bytes();
  ASSERT_GT(full, size_t{3} << 20);  // several chunks
  size_t index = 0, covers = 0, least = full;
  p.drain(8, [](uint32_t, const sr_index_atom&) {}, [&](const PendingCovers::Entry& e) {
    while (added[index].first != e.slot) index++;
    expect_same(e, added[index].first, added[index].second);
    covers++;
    least = std::min(least, p.bytes());
  });
  EXPECT_EQ(covers, added.size() - (added.size() + 4) / 5);
  EXPECT_LT(least, full / 2);  // chunks read were freed while draining
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.bytes(), 0u);
}

// A drain whose callback throws leaves nothing behind: what is left could not
// be decoded without the chunks already freed.
TEST(PendingCovers, DrainThatThrowsLeavesNothing) {
  std::mt19937_64 rng(23);
  PendingCovers p;
  for (uint32_t slot = 0; slot < 60000; slot++) {
    Spec s = random_spec(rng);
    p.add(slot, s.relid, s.column, cover_of(s));
  }
  size_t read = 0;
  EXPECT_THROW(p.drain(8, [](uint32_t, const sr_index_atom&) {},
                       [&](const PendingCovers::Entry&) {
                         if (++read == 40000) throw std::bad_alloc();
                       }),
               std::bad_alloc);
  EXPECT_TRUE(p.empty());
  EXPECT_FALSE(p.contains(50000));
  size_t seen = 0;
  p.for_each([&](const PendingCovers::Entry&) { seen++; });
  EXPECT_EQ(seen, 0u);
}
