/*
 * catalog_sync.c — the router kept in step with the extension's tables
 * (shape_router.shape_catalog, index_expressions): loaded as of the session's
 * starting point, then changed by their rows as they are decoded, in WAL order;
 * after each commit, the routing index's maintenance and statistics.
 */
#include "shape_router_pg.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "plugin_internal.h"

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
void
maintain_index(RouterState *state, bool force)
{
	int			rebuilt;

	shape_router_check_status(sr_router_maintain(state->router, force ? 1 : 0, &rebuilt),
							  "rebuild the routing index");
}

void
publish_stats(RouterState *state, bool final)
{
	sr_index_stats index;

	sr_router_index_stats(state->router, &index);
	/* Decided once a commit, after maintain_index installs any rebuild (the
	 * transaction that loads the shapes is not prefetched). */
	state->prefetch = index.keys >= (size_t) shape_router_prefetch_min_keys;
	shape_router_publish_stats(state->counters, sr_router_shape_count(state->router),
							   sr_router_relation_count(state->router), &index, state->warm_start,
							   state->start_cpu_us,
							   final ? shape_router_backend_cpu_us() - state->cpu_at_start : -1, final);
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

	if (shape_def_from_tuple_or_reason(def, tuple, desc, 0, &reason))
		return true;
	ereport(WARNING,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("shape_router ignores shape " INT64_FORMAT ": registered under PostgreSQL %d, its WHERE cannot be analysed again on this server: %s",
					def->shape_id, def->registered_major, reason),
			 errhint("Drop the shape and register it again.")));
	return false;
}

/* Forgets every indexed expression (the extension went, or came back). */
void
reset_index_expressions(RouterState *state)
{
	HASHCTL		hash_options;

	if (state->expressions_context == NULL)
		state->expressions_context = AllocSetContextCreate(state->context, "shape_router expressions",
														   ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(state->expressions_context);
	state->expressions_added++;	/* relation_expressions looks again */
	hash_options.keysize = sizeof(Oid);
	hash_options.entrysize = sizeof(IndexExpressionList);
	hash_options.hcxt = state->expressions_context;
	state->index_expressions = hash_create("shape_router index expressions", 16, &hash_options,
										   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* An index_expressions row (loaded, or decoded): one more expression to key rows with. */
void
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
 * again when its info was rebuilt or an expression was added (the inline
 * relation_expressions has found one of them may have been).
 */
void
relation_expressions_slow(RouterState *state, RelationInfo *rel)
{
	IndexExpressionList *list;
	uint32		version;
	MemoryContext old;

	list = hash_search(state->index_expressions, &rel->relid, HASH_FIND, NULL);
	version = list != NULL ? list->version : 0;
	rel->expressions_checked = state->expressions_added;
	if (rel->expression_context != NULL && rel->expressions_version == version)
		return;
	if (rel->expression_context == NULL)
		rel->expression_context = AllocSetContextCreate(rel->context, "shape_router relation expressions",
														ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(rel->expression_context);
	old = MemoryContextSwitchTo(rel->expression_context);
	rel->expression_count = 0;
	rel->expressions_native = true;
	rel->expressions = palloc0(sizeof(IndexExpressionState) * ((list != NULL ? list->count : 0) + 1));
	for (int i = 0; list != NULL && i < list->count; i++)
	{
		IndexExpressionState *indexed = &rel->expressions[rel->expression_count++];
		Node	   *expr = stringToNode(list->texts[i]);
		Bitmapset  *offsets = NULL;
		AttrNumber	bad_attnum;
		int			member = -1;

		indexed->attnum = list->attnums[i];
		indexed->text = pstrdup(list->texts[i]);
		indexed->type = exprType(expr);
		indexed->tag = (uint8) shape_type_tag(indexed->type);
		indexed->fits = expr_fits_relation(expr, rel->desc, &bad_attnum);
		pull_varattnos(expr, 1, &offsets);
		while ((member = bms_next_member(offsets, member)) >= 0)
			indexed->columns = bms_add_member(indexed->columns, member + FirstLowInvalidHeapAttributeNumber);
		indexed->expression = shape_predicate_create(rel->expression_context, expr);
		indexed->native = indexed->fits && indexed->tag != SR_TAG_NONE ? native_arith_compile(expr) : NULL;
		rel->expressions_native &= indexed->native != NULL;
	}
	rel->expressions_version = version;
	MemoryContextSwitchTo(old);
}

/* Adds the shape of one catalog row, if the slot wants it. */
static void
load_shape_row(RouterState *state, HeapTuple tuple, TupleDesc desc, Snapshot snapshot, MemoryContext row_context)
{
	int64		shape_id = shape_id_of_tuple(tuple, desc);
	MemoryContext old;
	ShapeDef	def;

	/* A consumer of a few shapes, or of one shard, does not parse the others' rows. */
	if (!slot_wants_shape(&state->options, shape_id))
		return;
	/* the directory's cache misses overlap the row's parsing */
	sr_router_prefetch_shape(state->router, (uint64) shape_id);
	old = MemoryContextSwitchTo(row_context);
	if (read_shape_row(&def, tuple, desc))
	{
		state->load_snapshot = snapshot;
		add_shape(state, &def);
		state->load_snapshot = NULL;
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(row_context);
	CHECK_FOR_INTERRUPTS();
}

/*
 * A slot that lists its shapes (the shapes option) reads only their rows,
 * through the catalog's primary key, when they are few against the catalog
 * (one lookup costs about as much as scanning this many rows): a slot of a
 * few thousand shapes among a million then starts without reading them all.
 */
#define ROWS_PER_LOOKUP 16

static double
catalog_rows_estimate(Relation catalog)
{
	double		blocks = (double) RelationGetNumberOfBlocks(catalog);
	double		rows;

	/*
	 * As the planner does: the rows per page of the last VACUUM or ANALYZE
	 * times the pages now, since shapes registered after it are not in
	 * reltuples. Before either (reltuples -1), rows are about 1 kB.
	 */
	if (catalog->rd_rel->reltuples >= 0 && catalog->rd_rel->relpages > 0)
		rows = blocks * (catalog->rd_rel->reltuples / catalog->rd_rel->relpages);
	else
		rows = blocks * (BLCKSZ / 1024);
	/* statistics set by hand may say anything; a router holds under 2^31 shapes */
	if (!(rows >= 0))
		return 0;
	return Min(rows, (double) PG_INT32_MAX);
}

static bool
load_by_lookup(const RouterState *state, Relation catalog, Oid primary_key)
{
	return state->options.shape_subset != NULL && OidIsValid(primary_key) &&
		(double) state->options.shape_subset_count * ROWS_PER_LOOKUP < catalog_rows_estimate(catalog);
}

/* Reads every shape of the catalog (or of the slot's list) as of the session's starting point. */
static void
load_shapes(RouterState *state, Snapshot snapshot)
{
	/* Decoding opens relations without locks, as the reorder buffer does. */
	Relation	catalog = RelationIdGetRelation(state->catalog_relid);
	TupleDesc	desc;
	Oid			primary_key;
	double		expected;
	/* Per-row parsing garbage goes here; the scans live in the caller's context. */
	MemoryContext row_context;
	HeapTuple	tuple;

	if (!RelationIsValid(catalog))
		elog(ERROR, "shape_router catalog %u cannot be opened", state->catalog_relid);
	desc = RelationGetDescr(catalog);
	/* (rd_pkindex is filled in by RelationGetIndexList; the same in every major) */
	list_free(RelationGetIndexList(catalog));
	primary_key = catalog->rd_pkindex;
	expected = catalog_rows_estimate(catalog);
	if (state->options.shape_subset != NULL)
		expected = Min(expected, (double) state->options.shape_subset_count);
	/* a shard loads its share (shard_of spreads ids evenly) */
	if (state->options.shard_count > 1)
		expected /= state->options.shard_count;
	shape_router_check_status(sr_router_begin_bulk_load(state->router, (size_t) expected), "load shapes");
	load_index_expressions(state, snapshot);
	row_context = AllocSetContextCreate(CurrentMemoryContext, "shape_router load", ALLOCSET_DEFAULT_SIZES);
	if (load_by_lookup(state, catalog, primary_key))
	{
		for (size_t i = 0; i < state->options.shape_subset_count; i++)
		{
			ScanKeyData key;
			SysScanDesc scan;

			ScanKeyInit(&key, Anum_shape_shape_id, BTEqualStrategyNumber, F_INT8EQ,
						Int64GetDatum((int64) state->options.shape_subset[i]));
			scan = systable_beginscan(catalog, primary_key, true, snapshot, 1, &key);
			while (HeapTupleIsValid(tuple = systable_getnext(scan)))
				load_shape_row(state, tuple, desc, snapshot, row_context);
			systable_endscan(scan);
		}
	}
	else
	{
		/* the pages copied out of shared buffers (catalog_page_copy.c) */
		CopiedScan *scan = copied_scan_begin(catalog, snapshot);

		while (HeapTupleIsValid(tuple = copied_scan_next(scan)))
			load_shape_row(state, tuple, desc, snapshot, row_context);
		copied_scan_end(scan);
	}
	MemoryContextDelete(row_context);
	/* one build for everything loaded */
	shape_router_check_status(sr_router_end_bulk_load(state->router), "build the routing index");
	RelationClose(catalog);
	state->shapes_loaded = true;
}

/*
 * Finds the extension's catalog (at the start, and again after any relcache
 * invalidation or transaction with catalog changes: creating or dropping the
 * extension is both, even mid-transaction) and loads it at first use. Add and
 * drop are idempotent, so a row both loaded and then decoded is harmless.
 */
void
ensure_catalog_slow(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn)
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
	/* The session's start ends when its first change can be routed. */
	if (state->start_cpu_us < 0 && state->shapes_loaded)
		state->start_cpu_us = shape_router_backend_cpu_us() - state->cpu_at_start;
}

void
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
