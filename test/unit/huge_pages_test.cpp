// Unit tests of the huge-page advice for a bulk load's tables
// (include/shape_router/huge_pages.hpp).
#include "shape_router/huge_pages.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using shape_router::advise_huge_pages;
using shape_router::filled_on_huge_pages;
using shape_router::kHugeAdviceMinBytes;
using shape_router::reserve_more_on_huge_pages;
using shape_router::reserve_on_huge_pages;

// The bracketed choice of a THP setting file ("" when there is none).
std::string bracketed(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  const size_t open = line.find('['), close = line.find(']');
  return open == std::string::npos || close == std::string::npos ? "" : line.substr(open + 1, close - open - 1);
}

// The mode that applies to 2 MB pages: their own setting (kernels 6.8 on),
// unless it defers to the global one.
std::string thp_mode() {
  const std::string own = bracketed("/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled");
  return own.empty() || own == "inherit" ? bracketed("/sys/kernel/mm/transparent_hugepage/enabled") : own;
}

// A counter of /proc/vmstat (-1 when absent).
long vmstat(const std::string& name) {
  std::ifstream f("/proc/vmstat");
  std::string key;
  long value = 0;
  while (f >> key >> value)
    if (key == name) return value;
  return -1;
}

// AnonHugePages (kB) of the mapping holding p, from /proc/self/smaps.
long anon_huge_kb_of(const void* p) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  while (std::getline(f, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = lo <= at && at < hi;
      continue;
    }
    if (inside && line.rfind("AnonHugePages:", 0) == 0) return std::stol(line.substr(14));
  }
  return -1;
}

TEST(HugePages, SmallOrEmptyRegionsAreNotAdvised) {
  std::vector<uint8_t> small(kHugeAdviceMinBytes - 1);
  EXPECT_FALSE(advise_huge_pages(small));
  EXPECT_FALSE(advise_huge_pages(nullptr, 64u << 20));
  std::vector<uint64_t> none;
  EXPECT_FALSE(advise_huge_pages(none));
}

TEST(HugePages, ReserveKeepsTheElementsInOrder) {
  std::vector<uint64_t> v;
  for (uint64_t i = 0; i < 1000; i++) v.push_back(i * 7919);
  const size_t n = (kHugeAdviceMinBytes / sizeof(uint64_t)) * 3;
  reserve_on_huge_pages(v, n);
  ASSERT_GE(v.capacity(), n);
  ASSERT_EQ(v.size(), 1000u);
  for (uint64_t i = 0; i < 1000; i++) ASSERT_EQ(v[i], i * 7919);
  const uint64_t* data = v.data();
  for (uint64_t i = 1000; i < n; i++) v.push_back(i);  // within the reservation: no move
  EXPECT_EQ(v.data(), data);
  reserve_on_huge_pages(v, 10);  // never shrinks
  EXPECT_EQ(v.data(), data);
}

TEST(HugePages, GrowthIsGeometricAndKeepsTheElements) {
  std::vector<uint32_t> v;
  size_t reallocations = 0;
  const uint32_t* data = nullptr;
  for (uint32_t i = 0; i < 4'000'000; i++) {
    reserve_more_on_huge_pages(v, 1);
    if (v.data() != data) {
      reallocations++;
      data = v.data();
    }
    v.push_back(i);
  }
  EXPECT_LT(reallocations, 30u);
  for (uint32_t i = 0; i < 4'000'000; i += 4099) ASSERT_EQ(v[i], i);
  reserve_more_on_huge_pages(v, 5'000'000);
  EXPECT_GE(v.capacity(), v.size() + 5'000'000);
}

// Elements whose move may throw take a plain reserve (and keep their values).
struct MayThrow {
  std::vector<int> payload;
  MayThrow() = default;
  explicit MayThrow(int x) : payload{x} {}
  MayThrow(const MayThrow&) = default;
  MayThrow(MayThrow&& o) noexcept(false) : payload(std::move(o.payload)) {}
};

TEST(HugePages, ElementsWhoseMovesMayThrowAreCopiedByReserve) {
  std::vector<MayThrow> v;
  for (int i = 0; i < 10; i++) v.emplace_back(i);
  reserve_on_huge_pages(v, kHugeAdviceMinBytes / sizeof(MayThrow) + 1);
  ASSERT_EQ(v.size(), 10u);
  for (int i = 0; i < 10; i++) ASSERT_EQ(v[static_cast<size_t>(i)].payload.at(0), i);
}

TEST(HugePages, FilledHoldsTheValue) {
  const std::vector<uint32_t> v = filled_on_huge_pages<uint32_t>(3'000'000, 7);
  ASSERT_EQ(v.size(), 3'000'000u);
  for (size_t i = 0; i < v.size(); i += 997) ASSERT_EQ(v[i], 7u);
}

// The advice is taken: with THP on request only ("madvise"), a large table
// filled after the advice sits on huge pages, and one filled without it does not.
TEST(HugePages, AdvisedTablesAreMappedWithHugePages) {
  if (thp_mode() != "madvise") GTEST_SKIP() << "transparent huge pages are '" << thp_mode() << "', not 'madvise'";
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::string(tunables).find("hugetlb") != std::string::npos)
    GTEST_SKIP() << "glibc's malloc asks for huge pages itself (GLIBC_TUNABLES)";
  const long fallbacks = vmstat("thp_fault_fallback");
  const size_t n = (size_t{64} << 20) / sizeof(uint64_t);
  std::vector<uint64_t> advised = filled_on_huge_pages<uint64_t>(n, 1);
  std::vector<uint64_t> plain(n, 1);
  if (vmstat("thp_fault_fallback") != fallbacks)
    GTEST_SKIP() << "the kernel had no free huge page for some faults (thp_fault_fallback moved)";
  EXPECT_GT(anon_huge_kb_of(advised.data() + n / 2), 0);
  EXPECT_EQ(anon_huge_kb_of(plain.data() + n / 2), 0);
}

}  // namespace
