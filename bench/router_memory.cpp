// Memory of the router at scale: loads N single-key shapes (as a catalog load
// does: bulk, then one index build) and prints the peak and steady growth of
// this process per shape, read from /proc/self/status (VmHWM, VmRSS).
//
//   bench/bin/router_memory [shapes=1000000] [blob_bytes=28] [shared=1]
//
// The blob stands for the bytes the router stores for a shape's definition
// (sr_router_add_shape_spec encodes it so): 28 bytes for a shape `user_id = k`
// (a 4-byte header, the 22-byte program, the column the WHERE reads), of which
// the program's 8 bytes of constants (k) are the shape's own: shared=1 passes
// them as such, as the plugin's definitions are, so the shapes share the rest;
// shared=0 keeps every blob whole. It calls the core's Router directly.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "shape_router/flat_map.hpp"
#include "shape_router/router.hpp"

namespace {

long status_kb(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long value = -1;
  const size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') value = std::atol(line + n + 1);
  std::fclose(f);
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t shapes = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const size_t blob_bytes = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 28;
  const bool shared = argc > 3 ? std::atoi(argv[3]) != 0 : true;
  std::vector<uint8_t> blob(blob_bytes, 0x5a);
  const size_t own_len = blob_bytes >= 10 ? 8 : 0;
  const size_t own_offset = !shared ? SR_BLOB_UNSHARED : blob_bytes >= 10 ? blob_bytes - 10 : 0;

  const long rss0 = status_kb("VmRSS"), hwm0 = status_kb("VmHWM");
  auto* router = new shape_router::Router();
  const auto load_start = std::chrono::steady_clock::now();
  router->begin_bulk_load(shapes);
  for (size_t i = 0; i < shapes; i++) {
    const uint64_t key = shape_router::mix64(i + 1);
    const uint64_t constant = i + 1;  // the shape's k
    if (own_len > 0) std::memcpy(&blob[blob_bytes - 10], &constant, own_len);
    const sr_index_atom atom{key, 0, 2, 1, SR_ATOM_EQUAL, 0, 0, 0};
    const uint32_t one = 1;
    const sr_cover cover{&atom, &one, 1, 0};
    router->add_shape(1000 + i, 16384, nullptr, cover, blob.data(), blob.size(), own_offset, own_len);
  }
  const long hwm_loaded = status_kb("VmHWM"), rss_loaded = status_kb("VmRSS");
  const auto build_start = std::chrono::steady_clock::now();
  const double load_seconds = std::chrono::duration<double>(build_start - load_start).count();
  router->end_bulk_load();
  const double build_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - build_start).count();
  const long rss1 = status_kb("VmRSS"), hwm1 = status_kb("VmHWM");
  const shape_router::IndexStats stats = router->index_stats();
  std::printf("shapes %zu, blob %zu B (%s): load %.3f s, index build %.3f s; peak +%.1f B/shape, after load +%.1f B/shape "
              "(before the index build: peak +%.1f, RSS +%.1f; index: static %.1f B/key, key store %.1f B/shape)\n",
              shapes, blob_bytes, shared ? "constants own, rest shared" : "unshared", load_seconds, build_seconds, (hwm1 - hwm0) * 1024.0 / shapes, (rss1 - rss0) * 1024.0 / shapes,
              (hwm_loaded - hwm0) * 1024.0 / shapes, (rss_loaded - rss0) * 1024.0 / shapes,
              static_cast<double>(stats.static_bytes) / shapes, static_cast<double>(stats.key_store_bytes) / shapes);
  delete router;
  return 0;
}
