/*
 * plugin.c — the shape_router logical decoding output plugin.
 *
 * Per change: relation gate (one probe in the core) → evaluate each candidate
 * shape's WHERE on the old and new row → records in ascending shape order.
 * Catalog rows of shape_router.shape_catalog decoded from the stream are
 * applied to the router in WAL order, so a registration is live from its own
 * transaction on and a rolled-back one never existed.
 */
#include "shape_router_pg.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tupconvert.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/slot.h"
#include "replication/walsender.h"
#include "replication/snapbuild.h"
#include "utils/snapmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

extern PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);

/* Keepalive cadence while most changes are filtered out (as pgoutput does). */
#define CHANGES_PER_PROGRESS_UPDATE 100
#define MAX_BATCH_BYTES ((int64) MaxAllocSize / 2)

typedef struct PluginOptions
{
	OutputFormat format;
	bool		include_transaction;
	bool		include_xids;
	bool		include_lsn;
	bool		include_timestamp;
	int64		batch_bytes;
	uint64	   *shape_subset;	/* sorted; NULL = all shapes */
	size_t		shape_subset_count;
	uint32		shard_index;	/* the shard option i/n; 0/1: every shape */
	uint32		shard_count;
} PluginOptions;

/* Whether two option sets select the same shapes (the `shapes` list and the shard). */
static bool
same_shape_selection(const PluginOptions *a, const PluginOptions *b)
{
	if (a->shard_index != b->shard_index || a->shard_count != b->shard_count)
		return false;
	if ((a->shape_subset == NULL) != (b->shape_subset == NULL))
		return false;
	return a->shape_subset == NULL ||
		(a->shape_subset_count == b->shape_subset_count &&
		 memcmp(a->shape_subset, b->shape_subset, sizeof(uint64) * a->shape_subset_count) == 0);
}

/* This slot's shapes: the `shapes` list (if any) and the shard (if any) agree. */
static bool
slot_wants_shape(const PluginOptions *options, int64 shape_id)
{
	if (options->shape_subset != NULL &&
		!sr_shape_id_list_contains(options->shape_subset, options->shape_subset_count, (uint64) shape_id))
		return false;
	return options->shard_count <= 1 || sr_shard_of((uint64) shape_id, options->shard_count) == options->shard_index;
}

/*
 * What decides a shape's WHERE on a row: its relation, program, executor-evaluated
 * parts and WHERE columns. Shapes that agree on all of these (the projection may
 * differ) share one ShapeEvaluator (RouterState.evaluators).
 */
typedef struct EvaluatorKey
{
	Oid			relid;
	uint32		program_len;
	const uint8 *program;		/* NULL: no WHERE */
	const Bitmapset *where_columns;
	const char *fallback_text;	/* NULL: none */
} EvaluatorKey;

/*
 * The compiled program of one or more identical shapes, and the results of its
 * runs on the current change's row versions: the first shape runs it, the others
 * reuse the result (1,000 identical shapes cost one run per row version, not 1,000).
 */
typedef struct ShapeEvaluator
{
	EvaluatorKey key;			/* hash key; points into compiled */
	int			refcount;		/* shapes pointing here */
	CompiledShape compiled;		/* program, fallbacks, where_columns */
	/* memo: the result on a row image of change number memo_change */
	uint64		memo_change[2];
	const RowImage *memo_image[2];
	uint8		memo_match[2];	/* RowMatch */
	char	   *memo_message[2];	/* error or disabled: the message (change lifetime) */
} ShapeEvaluator;

/* The router's payload for one shape. */
typedef struct ShapeState
{
	int64		shape_id;
	ShapeEvaluator *evaluator;	/* shared with identical shapes */
	Bitmapset  *columns;		/* projected; NULL: all columns */
	Oid			relid;			/* the table it was registered on */
	bool		disabled_reported;	/* its one error record has been sent */
} ShapeState;

/*
 * The name of a table with shapes, kept from its first shape on: a shape's drop
 * record names its table even when DROP TABLE has already removed it from the
 * catalogs that decoding reads.
 */
typedef struct RelationName
{
	Oid			relid;			/* hash key */
	bool		stale;			/* renamed, maybe: look it up again when needed */
	char	   *json;			/* NULL when unknown */
	char	   *text;
} RelationName;

/* One ancestor of a partition whose shapes see the partition's changes. */
typedef struct AncestorRoute
{
	Oid			relid;
	TupleConversionMap *map;	/* partition row → ancestor layout; NULL: same layout */
	Bitmapset  *identity_key;	/* the partition's replica identity, in ancestor attnums */
} AncestorRoute;

/* For a partition: its ancestors (parent first), found through pg_inherits. */
typedef struct PartitionInfo
{
	Oid			relid;			/* hash key: the partition */
	bool		valid;
	MemoryContext context;		/* owns everything below */
	bool		identity_full;
	int			ancestor_count;
	AncestorRoute *ancestors;
} PartitionInfo;

/*
 * The indexed expressions of one table (index_expressions rows of this major),
 * as loaded with the shapes and then decoded from the stream: never removed.
 */
typedef struct IndexExpressionList
{
	Oid			relid;			/* hash key */
	uint32		version;		/* changes with every expression added */
	int			count;
	int			capacity;
	uint16	   *attnums;
	char	  **texts;
} IndexExpressionList;

typedef struct RouterState
{
	PluginOptions options;
	MemoryContext context;		/* lives as long as the decoding context */
	MemoryContext change_context;	/* reset after every change */
	sr_router  *router;
	sr_counters *counters;
	HTAB	   *relations;		/* relid -> RelationInfo */
	HTAB	   *relation_names; /* relid -> RelationName, tables with shapes */
	HTAB	   *partitions;		/* relid -> PartitionInfo */
	Oid			last_named_relid;	/* add_shape's shortcut */
	RelationInfo *last_relation;	/* relation_info's shortcut (entries never move) */
	Snapshot	load_snapshot;	/* while loading: the catalog's snapshot, for names */
	ExprContext *econtext;
	Oid			catalog_relid;
	Oid			expressions_relid;	/* shape_router.index_expressions */
	MemoryContext expressions_context;	/* index_expressions and its lists */
	HTAB	   *index_expressions;	/* relid -> IndexExpressionList */
	uint32		expressions_added;	/* makes IndexExpressionList.version */
	/* shape_catalog_relid() scans pg_extension and pg_depend: it runs again
	 * only after something may have changed the catalogs (a relcache
	 * invalidation, or a transaction with catalog changes). */
	bool		catalog_checked;
	bool		shapes_loaded;
	bool		begin_sent;		/* in this transaction */
	StringInfoData blob;		/* add_shape's buffer */
	StringInfoData record;
	StringInfoData batch;
	int			changes_since_progress;
	bool		prefetch;		/* the index is large enough to miss the cache */
	/* warm start: a session of the SQL interface that ends cleanly is parked */
	NameData	slot_name;
	bool		warm_start;		/* this session reused the previous one's state */
	bool		park;			/* set by the shutdown callback: keep for the next session */
	XLogRecPtr	parked_end;		/* where the parked session stopped reading */
	XLogRecPtr	confirmed_at_start;	/* the slot's confirmed position when this session began */
	HTAB	   *evaluators;		/* EvaluatorKey -> ShapeEvaluator, of built shape states */
	uint64		change_number;	/* of the change being routed: keys evaluator memos */
} RouterState;

/*
 * The state of this backend's last cleanly ended SQL-interface session, kept for
 * the next one (pollers call pg_logical_slot_get_changes every few hundred ms):
 * may_reuse says when it is reused.
 */
static RouterState *parked_state = NULL;

/*
 * From this many keys on, the static index's filter is unlikely to stay in
 * cache while the WAL streams through it, and each change prefetches the
 * filter lines of the next one.
 */
#define PREFETCH_MIN_INDEX_KEYS 65536

/* The decoding session of this process, for the relcache callback. */
static RouterState *active_state = NULL;
static bool relcache_callback_registered = false;

/* ---------- options ---------- */

static void
reject_option_value(DefElem *option, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for shape_router option \"%s\": \"%s\"", option->defname,
					option->arg != NULL ? strVal(option->arg) : "(none)"),
			 errhint("Expected %s.", expected)));
}

static bool
bool_option(DefElem *option)
{
	bool		value;

	if (option->arg == NULL)
		return true;			/* "-o include-xids" alone means true */
	if (!parse_bool(strVal(option->arg), &value))
		reject_option_value(option, "a boolean");
	return value;
}

static void
mark_seen(DefElem *option, bool *seen)
{
	if (*seen)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("shape_router option \"%s\" specified more than once", option->defname)));
	*seen = true;
}

static void
parse_options(List *raw_options, PluginOptions *options)
{
	bool		seen_format = false,
				seen_shapes = false,
				seen_shard = false,
				seen_transaction = false,
				seen_xids = false,
				seen_lsn = false,
				seen_timestamp = false,
				seen_batch = false;
	ListCell   *lc;

	options->format = OUTPUT_FORMAT_JSON;
	options->include_transaction = true;
	options->include_xids = false;
	options->include_lsn = false;
	options->include_timestamp = false;
	options->batch_bytes = 0;
	options->shape_subset = NULL;
	options->shape_subset_count = 0;
	options->shard_index = 0;
	options->shard_count = 1;

	foreach(lc, raw_options)
	{
		DefElem    *option = (DefElem *) lfirst(lc);

		Assert(option->arg == NULL || IsA(option->arg, String));
		if (strcmp(option->defname, "format") == 0)
		{
			mark_seen(option, &seen_format);
			if (option->arg != NULL && strcmp(strVal(option->arg), "json") == 0)
				options->format = OUTPUT_FORMAT_JSON;
			else if (option->arg != NULL && strcmp(strVal(option->arg), "text") == 0)
				options->format = OUTPUT_FORMAT_TEXT;
			else
				reject_option_value(option, "\"json\" or \"text\"");
		}
		else if (strcmp(option->defname, "shapes") == 0)
		{
			uint64_t   *ids;
			size_t		count;
			size_t		bad_offset;
			sr_status	status;

			mark_seen(option, &seen_shapes);
			if (option->arg == NULL)
				reject_option_value(option, "a comma-separated list of shape ids");
			status = sr_parse_shape_id_list(strVal(option->arg), &ids, &count, &bad_offset);
			if (status == SR_INVALID_ARGUMENT)
				reject_option_value(option, "a comma-separated list of positive shape ids");
			shape_router_check_status(status, "parse option \"shapes\"");
			options->shape_subset = palloc(sizeof(uint64) * (count + 1));
			memcpy(options->shape_subset, ids, sizeof(uint64) * count);
			options->shape_subset_count = count;
			free(ids);
		}
		else if (strcmp(option->defname, "shard") == 0)
		{
			mark_seen(option, &seen_shard);
			if (option->arg == NULL ||
				sr_parse_shard(strVal(option->arg), &options->shard_index, &options->shard_count) != SR_OK)
				reject_option_value(option, psprintf("\"i/n\" with 1 <= n <= %d and 0 <= i < n", SR_SHARD_MAX_COUNT));
		}
		else if (strcmp(option->defname, "include-transaction") == 0)
		{
			mark_seen(option, &seen_transaction);
			options->include_transaction = bool_option(option);
		}
		else if (strcmp(option->defname, "include-xids") == 0)
		{
			mark_seen(option, &seen_xids);
			options->include_xids = bool_option(option);
		}
		else if (strcmp(option->defname, "include-lsn") == 0)
		{
			mark_seen(option, &seen_lsn);
			options->include_lsn = bool_option(option);
		}
		else if (strcmp(option->defname, "include-timestamp") == 0)
		{
			mark_seen(option, &seen_timestamp);
			options->include_timestamp = bool_option(option);
		}
		else if (strcmp(option->defname, "batch-bytes") == 0)
		{
			char	   *end;
			long long	value;

			mark_seen(option, &seen_batch);
			if (option->arg == NULL)
				reject_option_value(option, psprintf("an integer from 0 to " INT64_FORMAT, MAX_BATCH_BYTES));
			errno = 0;
			value = strtoll(strVal(option->arg), &end, 10);
			if (errno != 0 || end == strVal(option->arg) || *end != '\0' ||
				value < 0 || value > MAX_BATCH_BYTES)
				reject_option_value(option, psprintf("an integer from 0 to " INT64_FORMAT, MAX_BATCH_BYTES));
			options->batch_bytes = value;
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized shape_router option \"%s\"", option->defname),
					 errhint("Valid options are format, shapes, shard, include-transaction, include-xids, include-lsn, include-timestamp and batch-bytes.")));
	}
}

/* ---------- shapes ---------- */

static uint32
evaluator_hash(const void *key, Size keysize)
{
	const EvaluatorKey *k = (const EvaluatorKey *) key;
	uint32		hash = hash_bytes_uint32((uint32) k->relid);

	if (k->program_len > 0)
		hash = hash_combine(hash, hash_bytes(k->program, (int) k->program_len));
	hash = hash_combine(hash, bms_hash_value(k->where_columns));
	if (k->fallback_text != NULL)
		hash = hash_combine(hash, hash_bytes((const unsigned char *) k->fallback_text,
											 (int) strlen(k->fallback_text)));
	return hash;
}

static int
evaluator_match(const void *key1, const void *key2, Size keysize)
{
	const EvaluatorKey *a = (const EvaluatorKey *) key1;
	const EvaluatorKey *b = (const EvaluatorKey *) key2;

	if (a->relid != b->relid || a->program_len != b->program_len ||
		(a->program_len > 0 && memcmp(a->program, b->program, a->program_len) != 0) ||
		!bms_equal(a->where_columns, b->where_columns))
		return 1;
	if (a->fallback_text == NULL || b->fallback_text == NULL)
		return a->fallback_text != b->fallback_text;
	return strcmp(a->fallback_text, b->fallback_text) != 0;
}

/* The evaluator of def, shared with the identical shapes that have one already. */
static ShapeEvaluator *
evaluator_for(RouterState *state, const ShapeDef *def)
{
	EvaluatorKey key;
	ShapeEvaluator *evaluator;
	bool		found;

	key.relid = def->relid;
	key.program_len = def->program != NULL ? VARSIZE_ANY_EXHDR(def->program) : 0;
	key.program = def->program != NULL ? (const uint8 *) VARDATA_ANY(def->program) : NULL;
	key.where_columns = def->where_columns;
	key.fallback_text = def->fallback_text;
	evaluator = hash_search(state->evaluators, &key, HASH_ENTER, &found);
	if (!found)
	{
		evaluator->refcount = 0;
		memset(evaluator->memo_change, 0, sizeof(evaluator->memo_change));
		/* (an ERROR here frees the whole state, hash table included) */
		compiled_shape_init(&evaluator->compiled, state->context, def);
		evaluator->key.program = evaluator->compiled.program;
		evaluator->key.where_columns = evaluator->compiled.where_columns;
		evaluator->key.fallback_text = evaluator->compiled.fallback_text;
	}
	evaluator->refcount++;
	return evaluator;
}

static void
free_shape(RouterState *state, ShapeState *shape)
{
	ShapeEvaluator *evaluator;

	if (shape == NULL)
		return;
	evaluator = shape->evaluator;
	if (evaluator != NULL && --evaluator->refcount == 0)
	{
		CompiledShape compiled = evaluator->compiled;

		hash_search(state->evaluators, &evaluator->key, HASH_REMOVE, NULL);
		compiled_shape_release(&compiled);
	}
	bms_free(shape->columns);
	pfree(shape);
}

static void
remember_relation_name(RouterState *state, Oid relid)
{
	bool		found;
	RelationName *name;

	if (relid == state->last_named_relid)
		return;
	name = hash_search(state->relation_names, &relid, HASH_ENTER, &found);
	if (!found || name->stale)
	{
		char	   *json;
		char	   *text;

		if (!found)
			name->json = name->text = NULL;
		name->stale = false;
		if (relation_qualified_names(relid, state->load_snapshot, state->context, &json, &text))
		{
			/* the state may live for many sessions (warm start): no garbage */
			if (name->json != NULL)
				pfree(name->json);
			if (name->text != NULL)
				pfree(name->text);
			name->json = json;
			name->text = text;
		}
	}
	state->last_named_relid = relid;
}

/*
 * What the router keeps of a shape until it is first evaluated: its program,
 * the columns its WHERE reads, its projected columns and its executor-evaluated
 * parts, back to back. Most shapes of a large set are never evaluated in a
 * session, so their ShapeState (with its allocations) is only built on demand
 * (shape_state()).
 */
typedef struct ShapeBlobHeader
{
	uint32		program_len;	/* 0: no WHERE */
	uint32		fallback_len;	/* with its NUL; 0: none */
	uint32		where_count;
	int32		column_count;	/* -1: all columns */
} ShapeBlobHeader;

/* The header goes out as four LEB128 numbers (4 bytes for most shapes, not 16). */
static void
append_leb128(StringInfo buf, uint32 value)
{
	do
	{
		char		byte = (char) ((value & 0x7f) | (value >= 0x80 ? 0x80 : 0));

		appendStringInfoCharMacro(buf, byte);
		value >>= 7;
	} while (value != 0);
}

static uint32
read_leb128(const char **pos, const char *end)
{
	uint32		value = 0;

	for (int shift = 0; shift < 35; shift += 7)
	{
		uint8		byte;

		if (*pos >= end)
			break;
		byte = (uint8) *(*pos)++;
		value |= (uint32) (byte & 0x7f) << shift;
		if ((byte & 0x80) == 0)
			return value;
	}
	elog(ERROR, "shape_router: malformed shape state");
	return 0;
}

static void
append_attnums(StringInfo buf, const Bitmapset *attnums)
{
	int			attnum = -1;

	while ((attnum = bms_next_member(attnums, attnum)) >= 0)
	{
		int16		a = (int16) attnum;

		appendBinaryStringInfo(buf, (const char *) &a, sizeof(a));
	}
}

/*
 * Returns where the shape's own bytes are in the blob: its program's constants,
 * when it has no executor-evaluated part (whose text is as particular to the
 * shape as its constants). Shapes of one form then share the rest of their blob
 * in the router (user_id = 1 and user_id = 2 keep 5 bytes each, not 28).
 */
static void
encode_shape_blob(StringInfo buf, const ShapeDef *def, size_t *own_offset, size_t *own_len)
{
	ShapeBlobHeader header;
	int			program_offset;

	header.program_len = def->program != NULL ? VARSIZE_ANY_EXHDR(def->program) : 0;
	header.fallback_len = def->fallback_text != NULL ? strlen(def->fallback_text) + 1 : 0;
	header.where_count = (uint32) bms_num_members(def->where_columns);
	header.column_count = def->columns != NULL ? (int32) bms_num_members(def->columns) : -1;
	resetStringInfo(buf);
	append_leb128(buf, header.program_len);
	append_leb128(buf, header.fallback_len);
	append_leb128(buf, header.where_count);
	append_leb128(buf, (uint32) (header.column_count + 1));
	program_offset = buf->len;
	if (header.program_len > 0)
		appendBinaryStringInfo(buf, VARDATA_ANY(def->program), header.program_len);
	append_attnums(buf, def->where_columns);
	append_attnums(buf, def->columns);
	if (header.fallback_len > 0)
		appendBinaryStringInfo(buf, def->fallback_text, header.fallback_len);

	*own_offset = SR_BLOB_UNSHARED;
	*own_len = 0;
	if (header.fallback_len == 0)
	{
		size_t		constants = 0;
		size_t		constants_len = 0;

		if (header.program_len == 0)
			*own_offset = 0;	/* no WHERE: the whole blob is shared */
		else if (sr_program_constants((const uint8_t *) buf->data + program_offset, header.program_len,
									  &constants, &constants_len) == SR_OK)
		{
			*own_offset = (size_t) program_offset + constants;
			*own_len = constants_len;
		}
	}
}

static Bitmapset *
decode_attnums(const char **pos, int count)
{
	Bitmapset  *attnums = NULL;

	for (int i = 0; i < count; i++)
	{
		int16		a;

		memcpy(&a, *pos, sizeof(a));
		*pos += sizeof(a);
		attnums = bms_add_member(attnums, a);
	}
	return attnums;
}

/* The shell's state of a candidate shape of relid, built from its blob at first use. */
static ShapeState *
shape_state(RouterState *state, const sr_shape_ref *ref, Oid relid)
{
	ShapeBlobHeader header;
	ShapeDef	def = {0};
	ShapeState *shape;
	const uint8_t *blob;
	uint32		blob_len;
	const char *pos;
	const char *end;
	MemoryContext old;

	if (ref->payload != NULL)
		return (ShapeState *) ref->payload;
	shape_router_check_status(sr_router_shape_blob(state->router, ref->slot, &blob, &blob_len),
							  "read a shape's definition");
	if (blob == NULL)
		elog(ERROR, "shape_router has no state for shape " UINT64_FORMAT, ref->shape_id);
	pos = (const char *) blob;
	end = pos + blob_len;
	header.program_len = read_leb128(&pos, end);
	header.fallback_len = read_leb128(&pos, end);
	header.where_count = read_leb128(&pos, end);
	header.column_count = (int32) read_leb128(&pos, end) - 1;
	if ((uint64) header.program_len + header.fallback_len +
		2 * ((uint64) header.where_count + Max(header.column_count, 0)) > (uint64) (end - pos))
		elog(ERROR, "shape_router: malformed state of shape " UINT64_FORMAT, ref->shape_id);
	/* The definition is temporary (compiled_shape_init copies it); the state is not. */
	old = MemoryContextSwitchTo(state->change_context);
	def.shape_id = (int64) ref->shape_id;
	def.relid = relid;
	def.has_where = header.program_len > 0;
	if (def.has_where)
	{
		def.program = palloc(VARHDRSZ + header.program_len);
		SET_VARSIZE(def.program, VARHDRSZ + header.program_len);
		memcpy(VARDATA(def.program), pos, header.program_len);
		pos += header.program_len;
	}
	def.where_columns = decode_attnums(&pos, header.where_count);
	MemoryContextSwitchTo(state->context);
	shape = palloc0(sizeof(ShapeState));
	shape->shape_id = def.shape_id;
	shape->relid = relid;
	shape->columns = header.column_count >= 0 ? decode_attnums(&pos, header.column_count) : NULL;
	def.fallback_text = header.fallback_len > 0 ? unconstify(char *, pos) : NULL;
	shape->evaluator = evaluator_for(state, &def);
	MemoryContextSwitchTo(old);
	if (sr_router_set_payload(state->router, ref->slot, shape) != SR_OK)
	{
		free_shape(state, shape);
		shape_router_check_status(SR_OUT_OF_MEMORY, "keep a shape's state");
	}
	return shape;
}

static void
add_shape(RouterState *state, const ShapeDef *def)
{
	void	   *previous;
	sr_status	status;
	size_t		own_offset;
	size_t		own_len;
	sr_cover	cover;

	if (!slot_wants_shape(&state->options, def->shape_id))
		return;

	remember_relation_name(state, def->relid);
	encode_shape_blob(&state->blob, def, &own_offset, &own_len);
	cover.atoms = def->cover_atoms;
	cover.alternative_sizes = def->cover_sizes;
	cover.alternative_count = (size_t) def->cover_alternatives;
	cover.exact_alternatives = def->cover_exact;
	status = sr_router_add_shape_blob(state->router, (uint64) def->shape_id, def->relid,
									  state->blob.data, (size_t) state->blob.len, own_offset, own_len,
									  &cover, &previous);
	if (status == SR_INVALID_ARGUMENT)
	{
		/* A catalog row the router cannot take: skip that shape, keep decoding. */
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("shape_router ignores shape " INT64_FORMAT " on relation %u: invalid catalog row",
						def->shape_id, def->relid)));
		return;
	}
	shape_router_check_status(status, "add a shape");
	free_shape(state, (ShapeState *) previous);
}

static void emit_record(LogicalDecodingContext *ctx, RouterState *state);
static void ensure_begin_sent(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn);
static char *lsn_text(XLogRecPtr lsn);

/*
 * Drops a shape from the router. A shape of this slot dropped in the stream
 * (drop_shape(), DROP TABLE, TRUNCATE of the catalog) gets a "drop" record at
 * that point when ctx is given; replacements and resets pass NULL.
 */
static void
drop_shape(RouterState *state, int64 shape_id,
		   LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr lsn)
{
	void	   *payload;
	Oid			relid = sr_router_shape_relid(state->router, (uint64) shape_id);
	RelationName *name;

	if (relid == InvalidOid)
		return;					/* not one of this slot's shapes */
	shape_router_check_status(sr_router_drop_shape(state->router, (uint64) shape_id, &payload),
							  "drop a shape");
	free_shape(state, (ShapeState *) payload);
	if (ctx == NULL)
		return;
	name = hash_search(state->relation_names, &relid, HASH_FIND, NULL);
	if (name != NULL && name->stale)
	{
		state->last_named_relid = InvalidOid;
		remember_relation_name(state, relid);	/* keeps the old name if the table is gone */
	}
	ensure_begin_sent(ctx, state, txn);
	resetStringInfo(&state->record);
	record_append_drop(&state->record, state->options.format, shape_id,
					   name != NULL ? name->json : NULL, name != NULL ? name->text : NULL,
					   state->options.include_lsn ? lsn_text(lsn) : NULL);
	emit_record(ctx, state);
	state->counters->records_emitted++;
}

static int
compare_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

typedef struct ShapeIdList
{
	int64	   *ids;
	size_t		count;
} ShapeIdList;

static void
collect_shape_id(const sr_shape_ref *shape, void *arg)
{
	ShapeIdList *list = (ShapeIdList *) arg;

	list->ids[list->count++] = (int64) shape->shape_id;
}

static void
drop_all_shapes(RouterState *state, LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr lsn)
{
	ShapeIdList list;

	list.ids = palloc_extended(sizeof(int64) * (sr_router_shape_count(state->router) + 1),
							   MCXT_ALLOC_HUGE);
	list.count = 0;
	sr_router_for_each_shape(state->router, collect_shape_id, &list);
	qsort(list.ids, list.count, sizeof(int64), compare_int64);
	for (size_t i = 0; i < list.count; i++)
	{
		drop_shape(state, list.ids[i], ctx, txn, lsn);
	}
	pfree(list.ids);
}

static int
compare_xid(const void *a, const void *b)
{
	TransactionId x = *(const TransactionId *) a;
	TransactionId y = *(const TransactionId *) b;

	return (x > y) - (x < y);
}

/*
 * The catalog as of the point in commit order where this session starts: the
 * snapshot builder's snapshot covers every commit up to and including txn (the
 * one being replayed, whose commit was processed first), so a copy without txn's
 * own xids is the state before txn. Then txn's catalog changes, and those of every
 * later transaction, are applied as they are decoded: commit order, even when a
 * restart begins in the middle of a transaction that started before a registration
 * that has already been confirmed.
 */
static Snapshot
snapshot_before(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	Snapshot	built = sr_snapbuild_snapshot(ctx->snapshot_builder, txn->xid);
	Snapshot	snapshot = palloc(sizeof(SnapshotData));
	TransactionId *own = palloc(sizeof(TransactionId) * (txn->nsubtxns + 1));
	int			own_count = 0;
	dlist_iter	iter;
	uint32		kept = 0;

	/* a private copy: the builder's snapshot is shared and refcounted */
	memcpy(snapshot, built, sizeof(SnapshotData));
	snapshot->xip = palloc(sizeof(TransactionId) * (built->xcnt + 1));
	memcpy(snapshot->xip, built->xip, sizeof(TransactionId) * built->xcnt);
	snapshot->subxip = palloc(sizeof(TransactionId) * (built->subxcnt + 1));
	memcpy(snapshot->subxip, built->subxip, sizeof(TransactionId) * built->subxcnt);
	snapshot->copied = true;
	snapshot->regd_count = 0;
	snapshot->active_count = 0;
	own[own_count++] = txn->xid;
	dlist_foreach(iter, &txn->subtxns)
		own[own_count++] = dlist_container(ReorderBufferTXN, node, iter.cur)->xid;
	qsort(own, own_count, sizeof(TransactionId), compare_xid);
	/* historic snapshots list committed xids in xip, sorted */
	for (uint32 i = 0; i < snapshot->xcnt; i++)
		if (bsearch(&snapshot->xip[i], own, own_count, sizeof(TransactionId), compare_xid) == NULL)
			snapshot->xip[kept++] = snapshot->xip[i];
	snapshot->xcnt = kept;
	pfree(own);
	return snapshot;
}

/* Folds recent registrations and drops into the static index when they have grown. */
static void
maintain_index(RouterState *state, bool force)
{
	int			rebuilt;

	shape_router_check_status(sr_router_maintain(state->router, force ? 1 : 0, &rebuilt),
							  "rebuild the routing index");
}

static void
publish_stats(RouterState *state, bool final)
{
	sr_index_stats index;

	sr_router_index_stats(state->router, &index);
	/* Decided once a commit, after maintain_index installs any rebuild (the
	 * transaction that loads the shapes is not prefetched). */
	state->prefetch = index.keys >= PREFETCH_MIN_INDEX_KEYS;
	shape_router_publish_stats(state->counters, sr_router_shape_count(state->router),
							   sr_router_relation_count(state->router), &index, state->warm_start, final);
}

/*
 * A catalog row for the router. A row made under another major whose WHERE this
 * one cannot analyse again is skipped with a WARNING: an ERROR would stop the
 * slot at this point of the WAL for good, and dropping the shape could not help.
 */
static bool
read_shape_row(ShapeDef *def, HeapTuple tuple, TupleDesc desc)
{
	char	   *reason = NULL;

	if (shape_def_from_tuple_or_reason(def, tuple, desc, false, &reason))
		return true;
	ereport(WARNING,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("shape_router ignores shape " INT64_FORMAT ": registered under PostgreSQL %d, its WHERE cannot be analysed again on this server: %s",
					def->shape_id, def->registered_major, reason),
			 errhint("Drop the shape and register it again.")));
	return false;
}

/* Forgets every indexed expression (the extension went, or came back). */
static void
reset_index_expressions(RouterState *state)
{
	HASHCTL		hash_options;

	if (state->expressions_context == NULL)
		state->expressions_context = AllocSetContextCreate(state->context, "shape_router expressions",
														   ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(state->expressions_context);
	hash_options.keysize = sizeof(Oid);
	hash_options.entrysize = sizeof(IndexExpressionList);
	hash_options.hcxt = state->expressions_context;
	state->index_expressions = hash_create("shape_router index expressions", 16, &hash_options,
										   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* An index_expressions row (loaded, or decoded): one more expression to key rows with. */
static void
add_index_expression(RouterState *state, HeapTuple tuple, TupleDesc desc)
{
	Datum		values[Natts_index_expressions];
	bool		nulls[Natts_index_expressions];
	IndexExpressionList *list;
	Oid			relid;
	uint16		attnum;
	char	   *expr_text;
	bool		found;

	if (desc->natts != Natts_index_expressions)
		return;
	heap_deform_tuple(tuple, desc, values, nulls);
	for (int i = 0; i < Natts_index_expressions; i++)
		if (nulls[i])
			return;
	if (DatumGetInt32(values[Anum_index_expression_server_major - 1]) != SHAPE_SERVER_MAJOR)
		return;					/* another major's tree: its shapes are re-analysed */
	relid = DatumGetObjectId(values[Anum_index_expression_relid - 1]);
	attnum = (uint16) DatumGetInt16(values[Anum_index_expression_attnum - 1]);
	if (!SHAPE_ATTNUM_IS_VIRTUAL(attnum))
		return;
	expr_text = TextDatumGetCString(values[Anum_index_expression_expr - 1]);
	list = hash_search(state->index_expressions, &relid, HASH_ENTER, &found);
	if (!found)
	{
		list->count = list->capacity = 0;
		list->attnums = NULL;
		list->texts = NULL;
	}
	for (int i = 0; i < list->count; i++)
		if (list->attnums[i] == attnum && strcmp(list->texts[i], expr_text) == 0)
			return;
	if (list->count == list->capacity)
	{
		list->capacity = list->capacity * 2 + 4;
		list->attnums = list->attnums == NULL
			? MemoryContextAlloc(state->expressions_context, sizeof(uint16) * list->capacity)
			: repalloc(list->attnums, sizeof(uint16) * list->capacity);
		list->texts = list->texts == NULL
			? MemoryContextAlloc(state->expressions_context, sizeof(char *) * list->capacity)
			: repalloc(list->texts, sizeof(char *) * list->capacity);
	}
	list->attnums[list->count] = attnum;
	list->texts[list->count++] = MemoryContextStrdup(state->expressions_context, expr_text);
	list->version = ++state->expressions_added;
}

/* The indexed expressions as of the session's starting point. */
static void
load_index_expressions(RouterState *state, Snapshot snapshot)
{
	Relation	table;
	SysScanDesc scan;
	HeapTuple	tuple;

	if (!OidIsValid(state->expressions_relid))
		return;
	table = RelationIdGetRelation(state->expressions_relid);
	if (!RelationIsValid(table))
		return;
	scan = systable_beginscan(table, InvalidOid, false, snapshot, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		add_index_expression(state, tuple, RelationGetDescr(table));
	systable_endscan(scan);
	RelationClose(table);
}

/*
 * The relation's indexed expressions, ready to evaluate on its slots: made
 * again when its info was rebuilt or an expression was added.
 */
static void
relation_expressions(RouterState *state, RelationInfo *rel)
{
	IndexExpressionList *list = hash_search(state->index_expressions, &rel->relid, HASH_FIND, NULL);
	uint32		version = list != NULL ? list->version : 0;
	MemoryContext old;

	if (rel->expression_context != NULL && rel->expressions_version == version)
		return;
	if (rel->expression_context == NULL)
		rel->expression_context = AllocSetContextCreate(rel->context, "shape_router relation expressions",
														ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(rel->expression_context);
	old = MemoryContextSwitchTo(rel->expression_context);
	rel->expression_count = 0;
	rel->expressions = palloc0(sizeof(IndexExpressionState) * ((list != NULL ? list->count : 0) + 1));
	for (int i = 0; list != NULL && i < list->count; i++)
	{
		IndexExpressionState *indexed = &rel->expressions[rel->expression_count++];
		Node	   *expr = stringToNode(list->texts[i]);
		Bitmapset  *offsets = NULL;
		AttrNumber	bad_attnum;
		int			member = -1;

		indexed->attnum = list->attnums[i];
		indexed->type = exprType(expr);
		indexed->tag = (uint8) shape_type_tag(indexed->type);
		indexed->fits = expr_fits_relation(expr, rel->desc, &bad_attnum);
		pull_varattnos(expr, 1, &offsets);
		while ((member = bms_next_member(offsets, member)) >= 0)
			indexed->columns = bms_add_member(indexed->columns, member + FirstLowInvalidHeapAttributeNumber);
		indexed->expression = shape_predicate_create(rel->expression_context, expr);
	}
	rel->expressions_version = version;
	MemoryContextSwitchTo(old);
}

/* Reads every shape of the catalog as of the session's starting point. */
static void
load_shapes(RouterState *state, Snapshot snapshot)
{
	/* Decoding opens relations without locks, as the reorder buffer does. */
	Relation	catalog = RelationIdGetRelation(state->catalog_relid);
	SysScanDesc scan;
	/* Per-row parsing garbage goes here; the scan lives in the caller's context. */
	MemoryContext row_context;
	HeapTuple	tuple;

	if (!RelationIsValid(catalog))
		elog(ERROR, "shape_router catalog %u cannot be opened", state->catalog_relid);
	/* reltuples is -1 until the first VACUUM or ANALYZE: then the router grows as it goes */
	shape_router_check_status(sr_router_begin_bulk_load(state->router,
														(size_t) Max(catalog->rd_rel->reltuples, 0)),
							  "load shapes");
	load_index_expressions(state, snapshot);
	scan = systable_beginscan(catalog, InvalidOid, false, snapshot, 0, NULL);
	row_context = AllocSetContextCreate(CurrentMemoryContext, "shape_router load", ALLOCSET_DEFAULT_SIZES);

	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		MemoryContext old;
		ShapeDef	def;

		/* A consumer of a few shapes, or of one shard, does not parse the others' rows. */
		if (!slot_wants_shape(&state->options, shape_id_of_tuple(tuple, RelationGetDescr(catalog))))
			continue;
		old = MemoryContextSwitchTo(row_context);
		if (read_shape_row(&def, tuple, RelationGetDescr(catalog)))
		{
			state->load_snapshot = snapshot;
			add_shape(state, &def);
			state->load_snapshot = NULL;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(row_context);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextDelete(row_context);
	/* one build for everything loaded */
	shape_router_check_status(sr_router_end_bulk_load(state->router), "build the routing index");
	systable_endscan(scan);
	RelationClose(catalog);
	state->shapes_loaded = true;
}

/*
 * Finds the extension's catalog (at the start, and again after any relcache
 * invalidation or transaction with catalog changes: creating or dropping the
 * extension is both, even mid-transaction) and loads it at first use. Add and
 * drop are idempotent, so a row both loaded and then decoded is harmless.
 */
static void
ensure_catalog(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn)
{
	if (!state->catalog_checked)
	{
		Oid			relid = shape_catalog_relid(true);

		if (relid != state->catalog_relid)
		{
			/* Appeared, or the extension was dropped (and maybe recreated). */
			drop_all_shapes(state, NULL, NULL, InvalidXLogRecPtr);
			reset_index_expressions(state);
			state->catalog_relid = relid;
			state->shapes_loaded = false;
		}
		state->expressions_relid = OidIsValid(relid) ? shape_index_expressions_relid() : InvalidOid;
		state->catalog_checked = true;
	}
	if (!state->shapes_loaded && OidIsValid(state->catalog_relid))
	{
		Snapshot	snapshot = snapshot_before(ctx, txn);

		load_shapes(state, snapshot);
		pfree(snapshot->xip);
		pfree(snapshot->subxip);
		pfree(snapshot);
	}
}

static void
apply_catalog_change(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn,
					 Relation catalog, ReorderBufferChange *change)
{
	TupleDesc	desc = RelationGetDescr(catalog);
	ShapeDef	def;
	bool		isnull;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			/* another shard's or list's row is not even parsed */
			if (slot_wants_shape(&state->options, shape_id_of_tuple(sr_change_new_tuple(change), desc)) &&
				read_shape_row(&def, sr_change_new_tuple(change), desc))
				add_shape(state, &def);
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			if (sr_change_old_tuple(change) != NULL)
				drop_shape(state, DatumGetInt64(heap_getattr(sr_change_old_tuple(change),
															 Anum_shape_shape_id, desc, &isnull)),
						   NULL, NULL, InvalidXLogRecPtr);
			drop_shape(state, shape_id_of_tuple(sr_change_new_tuple(change), desc), NULL, NULL, InvalidXLogRecPtr);
			if (slot_wants_shape(&state->options, shape_id_of_tuple(sr_change_new_tuple(change), desc)) &&
				read_shape_row(&def, sr_change_new_tuple(change), desc))
				add_shape(state, &def);
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			if (sr_change_old_tuple(change) != NULL)
				drop_shape(state, DatumGetInt64(heap_getattr(sr_change_old_tuple(change),
															 Anum_shape_shape_id, desc, &isnull)),
						   ctx, txn, change->lsn);
			break;
		default:
			return;
	}
	state->counters->catalog_changes++;
}

/* ---------- output ---------- */

static char *
lsn_text(XLogRecPtr lsn)
{
	return psprintf("%X/%X", LSN_FORMAT_ARGS(lsn));
}

static void
write_message(LogicalDecodingContext *ctx, const char *data, int len)
{
	OutputPluginPrepareWrite(ctx, true);
	appendBinaryStringInfo(ctx->out, data, len);
	OutputPluginWrite(ctx, true);
}

static void
flush_batch(LogicalDecodingContext *ctx, RouterState *state)
{
	if (state->batch.len == 0)
		return;
	write_message(ctx, state->batch.data, state->batch.len);
	resetStringInfo(&state->batch);
}

/* Sends state->record: as its own message, or packed into the batch. */
static void
emit_record(LogicalDecodingContext *ctx, RouterState *state)
{
	int64		limit = state->options.batch_bytes;

	if (limit == 0)
	{
		write_message(ctx, state->record.data, state->record.len);
		return;
	}
	if (state->batch.len > 0 && state->batch.len + 1 + state->record.len > limit)
		flush_batch(ctx, state);
	if (state->batch.len > 0)
		appendStringInfoChar(&state->batch, '\n');
	appendBinaryStringInfoNT(&state->batch, state->record.data, state->record.len);
	if (state->batch.len >= limit)
		flush_batch(ctx, state);
}

static void
ensure_begin_sent(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn)
{
	if (state->begin_sent)
		return;
	state->begin_sent = true;
	if (!state->options.include_transaction)
		return;
	resetStringInfo(&state->record);
	record_append_begin(&state->record, state->options.format,
						state->options.include_xids ? psprintf("%u", txn->xid) : NULL,
						state->options.include_lsn ? lsn_text(txn->first_lsn) : NULL);
	emit_record(ctx, state);
}

static void
emit_row_record(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn,
				const ShapeState *shape, RecordOp op, const RelationInfo *rel,
				const RecordRows *rows, XLogRecPtr lsn, const char *message)
{
	ensure_begin_sent(ctx, state, txn);
	resetStringInfo(&state->record);
	record_append_row_change(&state->record, state->options.format, shape->shape_id, op, rel,
							 shape->columns, rows,
							 state->options.include_lsn ? lsn_text(lsn) : NULL, message);
	emit_record(ctx, state);
	if (op == RECORD_ERROR)
		state->counters->errors++;
	else
		state->counters->records_emitted++;
}

static void
update_progress(LogicalDecodingContext *ctx, RouterState *state, bool skipped_xact)
{
	if (ctx->end_xact || ++state->changes_since_progress >= CHANGES_PER_PROGRESS_UPDATE)
	{
		OutputPluginUpdateProgress(ctx, skipped_xact);
		state->changes_since_progress = 0;
	}
}

/* ---------- relations ---------- */

/* Forgets what state caches about relid (InvalidOid: about every relation). */
static void
invalidate_relations(RouterState *state, Oid relid)
{
	HASH_SEQ_STATUS status;
	RelationInfo *info;
	RelationName *name;
	PartitionInfo *partition;

	/* Any table may be the extension's catalog coming or going. */
	state->catalog_checked = false;
	if (OidIsValid(relid))
	{
		info = hash_search(state->relations, &relid, HASH_FIND, NULL);
		if (info != NULL)
			info->valid = false;
		name = hash_search(state->relation_names, &relid, HASH_FIND, NULL);
		if (name != NULL)
			name->stale = true;
	}
	else
	{
		hash_seq_init(&status, state->relations);
		while ((info = hash_seq_search(&status)) != NULL)
			info->valid = false;
		hash_seq_init(&status, state->relation_names);
		while ((name = hash_seq_search(&status)) != NULL)
			name->stale = true;
	}
	state->last_named_relid = InvalidOid;
	state->last_relation = NULL;
	/* A partition's routes depend on it and on each of its ancestors. */
	hash_seq_init(&status, state->partitions);
	while ((partition = hash_seq_search(&status)) != NULL)
	{
		if (!OidIsValid(relid) || partition->relid == relid)
			partition->valid = false;
		for (int i = 0; partition->valid && i < partition->ancestor_count; i++)
			if (partition->ancestors[i].relid == relid)
				partition->valid = false;
	}
}

static void
relcache_invalidated(Datum arg, Oid relid)
{
	if (active_state == NULL || active_state->relations == NULL)
		return;
	invalidate_relations(active_state, relid);
}

static RelationInfo *
relation_info(RouterState *state, Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	bool		found;
	RelationInfo *info = state->last_relation;

	if (info == NULL || info->relid != relid)
	{
		info = hash_search(state->relations, &relid, HASH_ENTER, &found);
		if (!found)
		{
			info->context = NULL;
			info->valid = false;
		}
	}
	if (!info->valid || info->desc->natts != RelationGetDescr(rel)->natts)
		relation_info_build(info, rel, state->context);
	state->last_relation = info;
	return info;
}

/* The RelationInfo of a table known by OID (a partition's ancestor); NULL when gone. */
static RelationInfo *
relation_info_by_id(RouterState *state, Oid relid)
{
	RelationInfo *info = hash_search(state->relations, &relid, HASH_FIND, NULL);
	Relation	rel;

	if (info != NULL && info->valid)
		return info;
	rel = RelationIdGetRelation(relid);
	if (!RelationIsValid(rel))
		return NULL;
	info = relation_info(state, rel);
	RelationClose(rel);
	return info;
}

/* The ancestors of a partition, with how to convert its rows to their layouts. */
static PartitionInfo *
partition_info(RouterState *state, Relation partition)
{
	Oid			relid = RelationGetRelid(partition);
	bool		found;
	PartitionInfo *info = hash_search(state->partitions, &relid, HASH_ENTER, &found);
	List	   *ancestors;
	ListCell   *lc;
	MemoryContext old;
	TupleDesc	partition_desc;
	Bitmapset  *identity = NULL;
	Bitmapset  *offset_identity;
	int			member = -1;

	if (found && info->valid)
		return info;
	if (!found)
		info->context = AllocSetContextCreate(state->context, "shape_router partition", ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(info->context);
	info->valid = false;
	info->ancestor_count = 0;
	old = MemoryContextSwitchTo(info->context);
	ancestors = get_partition_ancestors(relid);
	partition_desc = CreateTupleDescCopy(RelationGetDescr(partition));
	info->identity_full = partition->rd_rel->relreplident == REPLICA_IDENTITY_FULL;
	offset_identity = RelationGetIndexAttrBitmap(partition, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	while ((member = bms_next_member(offset_identity, member)) >= 0)
		identity = bms_add_member(identity, member + FirstLowInvalidHeapAttributeNumber);
	info->ancestors = palloc0(sizeof(AncestorRoute) * (list_length(ancestors) + 1));
	foreach(lc, ancestors)
	{
		Oid			ancestor_relid = lfirst_oid(lc);
		Relation	ancestor = RelationIdGetRelation(ancestor_relid);
		AncestorRoute *route;

		if (!RelationIsValid(ancestor))
			continue;
		route = &info->ancestors[info->ancestor_count++];
		route->relid = ancestor_relid;
		/* copies: the map must outlive relcache rebuilds of either side */
		route->map = convert_tuples_by_name(partition_desc, CreateTupleDescCopy(RelationGetDescr(ancestor)));
		for (int a = 1; a <= RelationGetDescr(ancestor)->natts; a++)
		{
			int			in_partition = route->map == NULL ? a : route->map->attrMap->attnums[a - 1];

			if (in_partition > 0 && bms_is_member(in_partition, identity))
				route->identity_key = bms_add_member(route->identity_key, a);
		}
		RelationClose(ancestor);
	}
	MemoryContextSwitchTo(old);
	info->valid = true;
	return info;
}

/* Copies a decoded tuple into a virtual slot so unchanged TOAST can be patched. */
static TupleTableSlot *
store_tuple(TupleTableSlot *slot, HeapTuple tuple)
{
	ExecClearTuple(slot);
	heap_deform_tuple(tuple, slot->tts_tupleDescriptor, slot->tts_values, slot->tts_isnull);
	return ExecStoreVirtualTuple(slot);
}

/*
 * An UPDATE logs unchanged TOASTed values as pointers to data decoding cannot
 * read. Take them from the old row when it has them (replica identity full);
 * otherwise they stay unknown and the record says so.
 */
static Bitmapset *
patch_unchanged_toast(TupleTableSlot *new_slot, TupleTableSlot *old_slot, bool old_full)
{
	TupleDesc	desc = new_slot->tts_tupleDescriptor;
	Bitmapset  *unknown = NULL;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (attr->attisdropped || attr->attlen != -1 || new_slot->tts_isnull[i] ||
			!VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(new_slot->tts_values[i])))
			continue;
		if (old_slot != NULL && old_full && !old_slot->tts_isnull[i])
			new_slot->tts_values[i] = old_slot->tts_values[i];
		else
		{
			new_slot->tts_isnull[i] = true;
			unknown = bms_add_member(unknown, i + 1);
		}
	}
	return unknown;
}

/* ---------- routing ---------- */

/* Tables up to this many columns have their indexed columns read in one pass. */
#define TUPLE_KEYS_DEFORM_MAX 64
/* Index columns whose keys one sr_row_keys call makes. */
#define TUPLE_KEYS_BATCH 16

typedef enum RowMatch
{
	ROW_NO,
	ROW_YES,
	ROW_ERROR,
	ROW_DISABLED
} RowMatch;

/* The shape's program on one row version; image is NULL when the WAL has no such row. */
static RowMatch
evaluate(RouterState *state, ShapeState *shape, RowImage *image, const RelationEvalInfo *info,
		 char **message)
{
	ShapeEvaluator *evaluator = shape->evaluator;
	RowMatch	match;
	int			slot;

	if (evaluator->compiled.program == NULL)
		return ROW_YES;
	if (image == NULL)
	{
		*message = "the old row is not available; the table's replica identity no longer covers this shape's WHERE";
		return ROW_ERROR;
	}
	if (image->key_only && !bms_is_subset(evaluator->compiled.where_columns, image->key_columns))
	{
		*message = "the old row carries only the replica identity, which no longer covers this shape's WHERE; set REPLICA IDENTITY FULL";
		return ROW_ERROR;
	}

	/*
	 * An identical shape ran the program on this row image already. The image
	 * is the row version of one route (one relation) of this change, and the
	 * evaluator belongs to one relation: a change meets it in one route only.
	 */
	for (slot = 0; slot < 2; slot++)
		if (evaluator->memo_change[slot] == state->change_number && evaluator->memo_image[slot] == image)
		{
			state->counters->shared_evaluations++;
			if (evaluator->memo_message[slot] != NULL)
				*message = evaluator->memo_message[slot];
			return (RowMatch) evaluator->memo_match[slot];
		}

	switch (compiled_shape_eval(&evaluator->compiled, image, info, state->econtext, state->counters, message))
	{
		case SHAPE_MATCH:
			match = ROW_YES;
			break;
		case SHAPE_NO_MATCH:
		case SHAPE_UNKNOWN:
			match = ROW_NO;
			break;
		case SHAPE_DISABLED:
			match = ROW_DISABLED;
			break;
		case SHAPE_ERROR:
		default:
			match = ROW_ERROR;
			break;
	}
	/* (kept for a lone shape too: the identical ones may build their states later) */
	slot = evaluator->memo_change[0] == state->change_number ? 1 : 0;
	evaluator->memo_change[slot] = state->change_number;
	evaluator->memo_image[slot] = image;
	evaluator->memo_match[slot] = (uint8) match;
	/* the message lives in the change's memory context, or in the evaluator */
	evaluator->memo_message[slot] = match == ROW_ERROR || match == ROW_DISABLED ? *message : NULL;
	return match;
}

/*
 * One row version of a candidate: decided by the index when its cover is exact
 * (exact: sr_shape_ref.exact; bit: SR_EXACT_NEW or SR_EXACT_OLD), else by its
 * program.
 */
static RowMatch
match_row(RouterState *state, ShapeState *shape, uint8 exact, uint8 bit, RowImage *image,
		  const RelationEvalInfo *info, char **message)
{
	if ((exact & SR_EXACT_DECIDED) && image != NULL && shape->evaluator->compiled.program != NULL &&
		(!image->key_only || bms_is_subset(shape->evaluator->compiled.where_columns, image->key_columns)))
	{
		if (!compiled_shape_usable(&shape->evaluator->compiled, info, message))
			return ROW_DISABLED;
		return (exact & bit) ? ROW_YES : ROW_NO;
	}
	return evaluate(state, shape, image, info, message);
}

/*
 * What walking a tuple needs of each attribute, in a few bytes instead of the
 * 100-odd of pg_attribute: for the relation most recently read, made again
 * when its RelationInfo is rebuilt (generations are never reused).
 */
typedef struct TupleLayout
{
	Oid			relid;
	uint32		generation;
	int			natts;
	int			fixed;			/* attributes at a fixed offset in a tuple without NULLs: */
	uint32		offset[TUPLE_KEYS_DEFORM_MAX];	/* those up to the first of variable width */
	int16		attlen[TUPLE_KEYS_DEFORM_MAX];
	uint8		alignmask[TUPLE_KEYS_DEFORM_MAX];	/* alignment - 1 */
	bool		byval[TUPLE_KEYS_DEFORM_MAX];
	Oid			typid[TUPLE_KEYS_DEFORM_MAX];
} TupleLayout;

static TupleLayout tuple_layout;

/* The layout of rel, which has at most TUPLE_KEYS_DEFORM_MAX attributes. */
static const TupleLayout *
tuple_layout_of(const RelationInfo *rel)
{
	TupleLayout *layout = &tuple_layout;
	uint32		off = 0;

	if (layout->generation == rel->generation && layout->relid == rel->relid && layout->natts == rel->desc->natts)
		return layout;
	layout->generation = 0;
	layout->fixed = 0;
	for (int i = 0; i < rel->desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(rel->desc, i);

		layout->attlen[i] = att->attlen;
		/* as att_align_nominal */
		layout->alignmask[i] = att->attalign == TYPALIGN_DOUBLE ? ALIGNOF_DOUBLE - 1
			: att->attalign == TYPALIGN_INT ? ALIGNOF_INT - 1
			: att->attalign == TYPALIGN_SHORT ? ALIGNOF_SHORT - 1 : 0;
		layout->byval[i] = att->attbyval;
		layout->typid[i] = att->atttypid;
		if (layout->fixed == i)
		{
			/* A varlena starts unpadded only when it has a 1-byte header; at an
			 * aligned offset either kind starts there. */
			if (att->attlen == -1 && (off & layout->alignmask[i]) != 0)
				continue;
			off = (off + layout->alignmask[i]) & ~(uint32) layout->alignmask[i];
			layout->offset[i] = off;
			layout->fixed = i + 1;
			if (att->attlen <= 0)
				layout->fixed = i + 1 + TUPLE_KEYS_DEFORM_MAX;	/* it, but nothing after it */
			else
				off += att->attlen;
		}
	}
	if (layout->fixed > TUPLE_KEYS_DEFORM_MAX)
		layout->fixed -= TUPLE_KEYS_DEFORM_MAX;
	layout->relid = rel->relid;
	layout->natts = rel->desc->natts;
	layout->generation = rel->generation;
	return layout;
}

/*
 * Where attributes 1..natts of a heap tuple that has at least natts attributes
 * start (offsets from t_hoff; nulls[i] for NULL ones): heap_deform_tuple's walk,
 * with the layout in a few arrays, stopped at the last column the index needs.
 * Without NULLs, the walk starts after the layout's fixed attributes, whose
 * offsets (layout->offset) it does not copy. Returns whether the tuple has NULLs.
 */
static bool
walk_tuple(HeapTuple tuple, const TupleLayout *layout, int natts, uint32 *offsets, bool *nulls)
{
	HeapTupleHeader tup = tuple->t_data;
	bool		hasnulls = HeapTupleHasNulls(tuple);
	bits8	   *bp = tup->t_bits;
	char	   *tp = (char *) tup + tup->t_hoff;
	uintptr_t	off = 0;
	int			i = 0;

	if (!hasnulls)
	{
		if (natts <= layout->fixed)
			return false;
		/* the fixed attributes end where the walk goes on */
		i = layout->fixed;
		off = layout->offset[i - 1];
		off = layout->attlen[i - 1] > 0 ? off + layout->attlen[i - 1]
			: att_addlength_pointer(off, layout->attlen[i - 1], tp + off);
	}
	for (; i < natts; i++)
	{
		int			len = layout->attlen[i];
		uintptr_t	mask = layout->alignmask[i];

		if (hasnulls && att_isnull(i, bp))
		{
			nulls[i] = true;
			continue;
		}
		nulls[i] = false;
		/* A varlena with a 1-byte header is never padded (att_align_pointer). */
		if (len != -1 || !VARATT_NOT_PAD_BYTE(tp + off))
			off = (off + mask) & ~mask;
		offsets[i] = (uint32) off;
		if (len > 0)
			off += len;
		else
			off = att_addlength_pointer(off, len, tp + off);
	}
	return hasnulls;
}

/* A column's sr_value from its datum (false: an unchanged TOASTed value the WAL lacks). */
static inline bool
value_from_datum(Oid typid, int16 attlen, Datum datum, sr_value *value)
{
	value->len = 0;
	value->is_null = false;
	/* The common fixed-width types here, as shape_value_from_datum reads them. */
	switch (typid)
	{
		case INT2OID:
			value->v.i = DatumGetInt16(datum);
			return true;
		case INT4OID:
			value->v.i = DatumGetInt32(datum);
			return true;
		case INT8OID:
			value->v.i = DatumGetInt64(datum);
			return true;
		case FLOAT8OID:
			value->v.f = DatumGetFloat8(datum);
			return true;
		default:
			if (attlen == -1 && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(datum)))
				return false;
			shape_value_from_datum(typid, datum, false, value);
			return true;
	}
}

/*
 * The routing index keys of a decoded tuple, read straight from it (no deform of
 * the whole row): for each indexed column whose value is not NULL (no atom holds
 * for a NULL), its equality key and/or its range probe, as the column's shapes
 * need. Returns false when the index cannot be trusted for this row: a column's
 * type no longer matches the one its keys were made with (a bypassed DDL guard),
 * its value is an unchanged TOASTed one the WAL does not carry, or the tuple is
 * a key-only old row that lacks the column. probes may be NULL (prefetching).
 */
static bool
tuple_keys(HeapTuple tuple, const Bitmapset *key_only, const RelationInfo *rel, const sr_index_column *columns,
		   size_t column_count, uint64 *keys, uint16 *key_attnums, size_t *key_count,
		   sr_range_probe *probes, size_t *probe_count)
{
	/* Several columns: one pass over the tuple (heap_getattr walks it from the
	 * start for every column behind a variable-width one). */
	uint32		offsets[TUPLE_KEYS_DEFORM_MAX];
	Datum		values[TUPLE_KEYS_DEFORM_MAX];
	bool		nulls[TUPLE_KEYS_DEFORM_MAX];
	sr_value	row[TUPLE_KEYS_BATCH];
	const TupleLayout *layout = NULL;
	bool		hasnulls = false;
	int			natts = rel->desc->natts;
	int			last = 0;
	bool		deformed = false;

	for (size_t c = 0; c < column_count; c++)
	{
		int			attnum = columns[c].attnum;

		if (SHAPE_ATTNUM_IS_VIRTUAL(attnum))
			continue;			/* an expression: its keys come from shape_expression_keys */
		if (attnum > natts || rel->tags[attnum] != columns[c].tag ||
			(key_only != NULL && !bms_is_member(attnum, key_only)))
			return false;
		last = Max(last, attnum);
	}
	if (column_count > 1 && natts <= TUPLE_KEYS_DEFORM_MAX)
	{
		/* A tuple older than an added column lacks it: heap_deform_tuple reads
		 * its default (attmissingval). */
		if (last <= HeapTupleHeaderGetNatts(tuple->t_data))
		{
			layout = tuple_layout_of(rel);
			hasnulls = walk_tuple(tuple, layout, last, offsets, nulls);
		}
		else
		{
			heap_deform_tuple(tuple, rel->desc, values, nulls);
			deformed = true;
		}
	}
	for (size_t from = 0; from < column_count; from += TUPLE_KEYS_BATCH)
	{
		size_t		n = Min(column_count - from, TUPLE_KEYS_BATCH);

		for (size_t i = 0; i < n; i++)
		{
			int			attnum = columns[from + i].attnum;
			Form_pg_attribute attr;
			bool		isnull;
			Datum		datum;

			if ((columns[from + i].tag & SR_TAG_ELEMENT_FLAG) || SHAPE_ATTNUM_IS_VIRTUAL(attnum))
			{
				/* an array or an expression: its keys come from shape_variable_keys
				 * or shape_expression_keys */
				row[i].is_null = true;
				continue;
			}
			if (layout != NULL)
			{
				int			a = attnum - 1;
				char	   *p;

				if (hasnulls && nulls[a])
				{
					row[i].is_null = true;
					continue;
				}
				p = (char *) tuple->t_data + tuple->t_data->t_hoff +
					(!hasnulls && a < layout->fixed ? layout->offset[a] : offsets[a]);
				row[i].is_null = false;
				row[i].len = 0;
				/* the common fixed-width types straight from the tuple */
				switch (layout->typid[a])
				{
					case INT4OID:
						row[i].v.i = *(int32 *) p;
						continue;
					case INT8OID:
						row[i].v.i = *(int64 *) p;
						continue;
					case FLOAT8OID:
						row[i].v.f = *(float8 *) p;
						continue;
				}
				if (!value_from_datum(layout->typid[a], layout->attlen[a],
									  fetch_att(p, layout->byval[a], layout->attlen[a]), &row[i]))
					return false;
				continue;
			}
			attr = TupleDescAttr(rel->desc, attnum - 1);
			if (deformed)
			{
				datum = values[attnum - 1];
				isnull = nulls[attnum - 1];
			}
			else
				datum = heap_getattr(tuple, attnum, rel->desc, &isnull);
			row[i].is_null = isnull;
			if (!isnull && !value_from_datum(attr->atttypid, attr->attlen, datum, &row[i]))
				return false;
		}
		sr_row_keys(rel->relid, columns + from, n, row, keys, key_attnums, key_count, probes, probe_count);
	}
	return true;
}

/*
 * The change that will be decoded right after this one, when that is certain:
 * PostgreSQL replays the changes of a transaction without subtransactions,
 * none of them spilled to disk, in the order of txn->changes, and frees none
 * before the transaction ends. NULL otherwise.
 */
static ReorderBufferChange *
next_change(ReorderBufferTXN *txn, ReorderBufferChange *change)
{
	if (change->txn != txn || txn->nsubtxns > 0 || txn->nentries != txn->nentries_mem ||
		rbtxn_is_serialized(txn) || rbtxn_is_serialized_clear(txn) || rbtxn_is_streamed(txn) ||
		!dlist_has_next(&txn->changes, &change->node))
		return NULL;
	return dlist_container(ReorderBufferChange, node, dlist_next_node(&txn->changes, &change->node));
}

/* Index columns whose keys prefetch_next_change keeps for route_prepare. */
#define NEXT_KEYS_COLUMNS 16

/*
 * The keys prefetch_next_change made for a change, kept so that route_prepare
 * need not make them again when that change comes: valid only while what they
 * were made from is the same (the router, the relation's build and index
 * columns, the change's record and tuples). Two: the change being routed was
 * prefetched one call before the next one is.
 */
typedef struct NextKeys
{
	const sr_router *router;	/* NULL: empty */
	XLogRecPtr	lsn;
	HeapTupleHeader newdata;	/* the tuples' data and lengths */
	HeapTupleHeader olddata;
	uint32		newlen;
	uint32		oldlen;
	Oid			relid;
	uint32		generation;
	size_t		column_count;
	sr_index_column columns[NEXT_KEYS_COLUMNS];
	bool		trusted;
	size_t		key_count;
	size_t		old_keys_from;
	size_t		probe_count;
	size_t		old_probes_from;
	uint64		keys[2 * NEXT_KEYS_COLUMNS];
	uint16		key_attnums[2 * NEXT_KEYS_COLUMNS];
	sr_range_probe probes[2 * NEXT_KEYS_COLUMNS];
} NextKeys;

static NextKeys next_keys[2];
static int	next_keys_written;

/* The kept keys of these rows, or NULL; old rows only in full (as prefetched). */
static NextKeys *
next_keys_for(const sr_router *router, const RelationInfo *rel, XLogRecPtr lsn, HeapTuple newtuple,
			  HeapTuple oldtuple, const sr_index_column *columns, size_t column_count)
{
	for (int i = 0; i < 2; i++)
	{
		NextKeys   *k = &next_keys[i];

		if (k->router == router && k->lsn == lsn && k->relid == rel->relid && k->generation == rel->generation &&
			k->newdata == (newtuple != NULL ? newtuple->t_data : NULL) &&
			k->olddata == (oldtuple != NULL ? oldtuple->t_data : NULL) &&
			k->newlen == (newtuple != NULL ? newtuple->t_len : 0) &&
			k->oldlen == (oldtuple != NULL ? oldtuple->t_len : 0) &&
			k->column_count == column_count &&
			memcmp(k->columns, columns, sizeof(sr_index_column) * column_count) == 0)
			return k;
	}
	return NULL;
}

/*
 * With a large index, the filter lines a change's lookup reads are rarely in
 * cache: start loading those of the next change of the same table now, so that
 * they arrive while PostgreSQL decodes it. Only a hint: what the next change
 * routes to is decided when it comes, from its own rows (with the keys made
 * here, when nothing they came from changed).
 */
static void
prefetch_next_change(RouterState *state, ReorderBufferTXN *txn, ReorderBufferChange *change,
					 Relation relation, const RelationInfo *rel,
					 const sr_index_column *columns, size_t column_count)
{
	ReorderBufferChange *next = next_change(txn, change);
	HeapTuple	newtuple;
	HeapTuple	oldtuple;
	NextKeys   *k;
	/* Array elements, grams and expression results are not made here: the
	 * fixed keys are prefetched all the same, but not kept. */
	bool		keep = !shape_has_variable_keys(columns, column_count);

	if (next == NULL || column_count > NEXT_KEYS_COLUMNS ||
		sr_row_key_capacity(columns, column_count) > NEXT_KEYS_COLUMNS ||
		(next->action != REORDER_BUFFER_CHANGE_INSERT && next->action != REORDER_BUFFER_CHANGE_UPDATE &&
		 next->action != REORDER_BUFFER_CHANGE_DELETE) ||
		!sr_change_on_relation(next, relation))
		return;
	newtuple = sr_change_new_tuple(next);
	oldtuple = sr_change_old_tuple(next);
	k = &next_keys[next_keys_written];
	next_keys_written ^= 1;
	k->router = NULL;
	k->key_count = k->probe_count = 0;
	k->trusted = true;
	if (newtuple != NULL)
		k->trusted = tuple_keys(newtuple, NULL, rel, columns, column_count, k->keys, k->key_attnums,
								&k->key_count, k->probes, &k->probe_count);
	k->old_keys_from = k->key_count;
	k->old_probes_from = k->probe_count;
	if (oldtuple != NULL && rel->identity_full && k->trusted)
		k->trusted = tuple_keys(oldtuple, NULL, rel, columns, column_count, k->keys, k->key_attnums,
								&k->key_count, k->probes, &k->probe_count);
	sr_router_prefetch(state->router, k->keys, k->key_count);
	state->counters->prefetches++;
	/* Kept when route_prepare would make the same: an old row only in full. */
	if (keep && (oldtuple == NULL || rel->identity_full))
	{
		k->lsn = next->lsn;
		k->newdata = newtuple != NULL ? newtuple->t_data : NULL;
		k->olddata = oldtuple != NULL ? oldtuple->t_data : NULL;
		k->newlen = newtuple != NULL ? newtuple->t_len : 0;
		k->oldlen = oldtuple != NULL ? oldtuple->t_len : 0;
		k->relid = rel->relid;
		k->generation = rel->generation;
		k->column_count = column_count;
		memcpy(k->columns, columns, sizeof(sr_index_column) * column_count);
		k->router = state->router;
	}
}

/*
 * One change as the shapes of one table see it: the rows in that table's layout
 * (a partition's rows are converted to its ancestor's), and the replica identity
 * of the table the change was made to, which decides what an old row carries.
 */
typedef struct ChangeRows
{
	ReorderBufferChangeType action;
	XLogRecPtr	lsn;
	HeapTuple	newtuple;		/* NULL when none */
	HeapTuple	oldtuple;		/* NULL when not logged */
	bool		identity_full;
	const Bitmapset *identity_key;	/* attnums a key-only old row carries */
} ChangeRows;

/* The shapes of one table that a change may reach, and its rows in that table's layout. */
typedef struct Route
{
	RelationInfo *rel;
	ChangeRows	change;
	const sr_shape_ref *shapes; /* candidates, ascending shape id */
	size_t		shape_count;
	size_t		next;			/* the next candidate to evaluate */
	RelationEvalInfo info;
	RecordRows	rows;
	RowImage	old_image;
	RowImage	new_image;
} Route;

/*
 * The routing index first, from the raw tuples: most changes match no shape and
 * stop here, before the rows are deformed. Returns false when no shape of rel
 * is a candidate.
 */
static bool
route_prepare(RouterState *state, RelationInfo *rel, const ChangeRows *change,
			  const sr_index_column *columns, size_t column_count, bool keep_candidates, Route *route)
{
	uint64		local_keys[16];
	uint16		local_attnums[16];
	sr_range_probe local_probes[16];
	size_t		fixed_keys = sr_row_key_capacity(columns, column_count);
	size_t		key_room = 2 * fixed_keys + 1;
	uint64	   *keys = key_room <= lengthof(local_keys) ? local_keys : palloc(sizeof(uint64) * key_room);
	uint16	   *key_attnums = key_room <= lengthof(local_attnums) ? local_attnums
		: palloc(sizeof(uint16) * key_room);
	sr_range_probe *probes = 2 * column_count + 1 <= lengthof(local_probes) ? local_probes
		: palloc(sizeof(sr_range_probe) * (2 * column_count + 1));
	size_t		key_count = 0;
	size_t		probe_count = 0;
	size_t		old_keys_from;
	size_t		old_probes_from;
	bool		trusted = true;
	const sr_shape_ref *shapes;
	size_t		shape_count;
	HeapTuple	newtuple = change->newtuple;
	HeapTuple	oldtuple = change->oldtuple;
	const Bitmapset *old_key_only = change->identity_full ? NULL
		: change->identity_key != NULL ? change->identity_key : bms_make_singleton(0);
	NextKeys   *kept;
	bool		virtual = shape_has_virtual_columns(columns, column_count);
	TupleTableSlot *old_slot = NULL;
	TupleTableSlot *new_slot = NULL;
	Bitmapset  *unchanged_toast = NULL;

	if (virtual)
	{
		/* Expressions are evaluated on the deformed rows, which the shapes then read. */
		relation_expressions(state, rel);
		/* a range probe a row for each expression, besides each column's */
		if (rel->expression_count > 0 && 2 * (column_count + rel->expression_count) + 1 > lengthof(local_probes))
			probes = palloc(sizeof(sr_range_probe) * (2 * (column_count + rel->expression_count) + 1));
		if (oldtuple != NULL)
			old_slot = store_tuple(rel->old_slot, oldtuple);
		if (newtuple != NULL)
		{
			new_slot = store_tuple(rel->new_slot, newtuple);
			unchanged_toast = patch_unchanged_toast(new_slot, old_slot, change->identity_full);
		}
	}

	if (state->prefetch && (oldtuple == NULL || change->identity_full) &&
		(kept = next_keys_for(state->router, rel, change->lsn, newtuple, oldtuple, columns, column_count)) != NULL)
	{
		/* made when this change was prefetched */
		keys = kept->keys;
		key_attnums = kept->key_attnums;
		probes = kept->probes;
		key_count = kept->key_count;
		probe_count = kept->probe_count;
		old_keys_from = kept->old_keys_from;
		old_probes_from = kept->old_probes_from;
		trusted = kept->trusted;
		kept->router = NULL;
	}
	else
	{
		bool		variable = shape_has_variable_keys(columns, column_count);

		if (newtuple != NULL)
		{
			trusted &= tuple_keys(newtuple, NULL, rel, columns, column_count, keys, key_attnums, &key_count,
								  probes, &probe_count);
			if (variable && trusted)
				trusted = shape_variable_keys(newtuple, NULL, rel->relid, rel->desc, columns, column_count, &keys,
											  &key_attnums, &key_count, &key_room, fixed_keys);
			if (virtual && trusted)
				trusted = shape_expression_keys(rel, new_slot, unchanged_toast, NULL, state->econtext, columns,
												column_count, &keys, &key_attnums, &key_count, &key_room,
												fixed_keys, probes, &probe_count);
		}
		old_keys_from = key_count;
		old_probes_from = probe_count;
		if (oldtuple != NULL)
		{
			trusted &= trusted && tuple_keys(oldtuple, old_key_only, rel, columns, column_count,
											 keys, key_attnums, &key_count, probes, &probe_count);
			if (variable && trusted)
				trusted = shape_variable_keys(oldtuple, newtuple, rel->relid, rel->desc, columns, column_count, &keys,
											  &key_attnums, &key_count, &key_room, fixed_keys);
			if (virtual && trusted)
				trusted = shape_expression_keys(rel, old_slot, NULL, old_key_only, state->econtext, columns,
												column_count, &keys, &key_attnums, &key_count, &key_room,
												fixed_keys, probes, &probe_count);
		}
	}
	if (oldtuple == NULL && change->action == REORDER_BUFFER_CHANGE_UPDATE && !change->identity_full)
	{
		/* No old row logged: the key did not change; unless a shape's index
		 * column lies outside the key, the new row's keys are the old row's. */
		for (size_t c = 0; c < column_count && trusted; c++)
			trusted = SHAPE_ATTNUM_IS_VIRTUAL(columns[c].attnum)
				? shape_expression_columns_within(rel, columns[c].attnum, change->identity_key)
				: bms_is_member(columns[c].attnum, change->identity_key);
	}
	else if (oldtuple == NULL && change->action != REORDER_BUFFER_CHANGE_INSERT)
		trusted = false;
	shape_router_check_status(sr_router_candidates(state->router, rel->relid, keys, key_attnums, key_count,
												   old_keys_from, probes, probe_count, old_probes_from,
												   trusted ? 0 : 1, &shapes, &shape_count),
							  "find candidate shapes");
	if (shape_count == 0)
		return false;

	memset(route, 0, sizeof(Route));
	route->rel = rel;
	route->change = *change;
	/* The router's result is overwritten by the next relation's query: a copy
	 * when one may follow (a partition's ancestors). */
	if (keep_candidates)
	{
		sr_shape_ref *copy = palloc(sizeof(sr_shape_ref) * shape_count);

		memcpy(copy, shapes, sizeof(sr_shape_ref) * shape_count);
		shapes = copy;
	}
	route->shapes = shapes;
	route->shape_count = shape_count;
	route->info.desc = rel->desc;
	route->info.tags = rel->tags;
	route->info.generation = rel->generation;
	route->info.context = state->context;
	if (oldtuple != NULL)
	{
		route->rows.old_row = old_slot != NULL ? old_slot : store_tuple(rel->old_slot, oldtuple);
		route->rows.old_key_only = !change->identity_full;
		route->rows.old_key_columns = change->identity_key;
		row_image_init(&route->old_image, route->rows.old_row, NULL);
		route->old_image.key_only = route->rows.old_key_only;
		route->old_image.key_columns = change->identity_key;
	}
	if (newtuple != NULL)
	{
		if (new_slot != NULL)
		{
			route->rows.new_row = new_slot;
			route->rows.unchanged_toast = unchanged_toast;
		}
		else
		{
			route->rows.new_row = store_tuple(rel->new_slot, newtuple);
			route->rows.unchanged_toast = patch_unchanged_toast(route->rows.new_row, route->rows.old_row,
																change->identity_full);
		}
		row_image_init(&route->new_image, route->rows.new_row, route->rows.unchanged_toast);
	}
	return true;
}

/* Evaluates one candidate shape on the change's rows and emits its record, if any. */
static void
route_shape(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn, Route *route,
			ShapeState *shape, uint8 exact)
{
	const ChangeRows *change = &route->change;
	RelationInfo *rel = route->rel;
	RecordRows *rows_ptr = &route->rows;
	RelationEvalInfo *info_ptr = &route->info;
	char	   *message = NULL;
	RowMatch	old_match = ROW_NO;
	RowMatch	new_match = ROW_NO;
	RecordOp	op;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			new_match = match_row(state, shape, exact, SR_EXACT_NEW, &route->new_image, info_ptr, &message);
			op = RECORD_INSERT;
			if (new_match == ROW_NO)
				return;
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			new_match = match_row(state, shape, exact, SR_EXACT_NEW, &route->new_image, info_ptr, &message);
			if (new_match == ROW_ERROR || new_match == ROW_DISABLED)
				old_match = new_match;
			else if (rows_ptr->old_row != NULL && (exact & SR_EXACT_DECIDED))
				old_match = match_row(state, shape, exact, SR_EXACT_OLD, &route->old_image, info_ptr, &message);
			else if (rows_ptr->old_row == NULL)
			{
				/* Key unchanged: if the WHERE reads only key columns, old = new. */
				if (change->identity_full ||
					bms_is_subset(shape->evaluator->compiled.where_columns, change->identity_key))
					old_match = new_match;
				else
					old_match = evaluate(state, shape, NULL, info_ptr, &message);
			}
			else if (!bms_overlap(rows_ptr->unchanged_toast, shape->evaluator->compiled.where_columns) &&
					 rows_agree_on(rows_ptr->old_row, rows_ptr->new_row, shape->evaluator->compiled.where_columns))
				old_match = new_match;	/* nothing the WHERE reads changed: evaluate once */
			else
				old_match = evaluate(state, shape, &route->old_image, info_ptr, &message);
			if (old_match == ROW_YES && new_match == ROW_YES)
				op = RECORD_UPDATE;
			else if (old_match == ROW_NO && new_match == ROW_YES)
				op = RECORD_MOVE_IN;
			else if (old_match == ROW_YES && new_match == ROW_NO)
				op = RECORD_MOVE_OUT;
			else if (old_match == ROW_NO && new_match == ROW_NO)
				return;
			else
				op = RECORD_ERROR;
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			old_match = match_row(state, shape, exact, SR_EXACT_OLD,
								  rows_ptr->old_row != NULL ? &route->old_image : NULL, info_ptr, &message);
			op = RECORD_DELETE;
			if (old_match == ROW_NO)
				return;
			break;
		default:
			return;
	}
	if (new_match == ROW_DISABLED || old_match == ROW_DISABLED)
	{
		/* One error record says the shape stopped; then it is skipped. */
		if (shape->disabled_reported)
			return;
		shape->disabled_reported = true;
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("shape_router disabled shape " INT64_FORMAT ": %s",
						shape->shape_id, message)));
		message = psprintf("shape disabled: %s", message);
		op = RECORD_ERROR;
	}
	else if (new_match == ROW_ERROR || old_match == ROW_ERROR)
		op = RECORD_ERROR;
	emit_row_record(ctx, state, txn, shape, op, rel, rows_ptr, change->lsn,
					op == RECORD_ERROR ? message : NULL);
}

/*
 * Routes one change through the shapes of each table that sees it (the table,
 * and for a partition its ancestors), records in ascending shape order.
 */
static void
route_all(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn,
		  Route *routes, int route_count)
{
	state->change_number++;		/* a new change: evaluator memos are stale */
	for (;;)
	{
		Route	   *best = NULL;
		const sr_shape_ref *ref;

		for (int r = 0; r < route_count; r++)
			if (routes[r].next < routes[r].shape_count &&
				(best == NULL || routes[r].shapes[routes[r].next].shape_id < best->shapes[best->next].shape_id))
				best = &routes[r];
		if (best == NULL)
			return;
		ref = &best->shapes[best->next++];
		route_shape(ctx, state, txn, best, shape_state(state, ref, best->rel->relid), ref->exact);
	}
}

/*
 * A change to a partition also goes to the shapes of its ancestors (each level
 * of a multi-level tree), with the row converted to the ancestor's layout.
 * Appends their routes; returns the new count.
 */
static int
ancestor_routes(RouterState *state, Relation partition, const ChangeRows *rows, Route *routes, int route_count)
{
	PartitionInfo *info = partition_info(state, partition);

	for (int i = 0; i < info->ancestor_count; i++)
	{
		const AncestorRoute *ancestor = &info->ancestors[i];
		const sr_index_column *columns;
		size_t		column_count;
		RelationInfo *rel;
		ChangeRows	converted = *rows;

		if (sr_router_relation(state->router, ancestor->relid, &columns, &column_count) == 0)
			continue;
		rel = relation_info_by_id(state, ancestor->relid);
		if (rel == NULL)
			continue;
		if (ancestor->map != NULL)
		{
			if (rows->newtuple != NULL)
				converted.newtuple = execute_attr_map_tuple(rows->newtuple, ancestor->map);
			if (rows->oldtuple != NULL)
				converted.oldtuple = execute_attr_map_tuple(rows->oldtuple, ancestor->map);
		}
		converted.identity_full = info->identity_full;
		converted.identity_key = ancestor->identity_key;
		state->counters->relation_gate_passes++;
		if (route_prepare(state, rel, &converted, columns, column_count, true, &routes[route_count]))
			route_count++;
	}
	return route_count;
}

/* ---------- callbacks ---------- */

/* Frees a session's state: its router and the memory context that holds the rest. */
static void
destroy_state(RouterState *state)
{
	if (active_state == state)
		active_state = NULL;
	if (state->router != NULL)
		sr_router_destroy(state->router);
	state->router = NULL;
	MemoryContextDelete(state->context);	/* holds state itself */
}

/*
 * The decoding context is going away: after the shutdown callback, or after an
 * ERROR (shutdown_cb does not run then). A state the shutdown callback marked is
 * parked for the next session of this backend; any other is freed.
 */
static void
release_state(void *arg)
{
	RouterState **holder = (RouterState **) arg;
	RouterState *state = *holder;

	*holder = NULL;
	if (state == NULL)
		return;
	if (state == active_state && state->router != NULL)
		publish_stats(state, true);
	if (state->park && state->router != NULL)
	{
		if (parked_state != NULL && parked_state != state)
			destroy_state(parked_state);
		parked_state = state;
		if (active_state == state)
			active_state = NULL;
		return;
	}
	destroy_state(state);
}

/*
 * Whether this session may reuse the parked state: the same slot, starting
 * exactly where the parked session stopped reading (no peek since, no other
 * session or pg_replication_slot_advance moved the slot), selecting the same
 * shapes. Then its shapes and index are the catalog as of this session's start,
 * as a walsender's would be at that point of the WAL; what comes after is decoded
 * and applied in order, as in any session. Only the SQL interface reuses: a
 * walsender may be asked to start past the slot's confirmed position.
 */
static bool
may_reuse(const RouterState *state, const PluginOptions *options, bool is_init)
{
	return !is_init && shape_router_warm_start && !am_walsender && MyReplicationSlot != NULL &&
		state->router != NULL &&
		strncmp(NameStr(state->slot_name), NameStr(MyReplicationSlot->data.name), NAMEDATALEN) == 0 &&
		MyReplicationSlot->data.confirmed_flush == state->parked_end &&
		same_shape_selection(&state->options, options);
}

/* A parked state made ready for a new session: new options, counters and caches. */
static void
reuse_state(RouterState *state, const PluginOptions *options)
{
	uint64	   *subset = state->options.shape_subset;	/* equal to options' (may_reuse) */

	state->options = *options;
	state->options.shape_subset = subset;
	memset(state->counters, 0, sizeof(sr_counters));
	/* What this backend's caches said while parked may be stale: rebuild on use. */
	invalidate_relations(state, InvalidOid);
	MemoryContextReset(state->change_context);
	resetStringInfo(&state->record);
	resetStringInfo(&state->batch);
	state->begin_sent = false;
	state->changes_since_progress = 0;
	state->park = false;
	state->warm_start = true;
}

static RouterState *
create_state(const PluginOptions *options)
{
	MemoryContext context = AllocSetContextCreate(TopMemoryContext, "shape_router session",
												  ALLOCSET_DEFAULT_SIZES);
	RouterState *state = MemoryContextAllocZero(context, sizeof(RouterState));
	MemoryContext old;
	HASHCTL		hash_options;

	state->context = context;
	old = MemoryContextSwitchTo(context);
	state->options = *options;
	if (options->shape_subset != NULL)
	{
		state->options.shape_subset = palloc(sizeof(uint64) * (options->shape_subset_count + 1));
		memcpy(state->options.shape_subset, options->shape_subset, sizeof(uint64) * options->shape_subset_count);
	}
	state->change_context = AllocSetContextCreate(context, "shape_router change", ALLOCSET_DEFAULT_SIZES);
	hash_options.keysize = sizeof(Oid);
	hash_options.entrysize = sizeof(RelationInfo);
	hash_options.hcxt = context;
	state->relations = hash_create("shape_router relations", 64, &hash_options,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	hash_options.entrysize = sizeof(RelationName);
	state->relation_names = hash_create("shape_router relation names", 64, &hash_options,
										HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	hash_options.entrysize = sizeof(PartitionInfo);
	state->partitions = hash_create("shape_router partitions", 16, &hash_options,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	hash_options.keysize = sizeof(EvaluatorKey);
	hash_options.entrysize = sizeof(ShapeEvaluator);
	hash_options.hash = evaluator_hash;
	hash_options.match = evaluator_match;
	state->evaluators = hash_create("shape_router evaluators", 64, &hash_options,
									HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	state->econtext = CreateStandaloneExprContext();
	reset_index_expressions(state);
	initStringInfo(&state->record);
	initStringInfo(&state->batch);
	initStringInfo(&state->blob);
	MemoryContextSwitchTo(old);
	if (sr_router_create(&state->router) != SR_OK)
	{
		MemoryContextDelete(context);
		shape_router_check_status(SR_OUT_OF_MEMORY, "create the router");
	}
	state->counters = sr_router_counters(state->router);
	return state;
}

static void
shape_router_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init)
{
	RouterState **holder = MemoryContextAllocZero(ctx->context, sizeof(RouterState *));
	MemoryContextCallback *release = MemoryContextAlloc(ctx->context, sizeof(MemoryContextCallback));
	PluginOptions options;
	RouterState *state;
	MemoryContext old;

	opt->output_type = OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
	opt->receive_rewrites = false;

	/* From here on this session owns the parked state: an ERROR frees it. */
	release->func = release_state;
	release->arg = holder;
	MemoryContextRegisterResetCallback(ctx->context, release);
	*holder = parked_state;
	parked_state = NULL;
	if (*holder != NULL)
		(*holder)->park = false;

	old = MemoryContextSwitchTo(ctx->context);
	/* Options come with START_REPLICATION / get_changes, not with slot creation. */
	parse_options(is_init ? NIL : ctx->output_plugin_options, &options);
	MemoryContextSwitchTo(old);

	state = *holder;
	if (state != NULL && may_reuse(state, &options, is_init))
		reuse_state(state, &options);
	else
	{
		*holder = NULL;
		if (state != NULL)
			destroy_state(state);
		state = create_state(&options);
	}
	*holder = state;
	if (MyReplicationSlot != NULL)
	{
		namestrcpy(&state->slot_name, NameStr(MyReplicationSlot->data.name));
		state->confirmed_at_start = MyReplicationSlot->data.confirmed_flush;
	}

	if (!relcache_callback_registered)
	{
		CacheRegisterRelcacheCallback(relcache_invalidated, (Datum) 0);
		relcache_callback_registered = true;
	}
	active_state = state;
	ctx->output_plugin_private = state;
}

/*
 * A clean end. A session of the SQL interface leaves its state for the next
 * session of this backend (shape_router.warm_start); the decoding context's
 * reset callback then parks it instead of freeing it.
 */
static void
shape_router_shutdown(LogicalDecodingContext *ctx)
{
	RouterState *state = (RouterState *) ctx->output_plugin_private;

	/* Slot creation (no options, nothing loaded) leaves nothing worth keeping. */
	if (state == NULL || !shape_router_warm_start || am_walsender || ctx->fast_forward ||
		!state->shapes_loaded)
		return;
	/* The state holds every catalog change committed before the later of the two:
	 * if the caller confirms less (an upto_lsn behind the slot), the slot's position
	 * no longer matches and the next session loads afresh. */
	state->parked_end = Max(ctx->reader->EndRecPtr, state->confirmed_at_start);
	state->park = true;
}

static void
shape_router_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	RouterState *state = (RouterState *) ctx->output_plugin_private;

	state->begin_sent = false;
	if (rbtxn_has_catalog_changes(txn))
		state->catalog_checked = false;
	resetStringInfo(&state->batch);
}

static void
shape_router_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	RouterState *state = (RouterState *) ctx->output_plugin_private;
	MemoryContext old = MemoryContextSwitchTo(state->change_context);

	if (state->begin_sent && state->options.include_transaction)
	{
		resetStringInfo(&state->record);
		record_append_commit(&state->record, state->options.format,
							 state->options.include_xids ? psprintf("%u", txn->xid) : NULL,
							 state->options.include_lsn ? lsn_text(commit_lsn) : NULL,
							 state->options.include_timestamp
							 ? timestamptz_to_str(txn->xact_time.commit_time) : NULL);
		emit_record(ctx, state);
	}
	flush_batch(ctx, state);
	/* What this transaction changed in the catalogs, the next one sees. */
	if (rbtxn_has_catalog_changes(txn))
		state->catalog_checked = false;
	update_progress(ctx, state, !state->begin_sent);
	maintain_index(state, false);
	publish_stats(state, false);
	MemoryContextSwitchTo(old);
	MemoryContextReset(state->change_context);
}

static void
shape_router_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					Relation relation, ReorderBufferChange *change)
{
	RouterState *state = (RouterState *) ctx->output_plugin_private;
	Oid			relid = RelationGetRelid(relation);
	MemoryContext old = MemoryContextSwitchTo(state->change_context);

	ensure_catalog(ctx, state, txn);
	if (relid == state->catalog_relid)
		apply_catalog_change(ctx, state, txn, relation, change);
	else if (relid == state->expressions_relid && OidIsValid(relid))
	{
		/* written before the shape rows that use them, in the same transaction */
		if (sr_change_new_tuple(change) != NULL)
			add_index_expression(state, sr_change_new_tuple(change), RelationGetDescr(relation));
	}
	else
	{
		const sr_index_column *columns;
		size_t		column_count;

		ChangeRows	rows;
		Route		single;
		Route	   *routes = &single;
		int			route_count = 0;

		state->counters->changes_seen++;
		rows.action = change->action;
		rows.lsn = change->lsn;
		rows.newtuple = sr_change_new_tuple(change);
		rows.oldtuple = sr_change_old_tuple(change);
		if (relation->rd_rel->relispartition && sr_router_relation_count(state->router) > 0)
			routes = palloc(sizeof(Route) * (1 + partition_info(state, relation)->ancestor_count));
		if (sr_router_relation(state->router, relid, &columns, &column_count) > 0)
		{
			RelationInfo *rel = relation_info(state, relation);

			state->counters->relation_gate_passes++;
			if (state->prefetch)
				prefetch_next_change(state, txn, change, relation, rel, columns, column_count);
			rows.identity_full = rel->identity_full;
			rows.identity_key = rel->identity_key;
			if (route_prepare(state, rel, &rows, columns, column_count, routes != &single, &routes[0]))
				route_count++;
		}
		if (routes != &single)
			route_count = ancestor_routes(state, relation, &rows, routes, route_count);
		route_all(ctx, state, txn, routes, route_count);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(state->change_context);
	ResetExprContext(state->econtext);
	update_progress(ctx, state, false);
}

/* A truncate record for each shape of relid (of one of its partitions, when partition is set). */
static void
truncate_for(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn, Oid relid,
			 Relation relation, Relation partition, XLogRecPtr lsn)
{
	const sr_index_column *columns;
	size_t		column_count;
	const sr_shape_ref *shapes;
	size_t		shape_count;
	RelationInfo *rel;
	const RelationInfo *partition_rel = NULL;

	if (sr_router_relation(state->router, relid, &columns, &column_count) == 0)
		return;
	rel = relation != NULL ? relation_info(state, relation) : relation_info_by_id(state, relid);
	if (rel == NULL)
		return;
	if (partition != NULL)
		partition_rel = relation_info(state, partition);
	shape_router_check_status(sr_router_candidates(state->router, relid, NULL, NULL, 0, 0, NULL, 0, 0, 1,
												   &shapes, &shape_count),
							  "list the shapes of a relation");
	state->counters->relation_gate_passes++;
	for (size_t i = 0; i < shape_count; i++)
	{
		RecordRows	rows = {0};

		rows.partition = partition_rel;
		emit_row_record(ctx, state, txn, shape_state(state, &shapes[i], relid), RECORD_TRUNCATE,
						rel, &rows, lsn, NULL);
	}
}

static void
shape_router_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					  int nrelations, Relation relations[], ReorderBufferChange *change)
{
	RouterState *state = (RouterState *) ctx->output_plugin_private;
	MemoryContext old = MemoryContextSwitchTo(state->change_context);

	for (int r = 0; r < nrelations; r++)
	{
		Oid			relid = RelationGetRelid(relations[r]);

		ensure_catalog(ctx, state, txn);
		if (relid == state->catalog_relid)
		{
			drop_all_shapes(state, ctx, txn, change->lsn);
			state->counters->catalog_changes++;
			continue;
		}
		state->counters->changes_seen++;
		truncate_for(ctx, state, txn, relid, relations[r], NULL, change->lsn);
		if (relations[r]->rd_rel->relispartition && sr_router_relation_count(state->router) > 0)
		{
			/* The shapes of an ancestor that was not itself truncated learn which
			 * partition was: its other partitions keep their rows. */
			PartitionInfo *info = partition_info(state, relations[r]);

			for (int a = 0; a < info->ancestor_count; a++)
			{
				bool		ancestor_truncated = false;
				for (int other = 0; other < nrelations; other++)
					if (RelationGetRelid(relations[other]) == info->ancestors[a].relid)
						ancestor_truncated = true;
				if (ancestor_truncated)
					continue;
				truncate_for(ctx, state, txn, info->ancestors[a].relid, NULL, relations[r], change->lsn);
			}
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(state->change_context);
	update_progress(ctx, state, false);
}

void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = shape_router_startup;
	cb->begin_cb = shape_router_begin;
	cb->change_cb = shape_router_change;
	cb->truncate_cb = shape_router_truncate;
	cb->commit_cb = shape_router_commit;
	cb->shutdown_cb = shape_router_shutdown;
}
