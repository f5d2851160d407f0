// The router's C++ face: the relation gate and the per-relation shape lists.
// The C API in router.h wraps this class; unit tests use it directly.
#pragma once

#include <cstdint>
#include <vector>

#include "shape_router/flat_map.hpp"
#include "shape_router/router.h"

namespace shape_router {

class Router {
 public:
  // Adds or replaces; returns the replaced payload (nullptr when new).
  // Throws std::invalid_argument for a zero id/relid or a shape moving relation.
  void* add_shape(uint64_t shape_id, uint32_t relid, void* payload);

  // Removes; returns the payload, or nullptr when the shape was not present.
  void* drop_shape(uint64_t shape_id);

  // Relation gate: one probe; shapes sorted by ascending id.
  const std::vector<sr_shape_ref>* relation_shapes(uint32_t relid) const noexcept {
    const uint32_t* slot = relation_slot_.find(relid);
    if (slot == nullptr) return nullptr;
    const std::vector<sr_shape_ref>& shapes = relations_[*slot].shapes;
    return shapes.empty() ? nullptr : &shapes;
  }

  size_t shape_count() const noexcept { return shape_relation_.size(); }
  size_t relation_count() const noexcept { return relations_with_shapes_; }
  sr_counters& counters() noexcept { return counters_; }

  template <typename Visit>
  void for_each_shape(Visit&& visit) const {
    for (const Relation& r : relations_)
      for (const sr_shape_ref& s : r.shapes) visit(s);
  }

 private:
  struct Relation {
    uint32_t relid = 0;
    std::vector<sr_shape_ref> shapes;  // ascending shape_id
  };

  FlatMap relation_slot_;   // relid -> index into relations_
  FlatMap shape_relation_;  // shape id -> relid
  std::vector<Relation> relations_;
  size_t relations_with_shapes_ = 0;
  sr_counters counters_{};
};

}  // namespace shape_router
