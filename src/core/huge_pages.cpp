// Huge-page advice for a bulk load's tables (include/shape_router/huge_pages.hpp).
#include "shape_router/huge_pages.hpp"

#include <cstdint>

#include <sys/mman.h>

namespace shape_router {

namespace {
constexpr uintptr_t kPage = 4096;
}  // namespace

bool advise_huge_pages(const void* data, size_t bytes) noexcept {
#ifdef MADV_HUGEPAGE
  if (data == nullptr || bytes < kHugeAdviceMinBytes) return false;
  // The 4 KB pages the region spans: the kernel maps a huge page for each 2 MB
  // block of the mapping the advice covers whole. (The first and last page may
  // also hold the allocator's bookkeeping or a neighbour: advice is a hint.)
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t first = begin & ~(kPage - 1);
  const uintptr_t last = (begin + bytes + kPage - 1) & ~(kPage - 1);
  return madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE) == 0;
#else
  (void)data;
  (void)bytes;
  return false;
#endif
}

}  // namespace shape_router
