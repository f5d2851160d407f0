// FormLane: one form's programs run together must decide every member as the
// per-shape VM decides it, on every row.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

#include "program_gen.hpp"
#include "shape_router/form_lane.hpp"

namespace {

using shape_router::FormLane;

// The tree with its Int and Float comparison constants drawn again: a
// program of the same form (the same code, constants of the same length).
void Redraw(Gen& gen, Node& n) {
  if (n.kind == Kind::Cmp && CatOf(n.tag) != Cat::Bytes) n.constant = gen.value(n.tag);
  for (Node& kid : n.kids) Redraw(gen, kid);
}

std::vector<uint8_t> Compile(const Node& tree) {
  Builder b;
  if (!Emit(b, tree)) return {};
  Program p = b.finish(0);
  if (!p) return {};
  return p.vec();
}

TEST(FormLane, MembersDecideAsTheVmDoes) {
  Gen gen(0x1A4E5EEDu);
  Tags tags;
  long outcomes[3] = {0, 0, 0}, lanes = 0, members_total = 0;
  for (int t = 0; t < 20000; t++) {
    if (t % 64 == 0) tags = gen.schema();
    Node tree = gen.tree(tags, 0, 1 + static_cast<int>(gen.below(6)));
    const std::vector<uint8_t> first = Compile(tree);
    ASSERT_FALSE(first.empty()) << Describe(tree);
    std::vector<FormLane::Column> columns;
    if (!FormLane::admits(first.data(), first.size(), columns)) {
      // Only a column read by NULL tests alone keeps a builder's program out.
      std::set<uint16_t> all, typed;
      RefColumns(tree, all);
      TypedColumns(tree, typed);
      ASSERT_NE(all, typed) << Describe(tree);
      continue;
    }
    for (const FormLane::Column& c : columns) EXPECT_EQ(c.tag, tags[c.attnum]) << Describe(tree);
    FormLane lane(first.data(), first.size(), columns);
    std::vector<std::vector<uint8_t>> programs;
    const size_t members = 1 + gen.below(40);
    for (size_t m = 0; m < members; m++) {
      std::vector<uint8_t> p = m == 0 ? first : (Redraw(gen, tree), Compile(tree));
      ASSERT_TRUE(lane.same_form(p.data(), p.size())) << Describe(tree);
      std::vector<FormLane::Column> cols;
      ASSERT_TRUE(FormLane::admits(p.data(), p.size(), cols));
      lane.add(static_cast<uint32_t>(100 + m), p.data());
      programs.push_back(std::move(p));
    }
    // Members leave from the middle: the last one takes the hole.
    if (members > 3 && gen.chance(30)) {
      const uint32_t gone = static_cast<uint32_t>(100 + gen.below(static_cast<uint32_t>(members)));
      ASSERT_TRUE(lane.remove(gone));
      ASSERT_FALSE(lane.remove(gone));
    }
    std::map<uint32_t, const std::vector<uint8_t>*> by_slot;
    for (size_t m = 0; m < programs.size(); m++) by_slot[static_cast<uint32_t>(100 + m)] = &programs[m];
    lanes++;
    std::vector<uint8_t> out(lane.size());
    for (int r = 0; r < 4; r++) {
      const std::vector<Datum> row = gen.row(tags);
      const RowBuf rb(tags, row);
      lane.evaluate(rb.data(), out.data());
      for (size_t m = 0; m < lane.size(); m++) {
        const std::vector<uint8_t>& p = *by_slot.at(lane.slot(m));
        const int expected = sr_program_eval(p.data(), rb.data(), nullptr, nullptr);
        ASSERT_EQ(out[m], expected) << "tree " << t << ": " << Describe(tree) << "\nrow: " << RowText(tags, row)
                                    << "\n" << Disassemble(p.data());
        outcomes[expected]++;
      }
      members_total += static_cast<long>(lane.size());
    }
  }
  for (int o = 0; o < 3; o++) EXPECT_GT(outcomes[o], 10000) << "outcome " << o;
  EXPECT_GT(lanes, 10000);
  EXPECT_GT(members_total, 200000);
}

TEST(FormLane, KeepsOutWhatItCannotRun) {
  std::vector<FormLane::Column> columns;
  {  // a FALLBACK leaf: the executor's part is the shape's own
    Builder b;
    ASSERT_EQ(sr_builder_fallback(b, 0), SR_OK);
    Program p = b.finish(1);
    EXPECT_FALSE(FormLane::admits(p.data(), p.size(), columns));
  }
  {  // a column only NULL-tested: no tag to read it with
    Builder b;
    ASSERT_EQ(sr_builder_null_test(b, 3, 1), SR_OK);
    Program p = b.finish(0);
    EXPECT_FALSE(FormLane::admits(p.data(), p.size(), columns));
  }
  {  // one column read with two tags
    Builder b;
    const sr_value one = IntV(1);
    ASSERT_EQ(sr_builder_group_begin(b, 1), SR_OK);
    ASSERT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 2, &one), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_DATE, 2, &one), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_group_end(b), SR_OK);
    Program p = b.finish(0);
    EXPECT_FALSE(FormLane::admits(p.data(), p.size(), columns));
  }
  {
    // A jump whose skipped code is no group's end: CONST TRUE, JUMP_IF_TRUE
    // over NOT. The VM leaves TRUE; run by every member it would be FALSE.
    // Valid for the validator, kept out of a lane.
    const uint8_t p[] = {'S', 1, 6, 0, 0, 0, 1, 0, 6, SR_TRUE, 14, 1, 0, 9};
    char err[64];
    const uint8_t tags[] = {SR_TAG_NONE};
    ASSERT_EQ(sr_program_validate(p, sizeof p, tags, 0, 0, err, sizeof err), SR_OK) << err;
    EXPECT_FALSE(FormLane::admits(p, sizeof p, columns));
  }
  {  // truncated or foreign bytes
    const uint8_t junk[] = {'S', 1, 200, 0, 0, 0, 1, 0, 6};
    EXPECT_FALSE(FormLane::admits(junk, sizeof junk, columns));
    EXPECT_FALSE(FormLane::admits(junk, 3, columns));
  }
  {  // an admitted program states its columns and their tags
    Builder b;
    const sr_value k = IntV(7);
    ASSERT_EQ(sr_builder_group_begin(b, 0), SR_OK);
    ASSERT_EQ(sr_builder_compare(b, SR_OP_EQ, SR_TAG_INT, 4, &k), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_compare_columns(b, SR_OP_LT, SR_TAG_FLOAT, 2, 3), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_null_test(b, 4, 0), SR_OK);
    ASSERT_EQ(sr_builder_group_term_done(b), SR_OK);
    ASSERT_EQ(sr_builder_group_end(b), SR_OK);
    Program p = b.finish(0);
    ASSERT_TRUE(FormLane::admits(p.data(), p.size(), columns));
    ASSERT_EQ(columns.size(), 3u);
    EXPECT_EQ(columns[0].attnum, 2);
    EXPECT_EQ(columns[0].tag, SR_TAG_FLOAT);
    EXPECT_EQ(columns[1].attnum, 3);
    EXPECT_EQ(columns[2].attnum, 4);
    EXPECT_EQ(columns[2].tag, SR_TAG_INT);
  }
}

// An array column against each member's element: the set is each member's.
TEST(FormLane, ArrayOperatorsPerMember) {
  std::vector<std::vector<uint8_t>> programs;
  FormLane* lane = nullptr;
  std::vector<FormLane::Column> columns;
  for (int64_t k = 0; k < 6; k++) {
    Builder b;
    const sr_value element = IntV(k);
    ASSERT_EQ(sr_builder_array(b, SR_ARRAY_ANY_EQ, SR_TAG_INT, 1, &element, 1, 0), SR_OK);
    Program p = b.finish(0);
    ASSERT_TRUE(FormLane::admits(p.data(), p.size(), columns));
    ASSERT_EQ(columns[0].tag, SR_TAG_INT | SR_TAG_ELEMENT_FLAG);
    programs.push_back(p.vec());
  }
  FormLane l(programs[0].data(), programs[0].size(), columns);
  lane = &l;
  for (size_t m = 0; m < programs.size(); m++) {
    ASSERT_TRUE(lane->same_form(programs[m].data(), programs[m].size()));
    lane->add(static_cast<uint32_t>(m), programs[m].data());
  }
  const sr_value elements[] = {IntV(1), IntV(4)};
  sr_value row[2] = {};
  row[1].v.bytes = reinterpret_cast<const uint8_t*>(elements);
  row[1].len = 2;
  row[1].has_null_element = 1;
  std::vector<uint8_t> out(lane->size());
  lane->evaluate(row, out.data());
  for (size_t m = 0; m < programs.size(); m++)
    EXPECT_EQ(out[m], sr_program_eval(programs[m].data(), row, nullptr, nullptr)) << m;
  EXPECT_EQ(out[1], SR_TRUE);
  EXPECT_EQ(out[0], SR_NULL);  // not found, and a NULL element
}

}  // namespace
