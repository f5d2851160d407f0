/*
 * shape_router core — the plugin's `shard` option: which slot owns a shape.
 *
 * A shape belongs to shard splitmix64(shape_id) mod n (splitmix64: the finalizer of
 * Steele, Lea and Flood's SplitMix64, applied to id + 0x9e3779b97f4a7c15). Ids come
 * from a sequence, so a plain `id mod n` would also balance; the mix keeps shards even
 * when ids are allocated with a stride or reused in patterns. The function is part of
 * the documented contract (README) and of SQL (shape_router.shard_of): consumers can
 * tell where a shape goes without asking the plugin.
 */
#ifndef SHAPE_ROUTER_SHARD_H
#define SHAPE_ROUTER_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "shape_router/router.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most shards a slot may be split into. */
#define SR_SHARD_MAX_COUNT 65536

/* The shard (0 <= result < count) of a shape; count must be >= 1. */
uint32_t	sr_shard_of(uint64_t shape_id, uint32_t count) SR_NOEXCEPT;

/*
 * Parses "i/n": decimal integers, 1 <= n <= SR_SHARD_MAX_COUNT, 0 <= i < n, blanks
 * around either number allowed. SR_INVALID_ARGUMENT for anything else.
 */
sr_status	sr_parse_shard(const char *text, uint32_t *index, uint32_t *count) SR_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
