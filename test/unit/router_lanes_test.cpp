// Form lanes in the router: scan shapes whose programs run together come back
// only when a row satisfies them, decided (SR_EXACT_*), and every one of them
// when the rows cannot be trusted; against a model that runs each program.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "program_helpers.hpp"
#include "shape_router/router.hpp"
#include "shape_router/shape_spec.hpp"

namespace {

using shape_router::Router;

constexpr uint32_t kRel = 77;

struct Shape {
  std::vector<uint8_t> program;
  bool fallback = false;  // has an executor part: stays a scan shape
  bool indexed = false;   // filed under a = key instead
  int64_t key = 0;
};

// a = k OR a < b; a IN (k, k + 1) AND b <> a; b >= k (with an executor part).
std::vector<uint8_t> program_of(int form, int64_t k) {
  Builder b;
  const sr_value v = IntV(k), w = IntV(k + 1);
  const sr_value list[] = {v, w};
  if (form == 0) {
    EXPECT_EQ(sr_builder_group_begin(b, 0), SR_OK);
    EXPECT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 1, &v), SR_OK);
    EXPECT_EQ(sr_builder_group_term_done(b), SR_OK);
    EXPECT_EQ(sr_builder_compare_columns(b, SR_OP_LT, SR_TAG_INT, 1, 2), SR_OK);
    EXPECT_EQ(sr_builder_group_term_done(b), SR_OK);
    EXPECT_EQ(sr_builder_group_end(b), SR_OK);
  } else if (form == 1) {
    EXPECT_EQ(sr_builder_group_begin(b, 1), SR_OK);
    EXPECT_EQ(sr_builder_in(b, SR_TAG_INT, 1, list, 2, 0, 0), SR_OK);
    EXPECT_EQ(sr_builder_group_term_done(b), SR_OK);
    EXPECT_EQ(sr_builder_compare_columns(b, SR_OP_NE, SR_TAG_INT, 2, 1), SR_OK);
    EXPECT_EQ(sr_builder_group_term_done(b), SR_OK);
    EXPECT_EQ(sr_builder_group_end(b), SR_OK);
  } else {
    EXPECT_EQ(sr_builder_group_begin(b, 1), SR_OK);
    EXPECT_EQ(sr_builder_compare(b, SR_OP_GE, SR_TAG_INT, 2, &v), SR_OK);
    EXPECT_EQ(sr_builder_group_term_done(b), SR_OK);
    EXPECT_EQ(sr_builder_fallback(b, 0), SR_OK);
    EXPECT_EQ(sr_builder_group_term_done(b), SR_OK);
    EXPECT_EQ(sr_builder_group_end(b), SR_OK);
  }
  Program p = b.finish(form == 2 ? 1 : 0);
  return p.vec();
}

void add(Router& r, uint64_t id, const Shape& s) {
  const int16_t where[] = {1, 2};
  sr_shape_spec spec{};
  spec.program = s.program.data();
  spec.program_len = static_cast<uint32_t>(s.program.size());
  spec.where_attnums = where;
  spec.where_count = 2;
  spec.column_count = -1;
  spec.fallback_text = s.fallback ? "(b > 0)" : nullptr;
  std::vector<uint8_t> blob;
  size_t own_offset = 0, own_len = 0;
  shape_router::encode_shape_spec(spec, blob, &own_offset, &own_len);
  sr_value key = IntV(s.key);
  const sr_index_atom atom{sr_index_key(kRel, 1, SR_TAG_INT, &key), 0, 1, SR_TAG_INT, SR_ATOM_EQUAL, 0, 0, 0};
  const uint32_t one = 1;
  const sr_cover on_key{&atom, &one, 1, 0}, scan{nullptr, nullptr, 0, 0};
  r.add_shape(id, kRel, nullptr, s.indexed ? on_key : scan, blob.data(), blob.size(), own_offset, own_len);
}

bool holds(const Shape& s, const sr_value* row) {
  return sr_program_eval(s.program.data(), row, [](void*, uint16_t) { return SR_TRUE; }, nullptr) == SR_TRUE;
}

TEST(RouterLanes, MembersComeBackDecidedAsTheirProgramsSay) {
  Router r;
  std::map<uint64_t, Shape> model;
  std::mt19937_64 rng(4242);
  auto value = [&] { return static_cast<int64_t>(rng() % 12); };
  size_t decided = 0, checks = 0;
  for (int op = 0; op < 40000; op++) {
    const uint64_t id = 1 + rng() % 600;
    if (rng() % 100 < 60) {
      Shape s;
      const int form = static_cast<int>(rng() % 3);
      s.key = value();
      s.program = program_of(form, s.key);
      s.fallback = form == 2;
      s.indexed = form == 0 && rng() % 4 == 0;  // the same form, filed in the index
      add(r, id, s);
      model[id] = s;
    } else if (model.count(id)) {
      EXPECT_NE(r.drop_shape(id), reinterpret_cast<void*>(1));
      model.erase(id);
    }
    if (op % 20 != 0) continue;
    // An INSERT, an UPDATE or a DELETE, rows of columns a (1) and b (2).
    sr_value new_values[3] = {NullV(), IntV(value()), rng() % 8 == 0 ? NullV() : IntV(value())};
    sr_value old_values[3] = {NullV(), IntV(value()), IntV(value())};
    const int kind = static_cast<int>(rng() % 3);
    const sr_row_view new_row{new_values, nullptr, nullptr, 0}, old_row{old_values, nullptr, nullptr, 0};
    const sr_row_view* n = kind == 2 ? nullptr : &new_row;
    const sr_row_view* o = kind == 0 ? nullptr : &old_row;
    const bool trusted = rng() % 10 != 0;
    const std::vector<sr_shape_ref> got = r.route(kRel, n, o, trusted);
    std::map<uint64_t, uint8_t> got_by_id;
    for (size_t i = 0; i < got.size(); i++) {
      if (i > 0) {
        ASSERT_LT(got[i - 1].shape_id, got[i].shape_id);
      }
      got_by_id[got[i].shape_id] = got[i].exact;
    }
    for (const auto& [sid, s] : model) {
      const bool lane = !s.fallback && !s.indexed;
      if (!lane) continue;  // scan and indexed shapes: as before (router_test)
      checks++;
      const bool on_new = n != nullptr && holds(s, new_values), on_old = o != nullptr && holds(s, old_values);
      auto it = got_by_id.find(sid);
      if (!trusted) {
        ASSERT_NE(it, got_by_id.end()) << sid;  // every shape, the shell decides
        EXPECT_EQ(it->second, 0) << sid;
        continue;
      }
      if (!on_new && !on_old) {
        EXPECT_EQ(it, got_by_id.end()) << "shape " << sid << " held on neither row";
        continue;
      }
      ASSERT_NE(it, got_by_id.end()) << "shape " << sid << " missed";
      EXPECT_EQ(it->second, SR_EXACT_DECIDED | (on_new ? SR_EXACT_NEW : 0) | (on_old ? SR_EXACT_OLD : 0)) << sid;
      decided++;
    }
    for (const auto& [sid, s] : model) {
      if (s.fallback) {
        EXPECT_TRUE(got_by_id.count(sid)) << "scan shape " << sid;  // still run by the shell
      }
    }
  }
  EXPECT_GT(decided, 10000u);
  EXPECT_GT(checks, 50000u);
  EXPECT_GT(r.counters().lane_runs, 1000u);
  EXPECT_GE(r.counters().lane_decisions, checks - checks / 5);
}

// Lane columns are index columns (the shell reads their values) while a lane
// member reads them, and make no key.
TEST(RouterLanes, ColumnsFollowTheMembers) {
  Router r;
  Shape s;
  s.program = program_of(0, 5);  // a = 5 OR a < b: columns 1 and 2
  add(r, 1, s);
  s.program = program_of(0, 6);
  add(r, 2, s);
  EXPECT_EQ(r.lane_shapes(), 2u);
  EXPECT_EQ(r.lane_forms(), 1u);
  s.program = program_of(1, 6);  // another form: another lane
  add(r, 3, s);
  EXPECT_EQ(r.lane_forms(), 2u);
  r.drop_shape(3);
  EXPECT_EQ(r.lane_forms(), 1u);
  Router::RelationView view = r.relation(kRel);
  ASSERT_EQ(view.index_column_count, 2u);
  EXPECT_EQ(view.index_columns[0].lane_shapes, 2u);
  EXPECT_EQ(view.index_columns[0].shapes, 0u);
  sr_value values[3] = {NullV(), IntV(5), IntV(1)};
  const sr_row_view row{values, nullptr, nullptr, 0};
  std::vector<sr_shape_ref> got = r.route(kRel, &row, nullptr, true);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].shape_id, 1u);
  EXPECT_EQ(r.counters().equality_probes, 0u);  // no key was made of a or b
  r.drop_shape(1);
  EXPECT_EQ(r.relation(kRel).index_column_count, 2u);
  r.drop_shape(2);
  EXPECT_EQ(r.relation(kRel).index_column_count, 0u);
  EXPECT_EQ(r.lane_shapes(), 0u);
  EXPECT_EQ(r.lane_forms(), 0u);
  EXPECT_TRUE(r.route(kRel, &row, nullptr, true).empty());
}

// A stale catalog row may read a column with another tag than the one it is
// filed with: the shell reads the value with the filed tag, so such a program
// stays a scan shape (run by the shell, which checks it against the table).
TEST(RouterLanes, AColumnFiledWithAnotherTagKeepsTheShapeOut) {
  Router r;
  const int16_t where[] = {1};
  auto add_program = [&](uint64_t id, const std::vector<uint8_t>& program) {
    sr_shape_spec spec{};
    spec.program = program.data();
    spec.program_len = static_cast<uint32_t>(program.size());
    spec.where_attnums = where;
    spec.where_count = 1;
    spec.column_count = -1;
    std::vector<uint8_t> blob;
    size_t own_offset = 0, own_len = 0;
    shape_router::encode_shape_spec(spec, blob, &own_offset, &own_len);
    const sr_cover scan{nullptr, nullptr, 0, 0};
    r.add_shape(id, kRel, nullptr, scan, blob.data(), blob.size(), own_offset, own_len);
  };
  {
    Builder b;
    ASSERT_EQ(sr_builder_like_prefix(b, 1, reinterpret_cast<const uint8_t*>("ab"), 2, 0), SR_OK);
    add_program(1, b.finish(0).vec());  // a LIKE 'ab%': a text column
  }
  {
    Builder b;
    const sr_value five = IntV(5);
    ASSERT_EQ(sr_builder_array(b, SR_ARRAY_ANY_EQ, SR_TAG_INT, 1, &five, 1, 0), SR_OK);
    add_program(2, b.finish(0).vec());  // 5 = ANY(a): the same column as int[]
  }
  EXPECT_EQ(r.lane_shapes(), 1u);
  ASSERT_EQ(r.relation(kRel).index_column_count, 1u);
  EXPECT_EQ(r.relation(kRel).index_columns[0].tag, SR_TAG_TEXT);
  const std::string text(40, 'z');
  sr_value values[2] = {NullV(), NullV()};
  values[1].is_null = 0;
  values[1].v.bytes = reinterpret_cast<const uint8_t*>(text.data());
  values[1].len = static_cast<uint32_t>(text.size());
  const sr_row_view row{values, nullptr, nullptr, 0};
  const std::vector<sr_shape_ref> got = r.route(kRel, &row, nullptr, true);
  ASSERT_EQ(got.size(), 1u);  // the scan shape, for the shell; the lane shape holds not
  EXPECT_EQ(got[0].shape_id, 2u);
  EXPECT_EQ(got[0].exact, 0);
}

}  // namespace
