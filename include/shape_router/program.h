/*
 * shape_router core — compiled shape predicates ("programs") and their VM.
 *
 * A program decides SQL three-valued truth of a shape's WHERE on one row. Leaves
 * compare column values the shell has converted to plain data (sr_value) with
 * constants, natively; any sub-expression the compiler cannot express natively
 * is a FALLBACK leaf that the shell evaluates with PostgreSQL's executor.
 *
 * Byte layout (little-endian, no alignment assumed):
 *   header  8 bytes: magic 'S', version, code_len u16, const_len u16,
 *                    max_stack u8, fallback_count u8
 *   code    code_len bytes of instructions
 *   consts  const_len bytes: int64/double (8 bytes), byte strings (u16 length + bytes),
 *           IN sets (u16 count, then count entries: 8 bytes each, or u16 offsets
 *           relative to the set start followed by u16-length-prefixed strings)
 * Programs come from the catalog, so sr_program_validate must accept one before
 * sr_program_eval runs it; eval does no bounds checks of its own.
 *
 * No PostgreSQL header here; every function is noexcept.
 */
#ifndef SHAPE_ROUTER_PROGRAM_H
#define SHAPE_ROUTER_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "shape_router/router.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SQL truth values, and the one extra outcome a fallback can report. */
#define SR_FALSE 0
#define SR_TRUE 1
#define SR_NULL 2
#define SR_STOP 3				/* a fallback failed; the shell holds the reason */

/* Type tags: what a column holds and how its values compare. */
typedef enum sr_type_tag
{
	SR_TAG_NONE = 0,			/* not native: only fallbacks may read it */
	SR_TAG_INT,					/* int2/int4/int8: int64 */
	SR_TAG_BOOL,				/* int64 0/1 */
	SR_TAG_DATE,				/* int64 days */
	SR_TAG_TIMESTAMP,			/* int64 microseconds */
	SR_TAG_TIMESTAMPTZ,			/* int64 microseconds UTC */
	SR_TAG_FLOAT,				/* float4/float8: double, PostgreSQL order (NaN largest, NaN = NaN) */
	SR_TAG_TEXT,				/* text/varchar: bytes; order = bytes (C collation only) */
	SR_TAG_BPCHAR,				/* char(n): bytes with trailing blanks removed */
	SR_TAG_UUID,				/* 16 bytes */
	SR_TAG_NUMERIC,				/* bytes from sr_encode_decimal: memcmp order = numeric order */
	SR_TAG_COUNT
} sr_type_tag;

/*
 * A column value as the shell hands it over. An array column's (its tag with
 * SR_TAG_ELEMENT_FLAG): v.bytes points to len sr_values, its non-NULL
 * elements (of the element tag), and has_null_element says it had NULL ones.
 */
typedef struct sr_value
{
	union
	{
		int64_t		i;
		double		f;
		const uint8_t *bytes;
	}			v;
	uint32_t	len;			/* bytes only; an array: its non-NULL elements */
	uint8_t		is_null;
	uint8_t		has_null_element;	/* arrays only */
	uint8_t		ascii_fold;		/* sr_row_view.lowered only: the bytes are the value's
								 * own, ASCII, which lower() maps as pg_ascii_tolower
								 * does: the core lowers them itself */
} sr_value;

typedef enum sr_compare_op
{
	SR_OP_EQ = 0,
	SR_OP_NE,
	SR_OP_LT,
	SR_OP_LE,
	SR_OP_GT,
	SR_OP_GE,
	SR_OP_DISTINCT,				/* IS DISTINCT FROM: never NULL */
	SR_OP_COUNT
} sr_compare_op;

typedef enum sr_truth_test
{
	SR_TEST_IS_TRUE = 0,
	SR_TEST_IS_NOT_TRUE,
	SR_TEST_IS_FALSE,
	SR_TEST_IS_NOT_FALSE,
	SR_TEST_IS_UNKNOWN,
	SR_TEST_IS_NOT_UNKNOWN,
	SR_TEST_COUNT
} sr_truth_test;

/*
 * Encodes a decimal number written as PostgreSQL's numeric output writes it
 * ("-12.3400", "0", "NaN", "Infinity", "-Infinity") into bytes whose memcmp
 * order (shorter first on a common prefix) is numeric order, with equal values
 * encoding identically whatever their scale (1.0 and 1.00). NaN sorts above
 * +Infinity and equals itself, as in PostgreSQL. out needs len + 8 bytes.
 * Returns SR_INVALID_ARGUMENT for text that is not such a number.
 */
sr_status	sr_encode_decimal(const char *text, size_t len, uint8_t *out, size_t *out_len) SR_NOEXCEPT;

/*
 * The routing index key of a column value: a 64-bit hash of (relation, column,
 * value normalised as the VM compares it), so that values equal under the type's
 * = hash alike. The shell uses it both when registering a shape and when routing.
 */
uint64_t	sr_index_key(uint32_t relid, uint16_t attnum, uint8_t tag, const sr_value *value) SR_NOEXCEPT;

/* The key of a prefix atom: bytes[0..len) of text column attnum (never the key
 * sr_index_key gives a value). */
uint64_t	sr_prefix_key(uint32_t relid, uint16_t attnum, const uint8_t *bytes, size_t len) SR_NOEXCEPT;

/* The key of a substring atom: gram[0..len) (1 <= len <= SR_SUBSTRING_GRAM) of text
 * column attnum, lowered (lower 1) or not. */
uint64_t	sr_substring_key(uint32_t relid, uint16_t attnum, int lower, const uint8_t *gram,
							 size_t len) SR_NOEXCEPT;

/*
 * The gram keys of one value of text column attnum (bytes[0..len), already
 * lowered when lower is 1): sr_substring_key of every window of each length q
 * with bit q - 1 in lengths (a 4-bit mask), attnum | SR_SUBSTRING_KEY_FLAG in
 * key_attnums. Writes at most room keys; returns how many there are (call
 * again with more room when that is more).
 */
size_t		sr_substring_keys(uint32_t relid, uint16_t attnum, int lower, unsigned lengths,
							  const uint8_t *bytes, size_t len, uint64_t *keys, uint16_t *key_attnums,
							  size_t room) SR_NOEXCEPT;

/* Whether sr_index_key is one-to-one on the values of tag (as the VM compares
 * them): fixed 8-byte values, whose hash is a bijection. Then a shape's key
 * equal to a row's key, on the same column, means equal values. */
int			sr_key_exact(uint8_t tag) SR_NOEXCEPT;

/*
 * Order keys, for range atoms: 64-bit numbers that never decrease along the
 * order the VM compares values of a tag in. SR_ORDER_EXACT: equal keys mean
 * equal values (ints, dates, timestamps, floats with -0 = 0 and one NaN, the
 * largest); SR_ORDER_PREFIX: a key stands for every value starting with the
 * same 8 bytes (text under the C collation, numeric); SR_ORDER_NONE: no range
 * atoms on this tag.
 */
#define SR_ORDER_NONE 0
#define SR_ORDER_PREFIX 1
#define SR_ORDER_EXACT 2
int			sr_tag_order(uint8_t tag) SR_NOEXCEPT;
uint64_t	sr_order_key(uint8_t tag, const sr_value *value) SR_NOEXCEPT;

/* Index columns at and above this number are indexed expressions (virtual
 * columns): the shell evaluates them (sr_row_view.expressions). */
#define SR_VIRTUAL_ATTNUM_BASE 4096

/* An indexed expression's result on a row: virtual column attnum, converted
 * with the tag of the expression's own type. */
typedef struct sr_expression_value
{
	sr_value	value;
	uint16_t	attnum;
	uint8_t		tag;
} sr_expression_value;

/*
 * One row version of a change, converted once by the shell; the VM reads the
 * same values. values is indexed by attnum and holds, for each index column
 * of the relation below SR_VIRTUAL_ATTNUM_BASE (sr_router_relation), the
 * row's value: NULL or not, an array column's as its elements (sr_value's
 * array form). lowered (NULL when no column has lowered substring atoms):
 * by attnum, a text column's bytes as lower() under its collation makes them
 * (or, with ascii_fold, the bytes the core lowers as pg_ascii_tolower), for
 * the columns whose substring_grams ask for lowered grams. expressions:
 * the results of the relation's indexed expressions. The core makes every
 * index key of the row from these.
 */
typedef struct sr_row_view
{
	const sr_value *values;
	const sr_value *lowered;
	const sr_expression_value *expressions;
	size_t		expression_count;
} sr_row_view;

/*
 * sr_router_candidates for a change's rows, new_row and/or old_row (NULL:
 * none), their keys made here: the new row's first. An old row's array
 * elements and grams are not keyed again when its value is the new row's.
 * trusted 0: every shape of relid instead (the shell cannot make the rows'
 * keys: an unchanged TOASTed value, a key-only old row that lacks an index
 * column, a type changed under the shapes); so is a row with more gram keys
 * than SR_GRAM_KEYS_MAX. prefetched: the token these very rows were
 * prefetched with (sr_router_prefetch_rows), whose keys are then reused; 0:
 * none. The one call of a change into the router.
 */
#define SR_GRAM_KEYS_MAX (16 * 1024 * 1024)
sr_status	sr_router_route(sr_router *router, uint32_t relid, const sr_row_view *new_row,
							const sr_row_view *old_row, int trusted, uint64_t prefetched,
							const sr_shape_ref **shapes, size_t *count) SR_NOEXCEPT;

/*
 * A hint for a change that comes next on relid: starts loading what
 * sr_router_route will first read for its rows' keys. complete 0: only the
 * values of columns that are neither arrays nor virtual are read (the others'
 * keys are not made); 1: the views are all sr_router_route would be given
 * (lowered text and expression results included), and every key is made.
 * Those keys are kept under token (not 0) until two more prefetches: returns
 * 1 when they were. sr_router_route given the token takes them, and makes the
 * rows' other keys (array elements, grams, expressions), if any, from the
 * views it is given, which must hold the same values.
 */
int			sr_router_prefetch_rows(sr_router *router, uint32_t relid, const sr_row_view *new_row,
									const sr_row_view *old_row, uint64_t token, int complete) SR_NOEXCEPT;


/*
 * Where a program's constants sit: [*offset, *offset + *len) from its start.
 * Programs of one form (user_id = 1, user_id = 2) differ only there, so the
 * router stores the rest once for all of them. SR_INVALID_ARGUMENT when len
 * does not match the program's header.
 */
sr_status	sr_program_constants(const uint8_t *program, size_t len, size_t *offset, size_t *const_len) SR_NOEXCEPT;

/*
 * Whether a scan shape with this program runs in its form's lane in the router
 * (form_lane.hpp): a well-formed program without FALLBACK, each column it reads
 * read with one tag (a column only NULL-tested states none: not), its
 * short-circuit jumps as groups compile them. Reads untrusted bytes safely.
 */
int			sr_program_runs_in_lane(const uint8_t *program, size_t len) SR_NOEXCEPT;

/* ---- building (the shell's compiler) ---- */

typedef struct sr_program_builder sr_program_builder;

sr_status	sr_builder_create(sr_program_builder **out) SR_NOEXCEPT;
void		sr_builder_destroy(sr_program_builder *builder) SR_NOEXCEPT;

/* Leaves: each pushes one truth value. */
sr_status	sr_builder_compare(sr_program_builder *b, sr_compare_op op, sr_type_tag tag,
							   uint16_t attnum, const sr_value *constant) SR_NOEXCEPT;
sr_status	sr_builder_compare_columns(sr_program_builder *b, sr_compare_op op, sr_type_tag tag,
									   uint16_t left_attnum, uint16_t right_attnum) SR_NOEXCEPT;
/* col IN (values) / col NOT IN (values); has_null: the list held a NULL. */
sr_status	sr_builder_in(sr_program_builder *b, sr_type_tag tag, uint16_t attnum,
						  const sr_value *values, size_t count, int has_null, int negate) SR_NOEXCEPT;
sr_status	sr_builder_null_test(sr_program_builder *b, uint16_t attnum, int is_null) SR_NOEXCEPT;
sr_status	sr_builder_bool_column(sr_program_builder *b, uint16_t attnum) SR_NOEXCEPT;
sr_status	sr_builder_constant(sr_program_builder *b, int truth) SR_NOEXCEPT;
/*
 * An array column (attnum, elements of tag) against constants (values, has_null:
 * the constant array held a NULL), as PostgreSQL's array functions decide it:
 * c = ANY(arr) (values: c), arr @> ARRAY[..], arr <@ ARRAY[..], arr && ARRAY[..].
 */
typedef enum sr_array_op
{
	SR_ARRAY_ANY_EQ = 0,
	SR_ARRAY_CONTAINS,
	SR_ARRAY_CONTAINED_BY,
	SR_ARRAY_OVERLAPS,
	SR_ARRAY_OP_COUNT
} sr_array_op;
sr_status	sr_builder_array(sr_program_builder *b, sr_array_op kind, sr_type_tag tag, uint16_t attnum,
							 const sr_value *values, size_t count, int has_null) SR_NOEXCEPT;
/* col LIKE 'prefix%' (negate: NOT LIKE); text columns. */
sr_status	sr_builder_like_prefix(sr_program_builder *b, uint16_t attnum, const uint8_t *prefix,
								   size_t len, int negate) SR_NOEXCEPT;
sr_status	sr_builder_fallback(sr_program_builder *b, uint16_t index) SR_NOEXCEPT;

/* Unary ops on the top truth value. */
sr_status	sr_builder_not(sr_program_builder *b) SR_NOEXCEPT;
sr_status	sr_builder_test(sr_program_builder *b, sr_truth_test test) SR_NOEXCEPT;

/*
 * AND/OR of n terms with SQL semantics and short-circuit:
 *   group_begin(is_and); term; group_term_done; term; group_term_done; ...; group_end
 */
sr_status	sr_builder_group_begin(sr_program_builder *b, int is_and) SR_NOEXCEPT;
sr_status	sr_builder_group_term_done(sr_program_builder *b) SR_NOEXCEPT;
sr_status	sr_builder_group_end(sr_program_builder *b) SR_NOEXCEPT;

/*
 * Finishes the program; *bytes is malloc'ed (free with free()). Fails with
 * SR_INVALID_ARGUMENT when the program is malformed or exceeds the format's
 * limits (then the compiler falls back to one whole-expression fallback).
 */
sr_status	sr_builder_finish(sr_program_builder *b, uint8_t fallback_count,
							  uint8_t **bytes, size_t *len) SR_NOEXCEPT;

/* ---- loading ---- */

/*
 * Checks a program against the relation it will run on: column_tags[attnum]
 * (attnum 1..natts) is the tag of each column today. Returns SR_OK or
 * SR_INVALID_ARGUMENT with a message in errbuf.
 */
sr_status	sr_program_validate(const uint8_t *program, size_t len, const uint8_t *column_tags,
								uint16_t natts, uint8_t fallback_count,
								char *errbuf, size_t errlen) SR_NOEXCEPT;

/* As sr_program_validate, saying why a program does not fit. */
typedef enum sr_program_fit
{
	SR_PROGRAM_FITS = 0,
	SR_PROGRAM_MALFORMED,		/* not a program this build runs */
	SR_PROGRAM_COLUMN_MISMATCH	/* a column it reads is gone or has another type now */
} sr_program_fit;

sr_program_fit sr_program_check(const uint8_t *program, size_t len, const uint8_t *column_tags,
								uint16_t natts, uint8_t fallback_count,
								char *errbuf, size_t errlen) SR_NOEXCEPT;

/* The attnums a validated program reads natively, ascending, without duplicates.
 * Returns how many there are (may exceed max; only max are written). */
size_t		sr_program_columns(const uint8_t *program, uint16_t *attnums, size_t max) SR_NOEXCEPT;

uint8_t		sr_program_fallback_count(const uint8_t *program) SR_NOEXCEPT;

/* Readable listing of a validated program; returns the length it needs
 * (writes at most buflen bytes, always NUL-terminated when buflen > 0). */
size_t		sr_program_disassemble(const uint8_t *program, char *buf, size_t buflen) SR_NOEXCEPT;

/* ---- evaluation ---- */

/* Evaluates fallback sub-expression index on the current row: returns
 * SR_FALSE/SR_TRUE/SR_NULL, or SR_STOP when it failed. Must not longjmp. */
typedef int (*sr_fallback_fn) (void *arg, uint16_t index);

/*
 * Runs a validated program on a row: row[attnum] for every attnum the program
 * reads (sr_program_columns). Returns SR_FALSE, SR_TRUE, SR_NULL or SR_STOP.
 */
int			sr_program_eval(const uint8_t *program, const sr_value *row,
							sr_fallback_fn fallback, void *fallback_arg) SR_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif							/* SHAPE_ROUTER_PROGRAM_H */
