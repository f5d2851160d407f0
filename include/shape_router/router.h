/*
 * shape_router core — the C API the PostgreSQL shell calls.
 *
 * The shell (src/pg, plain C) owns everything PostgreSQL; the core (src/core, C++)
 * owns the routing structures. Every function here is noexcept: C++ exceptions are
 * turned into a status before they can reach a PostgreSQL frame, and the core never
 * calls PostgreSQL. This header includes no PostgreSQL header on purpose.
 */
#ifndef SHAPE_ROUTER_ROUTER_H
#define SHAPE_ROUTER_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define SR_NOEXCEPT noexcept
extern "C" {
#else
#define SR_NOEXCEPT
#endif

typedef enum sr_status
{
	SR_OK = 0,
	SR_OUT_OF_MEMORY,
	SR_INVALID_ARGUMENT,
	SR_INTERNAL_ERROR
} sr_status;

/* One shape as the hot path sees it: its id and the shell's per-shape state. */
typedef struct sr_shape_ref
{
	uint64_t	shape_id;
	void	   *payload;
} sr_shape_ref;

/* Funnel counters (DESIGN.md §7). The core counts what it decides; the shell
 * counts what it evaluates and emits, through the same struct. */
typedef struct sr_counters
{
	uint64_t	changes_seen;		/* row changes (and truncates) offered to the router */
	uint64_t	relation_gate_passes;	/* of those, on a relation with at least one shape */
	uint64_t	filter_passes;		/* presence filter said "maybe" (routing index issue) */
	uint64_t	mphf_hits;			/* perfect-hash slot fingerprint matched (routing index issue) */
	uint64_t	gate_evaluations;	/* program runs (one per row version per shape, or one for an UPDATE that left the WHERE's columns alone) */
	uint64_t	fallback_evaluations;	/* FALLBACK leaves evaluated by PostgreSQL's executor */
	uint64_t	records_emitted;	/* routed records written, begin/commit excluded */
	uint64_t	errors;				/* predicate errors turned into error records */
	uint64_t	catalog_changes;	/* shape registrations/drops applied from the stream */
} sr_counters;

typedef struct sr_router sr_router;

/* Creates an empty router. On failure *out is NULL and the status says why. */
sr_status	sr_router_create(sr_router **out) SR_NOEXCEPT;
void		sr_router_destroy(sr_router *router) SR_NOEXCEPT;

/*
 * Adds shape_id on relation relid with the given payload. Idempotent: adding a
 * shape that is already present replaces its payload and returns the old one in
 * *previous (NULL otherwise) so the shell can free it. A shape id may not move to
 * another relation (SR_INVALID_ARGUMENT). shape_id and relid must be non-zero.
 */
sr_status	sr_router_add_shape(sr_router *router, uint64_t shape_id, uint32_t relid,
								void *payload, void **previous) SR_NOEXCEPT;

/* Removes shape_id; *payload gets its payload, or NULL if it was not present. */
sr_status	sr_router_drop_shape(sr_router *router, uint64_t shape_id,
								 void **payload) SR_NOEXCEPT;

/*
 * The relation gate: the shapes of relid in ascending shape_id order, or 0 when
 * the relation has none. The array stays valid until the next add or drop.
 */
size_t		sr_router_relation_shapes(const sr_router *router, uint32_t relid,
									  const sr_shape_ref **shapes) SR_NOEXCEPT;

/* Calls visit(shape, arg) for every shape, in no particular order. */
void		sr_router_for_each_shape(const sr_router *router,
									 void (*visit) (const sr_shape_ref *shape, void *arg),
									 void *arg) SR_NOEXCEPT;

size_t		sr_router_shape_count(const sr_router *router) SR_NOEXCEPT;
/* Relations that currently have at least one shape. */
size_t		sr_router_relation_count(const sr_router *router) SR_NOEXCEPT;
sr_counters *sr_router_counters(sr_router *router) SR_NOEXCEPT;

const char *sr_status_message(sr_status status) SR_NOEXCEPT;

/*
 * Parses the plugin's `shapes` option: comma-separated positive 64-bit ids, blanks
 * around ids allowed. On success *ids (malloc'ed, caller frees with free()) holds
 * the ids sorted ascending without duplicates. On failure returns
 * SR_INVALID_ARGUMENT and *bad_offset is the byte offset of the offending item.
 */
sr_status	sr_parse_shape_id_list(const char *text, uint64_t **ids, size_t *count,
								   size_t *bad_offset) SR_NOEXCEPT;

/* Binary search in a list made by sr_parse_shape_id_list. */
int			sr_shape_id_list_contains(const uint64_t *ids, size_t count,
									  uint64_t shape_id) SR_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif							/* SHAPE_ROUTER_ROUTER_H */
