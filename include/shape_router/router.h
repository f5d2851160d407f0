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

/*
 * One shape as the hot path sees it: its id and the shell's per-shape state
 * (NULL until the shell sets one). The definition the shell gave at
 * registration is read with sr_router_shape_spec.
 */
typedef struct sr_shape_ref
{
	uint64_t	shape_id;
	void	   *payload;
	uint32_t	slot;			/* for sr_router_set_payload, sr_router_shape_spec */
	uint8_t		exact;			/* SR_EXACT_* bits: 0 means the program decides */
} sr_shape_ref;

/*
 * A candidate whose WHERE is exactly its cover (sr_cover.exact_alternatives) is
 * decided by the index: SR_EXACT_DECIDED, with SR_EXACT_NEW when an atom holds
 * for the new row (the only row of an INSERT) and SR_EXACT_OLD when one holds for
 * the old row; its program need not run. Only with key_attnums given to
 * sr_router_candidates, and never for all_shapes.
 */
#define SR_EXACT_DECIDED 1
#define SR_EXACT_NEW 2
#define SR_EXACT_OLD 4

/* The core's stored bytes of a shape (Router::add_shape's own_offset): none shared with other shapes. */
#define SR_BLOB_UNSHARED ((size_t) -1)

/*
 * Funnel counters, declared once: X(name, meaning). The core counts what it
 * decides; the shell counts what it evaluates and emits, through the same
 * struct. The shell's decoding_stats() and its log line list them in this order.
 */
#define SR_COUNTERS(X) \
	X(changes_seen, "row changes (and truncates) offered to the router") \
	X(relation_gate_passes, "of those, on a relation with at least one shape") \
	X(filter_passes, "equality probes the presence filter let through") \
	X(mphf_hits, "equality probes whose perfect-hash slot fingerprint matched") \
	X(gate_evaluations, "program runs: one per row version per shape, or one for an UPDATE that left the WHERE's columns alone") \
	X(fallback_evaluations, "FALLBACK leaves evaluated by PostgreSQL's executor") \
	X(records_emitted, "routed records written, begin/commit excluded") \
	X(errors, "predicate errors turned into error records") \
	X(catalog_changes, "shape registrations and drops applied from the stream") \
	X(equality_probes, "row values looked up in the equality index") \
	X(range_probes, "row values looked up in a column's range index") \
	X(equality_candidates, "candidates the equality index returned, before deduplication") \
	X(range_candidates, "candidates the range index returned, before deduplication") \
	X(composite_candidates, "candidates composite atoms returned (a key and a threshold), before deduplication") \
	X(null_candidates, "candidates NULL atoms (col IS NULL) returned, before deduplication") \
	X(complement_candidates, "candidates complement atoms (col <> c, NOT IN, IS NOT NULL) returned, before deduplication") \
	X(always_candidates, "candidates that are whole-table shapes (no WHERE, or one that is always true)") \
	X(prefix_candidates, "candidates prefix atoms (col LIKE 'p%') returned, before deduplication") \
	X(element_candidates, "candidates array element atoms (x = ANY(arr), @>, &&) returned, before deduplication") \
	X(substring_candidates, "candidates substring atoms (col LIKE/ILIKE '%abc%') returned, before deduplication") \
	X(scan_candidates, "candidates that are scan shapes (no cover)") \
	X(exact_hits, "candidates the index decided without running their program (exact covers)") \
	X(shared_evaluations, "program runs saved: a row version's result reused from an identical shape (same relation, program, WHERE columns)") \
	X(prefetches, "changes whose next change's index lines were prefetched") \
	X(lane_runs, "form lane runs: a form's code run once over its scan shapes' constants, per row version") \
	X(lane_decisions, "scan shapes a form lane decided, per row version: no program run of their own") \
	X(expression_reuses, "FALLBACK leaves on an indexed expression answered from its value the decoder has (no executor call)") \
	X(native_expressions, "indexed expression values of integer arithmetic computed without the executor, per row version") \
	X(prefetched_keys_reused, "changes routed with the keys their prefetch had made (the rest of their keys made then)") \
	X(sieved_values, "equality probes of integer values the value sieve answered: no shape's key, none made")

typedef struct sr_counters
{
#define SR_COUNTER_FIELD(name, meaning) uint64_t name;
	SR_COUNTERS(SR_COUNTER_FIELD)
#undef SR_COUNTER_FIELD
} sr_counters;

/*
 * A column the relation's shapes are indexed on (layout shared with the core):
 * a row is probed with sr_index_key of its value when shapes > 0 or
 * complement_shapes > 0, the range index with sr_order_key of it when
 * range_shapes > 0, and, when the value is NULL, with a NULL probe when
 * null_shapes > 0 (sr_router_route does all this from the row's view).
 */
typedef struct sr_index_column
{
	uint16_t	attnum;
	uint8_t		tag;			/* sr_type_tag the keys were made with */
	uint16_t	substring_grams;	/* bit q - 1: some substring atom is a q-byte gram of the
									 * bytes, bit 8 + q - 1: of the lowered bytes (q <= 8) */
	uint32_t	shapes;			/* shapes with equality atoms on it */
	uint32_t	range_shapes;	/* shapes with range atoms on it */
	uint32_t	null_shapes;	/* shapes with NULL atoms on it */
	uint32_t	complement_shapes;	/* shapes with complement atoms on it */
	uint32_t	prefix_shapes;	/* shapes with prefix or substring atoms on it */
	uint64_t	prefix_lengths; /* bit L - 1: some prefix atom is L bytes long */
	uint32_t	lane_shapes;	/* scan shapes in a form lane that read it (its value only: no key) */
} sr_index_column;

/* A key_attnums entry of a prefix key (sr_prefix_key of the row's first L
 * bytes, one per length in prefix_lengths), not a value's key. */
#define SR_PREFIX_KEY_FLAG 0x8000
/* A key_attnums entry of a substring gram key (sr_substring_keys). */
#define SR_SUBSTRING_KEY_FLAG 0x4000

/* A row's value of a range column, or its NULL, for sr_router_candidates. */
typedef struct sr_range_probe
{
	uint64_t	key;			/* sr_order_key of the value (0 when is_null) */
	uint16_t	attnum;
	uint8_t		is_null;		/* the value is NULL: probes the column's NULL atoms only */
	uint32_t	place;			/* made by the router: its range column's place + 1 (0: none); ignored in probes a caller passes */
} sr_range_probe;

/*
 * A shape's cover: whenever its WHERE holds for a row, at least one atom of each
 * alternative holds for it. An equality atom is "column attnum (of type tag tag)
 * hashes to key" (sr_index_key); a range atom is "the order key (sr_order_key) of
 * column attnum lies in [key, upper]". Each alternative alone is a sound cover (a
 * conjunction offers one per indexable conjunct); the router files the shape
 * under the alternative whose atoms have the fewest shapes. An alternative with
 * no atom means the WHERE can never hold. alternative_count 0: no cover, a scan
 * shape.
 */
#define SR_ATOM_EQUAL 0
#define SR_ATOM_RANGE 1
#define SR_ATOM_COMPOSITE 2

/*
 * A NULL atom is "column attnum is NULL" (key unused). A complement atom is
 * "column attnum is not NULL, and its sr_index_key is none of the keys of the
 * upper atoms of kind SR_ATOM_EXCLUDED that follow it in its alternative"
 * (col <> c, NOT IN, IS NOT NULL with upper 0). An always atom holds for every
 * row (attnum and tag 0): a whole-table shape.
 */
#define SR_ATOM_NULL 3
#define SR_ATOM_COMPLEMENT 4
#define SR_ATOM_EXCLUDED 5
#define SR_ATOM_ALWAYS 6

/*
 * A prefix atom is "the bytes of text column attnum begin with a given upper
 * (1..SR_PREFIX_MAX) bytes, whose sr_prefix_key is key" (col LIKE 'p%'; a
 * longer literal is cut to its first SR_PREFIX_MAX bytes, a superset).
 */
#define SR_ATOM_PREFIX 7
#define SR_PREFIX_MAX 64

/*
 * An element atom is "some element of array column attnum has key key"
 * (sr_index_key with the element's tag; tag is that tag | SR_TAG_ELEMENT_FLAG):
 * x = ANY(arr), arr @> ARRAY[..] (one alternative per element), arr && ARRAY[..]
 * (one atom per element). The column's keys are the elements' keys, which
 * sr_router_route makes from the row's value (its elements).
 */
#define SR_ATOM_ELEMENT 8
#define SR_TAG_ELEMENT_FLAG 0x80

/*
 * A substring atom is "the bytes of text column attnum (lowered as lower() does
 * under the column's collation, when lower is 1) contain a given gram of upper
 * (1..SR_SUBSTRING_GRAM) bytes, whose sr_substring_key is key": one gram of a
 * literal LIKE or ILIKE needs (col ILIKE '%abc%'). Never exact. sr_router_route
 * makes the row's gram keys (sr_substring_keys) for each length in the column's
 * substring_grams, from its value and its lowered bytes.
 */
#define SR_ATOM_SUBSTRING 9
#define SR_SUBSTRING_GRAM 8

/*
 * A composite atom is "column attnum hashes to key, and the order key of column
 * range_attnum lies in [lower, upper]" (col = c AND other >= t): shapes sharing
 * one equality key, each with its own threshold, are told apart by the row's
 * other value instead of all being candidates for the key.
 */
typedef struct sr_index_atom
{
	uint64_t	key;			/* equality, composite: the value's key; range: the lowest order key */
	uint64_t	upper;			/* range, composite: the highest order key, inclusive */
	uint16_t	attnum;
	uint8_t		tag;
	uint8_t		kind;			/* SR_ATOM_* */
	uint16_t	range_attnum;	/* composite: the range's column, */
	uint8_t		range_tag;		/* its type tag, */
	uint64_t	lower;			/* and its lowest order key */
} sr_index_atom;

typedef struct sr_cover
{
	const sr_index_atom *atoms; /* every alternative's atoms, back to back */
	const uint32_t *alternative_sizes;	/* atoms in each alternative */
	size_t		alternative_count;
	/* Bit a set: the WHERE holds exactly when an atom of alternative a does (its
	 * equality keys are injective for their tag: a key hit is a value match, and
	 * its ranges are exact). The router then decides the shape without its program
	 * when filed under that alternative with its equality atoms on one column. */
	uint32_t	exact_alternatives;
} sr_cover;

/* Alternatives in one cover (more: SR_INVALID_ARGUMENT), and the atoms an OR
 * may gather into one alternative before the compiler gives up its cover (an
 * IN list alone keeps every value). */
#define SR_COVER_MAX_ATOMS 64
#define SR_COVER_MAX_ALTERNATIVES 16

typedef struct sr_index_stats
{
	size_t		keys;			/* distinct keys in the static part */
	size_t		static_bytes;	/* filter + perfect hash + slot table + shape-list pool */
	size_t		key_store_bytes;	/* per-shape keys kept for rebuilds */
	size_t		overlay_keys;	/* keys added since the last build */
	size_t		tombstones;		/* shapes dropped since the last build */
	uint64_t	rebuilds;
	uint64_t	background_builds;	/* rebuilds started on the builder thread */
	uint64_t	longest_pause_us;	/* longest time index maintenance held the decoding thread */
	size_t		range_entries;	/* ranges filed in range columns */
	size_t		range_bytes;
	size_t		lane_shapes;	/* scan shapes in form lanes */
	size_t		lane_forms;		/* form lanes (one a form and relation) */
} sr_index_stats;

typedef struct sr_router sr_router;

/* Creates an empty router. On failure *out is NULL and the status says why. */
sr_status	sr_router_create(sr_router **out) SR_NOEXCEPT;
void		sr_router_destroy(sr_router *router) SR_NOEXCEPT;

/*
 * Adds shape_id on relation relid with the given payload. Idempotent: adding a
 * shape that is already present replaces it and returns the old payload in
 * *previous (NULL otherwise) so the shell can free it. A shape id may not move to
 * another relation (SR_INVALID_ARGUMENT). shape_id and relid must be non-zero.
 *
 * index_attnum < 0: a scan shape, a candidate for every change of its relation.
 * Otherwise the shape's WHERE can only hold for rows whose column index_attnum
 * has a value whose sr_index_key (with index_tag) is one of keys[0..key_count).
 */
sr_status	sr_router_add_shape(sr_router *router, uint64_t shape_id, uint32_t relid,
								void *payload, int index_attnum, uint8_t index_tag,
								const uint64_t *keys, size_t key_count,
								void **previous) SR_NOEXCEPT;

/* A shape's definition, as the shell hands it to the router and reads it back. */
typedef struct sr_shape_spec
{
	const uint8_t *program;		/* its WHERE's program (program.h) */
	uint32_t	program_len;	/* 0: no WHERE */
	const int16_t *where_attnums;	/* the columns the WHERE reads, ascending */
	uint32_t	where_count;
	const int16_t *column_attnums;	/* projected columns, ascending (0 alone: the primary key only) */
	int32_t		column_count;	/* -1: every column */
	const char *fallback_text;	/* its executor-evaluated parts, NUL-terminated; NULL: none */
} sr_shape_spec;

/*
 * As sr_router_add_shape, with no payload but a definition, which the router
 * stores as it sees fit and hands back (sr_router_shape_spec): the shell builds
 * its state from it when a shape is first used (sr_router_set_payload), so
 * that shapes never used cost only their stored bytes; and with a cover of
 * several alternatives (or columns) instead of one column's keys. Shapes whose
 * definitions differ only in their programs' constants (user_id = 1,
 * user_id = 2, ...) share one copy of the rest.
 */
sr_status	sr_router_add_shape_spec(sr_router *router, uint64_t shape_id, uint32_t relid,
									 const sr_shape_spec *spec, const sr_cover *cover,
									 void **previous) SR_NOEXCEPT;

/*
 * The definition of the shape in slot (from an sr_shape_ref). Its arrays are
 * valid until the next call into the router; the call invalidates nothing but
 * the definition it returned before (an array from sr_router_candidates stays
 * valid). SR_INVALID_ARGUMENT when the slot holds no shape (or what it holds
 * is not a definition), SR_OUT_OF_MEMORY when a shared form's bytes could not
 * be put together.
 */
sr_status	sr_router_shape_spec(const sr_router *router, uint32_t slot, sr_shape_spec *spec) SR_NOEXCEPT;

/* Sets the payload of the shape in slot (from an sr_shape_ref); NULL clears it.
 * Invalidates nothing. On failure (SR_OUT_OF_MEMORY) the shape keeps no payload. */
sr_status	sr_router_set_payload(sr_router *router, uint32_t slot, void *payload) SR_NOEXCEPT;

/* The relation of shape_id, or 0 when it is not present. */
uint32_t	sr_router_shape_relid(const sr_router *router, uint64_t shape_id) SR_NOEXCEPT;

/* Removes shape_id; *payload gets its payload, or NULL if it was not present (or had none). */
sr_status	sr_router_drop_shape(sr_router *router, uint64_t shape_id,
								 void **payload) SR_NOEXCEPT;

/* A number that changes whenever some relation's index columns (sr_router_relation)
 * change: what the shell derives from them stays valid while it is the same. */
uint64_t	sr_router_columns_epoch(const sr_router *router) SR_NOEXCEPT;

/*
 * The relation gate: how many shapes relid has (0: nothing to do for this
 * change), and the columns its indexed shapes are keyed on. The array stays
 * valid until the next add or drop.
 */
size_t		sr_router_relation(const sr_router *router, uint32_t relid,
							   const sr_index_column **columns, size_t *column_count) SR_NOEXCEPT;

/*
 * The candidate shapes of a change on relid: its scan shapes plus the shapes
 * filed under any of keys (sr_index_key of the new and/or old row's equality
 * columns) or under a range holding one of probes (the rows' range columns),
 * ascending by shape id, without duplicates. A superset of the shapes whose
 * WHERE holds; never misses one. all_shapes: every shape of the relation
 * instead. The array stays valid until the next call into the router. Counts
 * the probes and candidates of each path.
 *
 * The rows: keys[0..old_keys_from) and probes[0..old_probes_from) are the new
 * row's (or the only row's), the rest the old row's. key_attnums (NULL: no
 * exact decisions) names the column of each key; with it, candidates with
 * exact covers come back decided (SR_EXACT_*), and those no atom holds for
 * (hash false positives) are left out.
 */
sr_status	sr_router_candidates(sr_router *router, uint32_t relid, const uint64_t *keys,
								 const uint16_t *key_attnums, size_t key_count, size_t old_keys_from,
								 const sr_range_probe *probes, size_t probe_count, size_t old_probes_from,
								 int all_shapes, const sr_shape_ref **shapes, size_t *count) SR_NOEXCEPT;

/*
 * A hint: starts loading the shape directory's lines for shape_id, which an
 * add or drop of it reads first (a catalog load asks before parsing the row,
 * so that the lines arrive meanwhile). Changes nothing.
 */
void		sr_router_prefetch_shape(const sr_router *router, uint64_t shape_id) SR_NOEXCEPT;

/* Loading a catalog: keys go straight to the key store (not the overlay) and one
 * build runs at the end. No candidates() call may come in between. */
sr_status	sr_router_begin_bulk_load(sr_router *router, size_t expected_shapes) SR_NOEXCEPT;
sr_status	sr_router_end_bulk_load(sr_router *router) SR_NOEXCEPT;

/* Folds shapes added and dropped since the last build into a new static index
 * when they have grown past a fraction of it (or always, with force). */
sr_status	sr_router_maintain(sr_router *router, int force, int *rebuilt) SR_NOEXCEPT;
void		sr_router_index_stats(const sr_router *router, sr_index_stats *out) SR_NOEXCEPT;

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

/*
 * What a shape's WHERE says of one row version: no, yes, an error evaluating it
 * (the shape's error record), or the shape no longer fits its table (disabled).
 */
typedef enum sr_row_match
{
	SR_ROW_NO = 0,
	SR_ROW_YES,
	SR_ROW_ERROR,
	SR_ROW_DISABLED
} sr_row_match;

/* The record an UPDATE gets for one shape (SR_UPDATE_NONE: no record). */
typedef enum sr_update_outcome
{
	SR_UPDATE_NONE = 0,
	SR_UPDATE_UPDATE,
	SR_UPDATE_MOVE_IN,
	SR_UPDATE_MOVE_OUT,
	SR_UPDATE_ERROR,
	SR_UPDATE_DISABLED
} sr_update_outcome;

/*
 * An UPDATE's record for a shape from its old and new row's matches:
 *
 *   old \ new   NO        YES       ERROR   DISABLED
 *   NO          none      move-in   error   disabled
 *   YES         move-out  update    error   disabled
 *   ERROR       error     error     error   disabled
 *   DISABLED    disabled  disabled  disabled disabled
 *
 * A disabled shape says so before any error; an error before any match.
 */
sr_update_outcome sr_decide_update(sr_row_match old_row, sr_row_match new_row) SR_NOEXCEPT;

/*
 * Whether a list made by sr_parse_shape_id_list holds shape_id. *cursor (0 at
 * first) keeps where the last search ended: the next one gallops on from there
 * when ids come in ascending order, as a catalog scan meets them, and searches
 * the whole list otherwise.
 */
int			sr_shape_id_list_contains(const uint64_t *ids, size_t count,
									  uint64_t shape_id, size_t *cursor) SR_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif							/* SHAPE_ROUTER_ROUTER_H */
