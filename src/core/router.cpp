// Router: relation gate plus sorted per-relation shape lists, and the C API
// that the PostgreSQL shell calls. No PostgreSQL header may be included here.
#include "shape_router/router.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#ifdef POSTGRES_H
#error "the shape_router core must not include PostgreSQL headers"
#endif

namespace shape_router {
namespace {

bool shape_id_less(const sr_shape_ref& a, uint64_t id) { return a.shape_id < id; }

}  // namespace

void* Router::add_shape(uint64_t shape_id, uint32_t relid, void* payload) {
  if (shape_id == 0 || relid == 0) throw std::invalid_argument("shape id and relation must be non-zero");

  if (const uint32_t* known_relid = shape_relation_.find(shape_id)) {
    if (*known_relid != relid) throw std::invalid_argument("shape already registered on another relation");
    std::vector<sr_shape_ref>& shapes = relations_[*relation_slot_.find(relid)].shapes;
    auto it = std::lower_bound(shapes.begin(), shapes.end(), shape_id, shape_id_less);
    void* previous = it->payload;
    it->payload = payload;
    return previous;
  }

  uint32_t slot;
  if (const uint32_t* found = relation_slot_.find(relid)) {
    slot = *found;
  } else {
    slot = static_cast<uint32_t>(relations_.size());
    relations_.push_back(Relation{relid, {}});
    relation_slot_.put(relid, slot);
  }
  std::vector<sr_shape_ref>& shapes = relations_[slot].shapes;
  // Both structures change or neither does: the directory entry is undone if
  // the list insert throws (bad_alloc).
  shape_relation_.put(shape_id, relid);
  try {
    // Ids come from a sequence, so appending is the common case.
    if (shapes.empty() || shapes.back().shape_id < shape_id)
      shapes.push_back(sr_shape_ref{shape_id, payload});
    else
      shapes.insert(std::lower_bound(shapes.begin(), shapes.end(), shape_id, shape_id_less),
                    sr_shape_ref{shape_id, payload});
  } catch (...) {
    shape_relation_.erase(shape_id);
    throw;
  }
  if (shapes.size() == 1) ++relations_with_shapes_;
  return nullptr;
}

void* Router::drop_shape(uint64_t shape_id) {
  const uint32_t* relid = shape_relation_.find(shape_id);
  if (relid == nullptr) return nullptr;
  std::vector<sr_shape_ref>& shapes = relations_[*relation_slot_.find(*relid)].shapes;
  auto it = std::lower_bound(shapes.begin(), shapes.end(), shape_id, shape_id_less);
  void* payload = it->payload;
  shapes.erase(it);
  if (shapes.empty()) --relations_with_shapes_;
  shape_relation_.erase(shape_id);
  return payload;
}

}  // namespace shape_router

using shape_router::Router;

struct sr_router {
  Router router;
};

namespace {

// The one place where C++ exceptions become statuses.
template <typename Body>
sr_status guarded(Body&& body) noexcept {
  try {
    body();
    return SR_OK;
  } catch (const std::bad_alloc&) {
    return SR_OUT_OF_MEMORY;
  } catch (const std::invalid_argument&) {
    return SR_INVALID_ARGUMENT;
  } catch (...) {
    return SR_INTERNAL_ERROR;
  }
}

}  // namespace

extern "C" {

sr_status sr_router_create(sr_router** out) noexcept {
  *out = nullptr;
  return guarded([&] { *out = new sr_router(); });
}

void sr_router_destroy(sr_router* router) noexcept { delete router; }

sr_status sr_router_add_shape(sr_router* router, uint64_t shape_id, uint32_t relid, void* payload,
                              void** previous) noexcept {
  *previous = nullptr;
  return guarded([&] { *previous = router->router.add_shape(shape_id, relid, payload); });
}

sr_status sr_router_drop_shape(sr_router* router, uint64_t shape_id, void** payload) noexcept {
  *payload = nullptr;
  return guarded([&] { *payload = router->router.drop_shape(shape_id); });
}

size_t sr_router_relation_shapes(const sr_router* router, uint32_t relid, const sr_shape_ref** shapes) noexcept {
  const std::vector<sr_shape_ref>* found = router->router.relation_shapes(relid);
  if (found == nullptr) {
    *shapes = nullptr;
    return 0;
  }
  *shapes = found->data();
  return found->size();
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
  size_t pos = 0;
  const size_t len = std::strlen(text);
  bool malformed = false;
  sr_status status = guarded([&] {
    for (;;) {
      while (pos < len && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
      const size_t item_start = pos;
      uint64_t value = 0;
      bool digits = false;
      while (pos < len && text[pos] >= '0' && text[pos] <= '9') {
        const uint64_t digit = static_cast<uint64_t>(text[pos] - '0');
        if (value > (static_cast<uint64_t>(INT64_MAX) - digit) / 10) { digits = false; break; }
        value = value * 10 + digit;
        digits = true;
        ++pos;
      }
      while (pos < len && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
      if (!digits || value == 0 || (pos < len && text[pos] != ',')) {
        malformed = true;
        *bad_offset = item_start;
        return;
      }
      parsed.push_back(value);
      if (pos == len) break;
      ++pos;  // the comma
    }
    std::sort(parsed.begin(), parsed.end());
    parsed.erase(std::unique(parsed.begin(), parsed.end()), parsed.end());
  });
  if (status != SR_OK) return status;
  if (malformed) return SR_INVALID_ARGUMENT;
  uint64_t* out = static_cast<uint64_t*>(std::malloc(parsed.size() * sizeof(uint64_t)));
  if (out == nullptr) return SR_OUT_OF_MEMORY;
  std::copy(parsed.begin(), parsed.end(), out);
  *ids = out;
  *count = parsed.size();
  return SR_OK;
}

int sr_shape_id_list_contains(const uint64_t* ids, size_t count, uint64_t shape_id) noexcept {
  return std::binary_search(ids, ids + count, shape_id) ? 1 : 0;
}

}  // extern "C"
