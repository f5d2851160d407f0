// Large tables a bulk load is about to fill, put on transparent huge pages
// where the kernel offers them on request (THP "madvise" mode, and "always"):
// their first touch then maps 2 MB at a time instead of 4 KB. A million-shape
// load writes about 110 MB of fresh memory, and on virtual machines a
// process's first touch of a 4 KB page can cost microseconds of CPU
// (bench/README.md, "The start and the pages it touches"). Only regions of a
// few MB are advised: a small table gains nothing, and a huge page half used
// holds memory the table never asked for. The kernel maps a huge page only
// for a 2 MB block the advice covers whole.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

namespace shape_router {

// Advises [data, data + bytes); false when nothing was advised (too small, or
// the kernel declined: no THP, or "never"). Never fails otherwise.
bool advise_huge_pages(const void* data, size_t bytes) noexcept;

// The smallest region advised.
constexpr size_t kHugeAdviceMinBytes = size_t{4} << 20;

// A vector's capacity, reserved and not yet written.
template <typename T, typename A>
bool advise_huge_pages(const std::vector<T, A>& v) noexcept {
  return advise_huge_pages(v.data(), v.capacity() * sizeof(T));
}

// v.reserve(n), with a new block of a few MB advised before the elements are
// moved into it (reserve would write them first, on 4 KB pages). v is
// unchanged if the allocation throws; elements whose moves may throw take a
// plain reserve.
template <typename T, typename A>
void reserve_on_huge_pages(std::vector<T, A>& v, size_t n) {
  if (n <= v.capacity()) return;
  if (n * sizeof(T) < kHugeAdviceMinBytes || !std::is_nothrow_move_constructible<T>::value) {
    v.reserve(n);
    return;
  }
  std::vector<T, A> fresh(v.get_allocator());
  fresh.reserve(n);
  advise_huge_pages(fresh);
  if constexpr (std::is_trivially_copyable<T>::value) {
    fresh.insert(fresh.end(), v.begin(), v.end());  // one copy of the bytes
  } else {
    for (T& x : v) fresh.emplace_back(std::move(x));
  }
  v.swap(fresh);
}

// Room for `more` elements past size(), growing geometrically (as push_back
// would) on huge pages once large.
template <typename T, typename A>
void reserve_more_on_huge_pages(std::vector<T, A>& v, size_t more) {
  if (v.capacity() - v.size() >= more) return;
  const size_t doubled = v.capacity() < 8 ? 8 : 2 * v.capacity();
  reserve_on_huge_pages(v, doubled > v.size() + more ? doubled : v.size() + more);
}

// n copies of value, on huge pages when large.
template <typename T>
std::vector<T> filled_on_huge_pages(size_t n, const T& value) {
  std::vector<T> v;
  v.reserve(n);
  advise_huge_pages(v);
  v.resize(n, value);
  return v;
}

}  // namespace shape_router
