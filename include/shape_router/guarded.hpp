// The one place where C++ exceptions become the C API's statuses: every
// extern "C" entry of the core runs its body through guarded().
#pragma once

#include <new>
#include <stdexcept>

#include "shape_router/router.h"

namespace shape_router {

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

}  // namespace shape_router
