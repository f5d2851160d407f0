// The 64-bit mixer the routing index's hash structures draw their hashes from.
#pragma once

#include <cstdint>

#include "shape_router/flat_map.hpp"

namespace shape_router {

// A 64-bit mixer whose quality the structures depend on; tests can swap in a weak
// one to force collisions.
using Mixer = uint64_t (*)(uint64_t key, uint64_t seed);

inline uint64_t default_mixer(uint64_t key, uint64_t seed) { return mix64(key ^ mix64(seed + kGoldenGamma)); }

// The mixer on the lookup path: the default one inline, with its seed's half
// mixed once at build (seed_mix), instead of two calls through the pointer.
inline uint64_t mix_key(Mixer mixer, uint64_t key, uint64_t seed, uint64_t seed_mix) noexcept {
  return mixer == default_mixer ? mix64(key ^ seed_mix) : mixer(key, seed);
}

// The step between the seeds of a build's successive attempts (and between the
// perfect hash's pilot keys): odd, with its bits spread, so that consecutive
// multiples share no pattern the mixer could keep.
constexpr uint64_t kSeedStep = 0xd1b54a32d192ed03ULL;

}  // namespace shape_router
