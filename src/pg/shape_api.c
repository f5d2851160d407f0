/*
 * shape_api.c — the SQL API of DESIGN.md §2: register_shape(s), drop_shape,
 * matching_shapes, explain_shape, and the sql_drop guard.
 *
 * The catalog is written with direct heap access (as PostgreSQL writes its own
 * catalogs): no role holds a privilege on it, so these functions are the only
 * way in, and they run as the caller, whose SELECT rights they check.
 */
#include "shape_router_pg.h"

#include "access/genam.h"
#include "access/relation.h"
#include "catalog/namespace.h"
#include "parser/parse_type.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"
#include "nodes/nodeFuncs.h"
#include "replication/slot.h"
#include "storage/lwlock.h"
#include "access/sysattr.h"

static Relation
open_shaped_relation(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);

	shape_check_relation(rel);
	return rel;
}

/* What the shapes of one registering call share; lives in call_context. */
typedef struct RegisterCall
{
	MemoryContext call_context;
	List	   *seen;			/* index expressions stored (shape_store_index_expressions) */
	List	   *deparse_context;	/* the table's, made at the first WHERE */
	WhereScope	scope;			/* the table's range table entry, likewise */
} RegisterCall;

/* Validates one shape and inserts its catalog row; returns the new id. */
static int64
register_one(Relation catalog, CatalogIndexState indexes, Oid sequence,
			 Relation rel, const char *where_text, ArrayType *columns, RegisterCall *call)
{
	AnalysedShape shape;
	Datum		values[Natts_shape_catalog];
	bool		nulls[Natts_shape_catalog] = {0};
	int64		shape_id;
	HeapTuple	tuple;

	shape_catalog_check_layout(RelationGetDescr(catalog));
	shape_analyse(rel, where_text, columns, &call->scope, &shape);
	shape_id = nextval_internal(sequence, false);

	values[Anum_shape_shape_id - 1] = Int64GetDatum(shape_id);
	values[Anum_shape_relid - 1] = ObjectIdGetDatum(RelationGetRelid(rel));
	values[Anum_shape_where_columns - 1] = int2_array_from_bitmapset(shape.where_columns);
	if (shape.columns != NULL)
		values[Anum_shape_columns - 1] = int2_array_from_bitmapset(shape.columns);
	else
		nulls[Anum_shape_columns - 1] = true;
	values[Anum_shape_created_at - 1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[Anum_shape_registered_by - 1] = ObjectIdGetDatum(GetUserId());
	nulls[Anum_shape_program - 1] = true;
	nulls[Anum_shape_fallback_exprs - 1] = true;
	nulls[Anum_shape_index_cover - 1] = true;
	values[Anum_shape_server_major - 1] = Int32GetDatum(SHAPE_SERVER_MAJOR);
	nulls[Anum_shape_where_source - 1] = true;
	nulls[Anum_shape_where_names - 1] = true;
	nulls[Anum_shape_where_types - 1] = true;
	if (shape.where != NULL)
	{
		if (call->deparse_context == NIL)
		{
			MemoryContext old = MemoryContextSwitchTo(call->call_context);

			call->deparse_context = shape_deparse_context(rel);
			MemoryContextSwitchTo(old);
		}
		values[Anum_shape_where_source - 1] = CStringGetTextDatum(shape_where_source(rel, shape.where,
																				 call->deparse_context));
		nulls[Anum_shape_where_source - 1] = false;
		values[Anum_shape_where_names - 1] = shape_where_names(rel, shape.where_columns);
		nulls[Anum_shape_where_names - 1] = false;
		values[Anum_shape_where_types - 1] = shape_where_types(rel, shape.where_columns);
		nulls[Anum_shape_where_types - 1] = false;
	}
	{
		ShapeCover	cover;

		/* no WHERE: the always atom */
		shape_cover_planned(shape.where != NULL ? shape.planned : NULL, RelationGetRelid(rel), &cover);
		/* Before the shape's row: the decoder knows the expressions when it adds the
		 * shape. Without their table, a scan shape. */
		if (!shape_store_index_expressions(RelationGetRelid(rel), cover.expressions, &call->seen, call->call_context))
			cover.alternative_count = 0;
		if (cover.alternative_count > 0)
		{
			values[Anum_shape_index_cover - 1] = shape_cover_datum(&cover);
			nulls[Anum_shape_index_cover - 1] = false;
		}
	}
	if (shape.where != NULL)
	{
		List	   *fallbacks;

		values[Anum_shape_program - 1] = PointerGetDatum(shape_compile_planned(shape.planned, &fallbacks));
		nulls[Anum_shape_program - 1] = false;
		if (fallbacks != NIL)
		{
			values[Anum_shape_fallback_exprs - 1] = CStringGetTextDatum(nodeToString(fallbacks));
			nulls[Anum_shape_fallback_exprs - 1] = false;
		}
	}

	tuple = heap_form_tuple(RelationGetDescr(catalog), values, nulls);
	CatalogTupleInsertWithInfo(catalog, tuple, indexes);
	heap_freetuple(tuple);
	return shape_id;
}

static Oid
shape_sequence_relid(void)
{
	return get_relname_relid(SHAPE_ID_SEQ_NAME, get_namespace_oid(SHAPE_ROUTER_SCHEMA, false));
}

static Oid
required_relation_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation must not be NULL")));
	return PG_GETARG_OID(0);
}

PG_FUNCTION_INFO_V1(shape_router_register_shape);
Datum
shape_router_register_shape(PG_FUNCTION_ARGS)
{
	Oid			relid = required_relation_arg(fcinfo);
	char	   *where_text = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	ArrayType  *columns = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
	Relation	rel = open_shaped_relation(relid);
	Relation	catalog = table_open(shape_catalog_relid(false), RowExclusiveLock);
	CatalogIndexState indexes = CatalogOpenIndexes(catalog);
	RegisterCall call = {CurrentMemoryContext, NIL, NIL, {CurrentMemoryContext}};
	int64		shape_id = register_one(catalog, indexes, shape_sequence_relid(), rel, where_text, columns, &call);

	CatalogCloseIndexes(indexes);
	table_close(catalog, RowExclusiveLock);
	relation_close(rel, NoLock);
	PG_RETURN_INT64(shape_id);
}

typedef struct BulkErrorContext
{
	int			item;
} BulkErrorContext;

static void
bulk_error_callback(void *arg)
{
	errcontext("where_clauses element %d", ((BulkErrorContext *) arg)->item);
}

PG_FUNCTION_INFO_V1(shape_router_register_shapes);
Datum
shape_router_register_shapes(PG_FUNCTION_ARGS)
{
	Oid			relid = required_relation_arg(fcinfo);
	ArrayType  *clauses;
	ArrayType  *columns = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *texts;
	bool	   *nulls;
	int			count;
	Relation	rel;
	Relation	catalog;
	CatalogIndexState indexes;
	Oid			sequence;
	MemoryContext per_item;
	BulkErrorContext errctx;
	ErrorContextCallback callback;
	RegisterCall call = {CurrentMemoryContext, NIL, NIL, {CurrentMemoryContext}};

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("where_clauses must not be NULL"),
				 errhint("Use an array with NULL elements for shapes that take every row.")));
	clauses = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(clauses) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("where_clauses must be a one-dimensional array")));
	deconstruct_array(clauses, TEXTOID, -1, false, TYPALIGN_INT, &texts, &nulls, &count);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rel = open_shaped_relation(relid);
	catalog = table_open(shape_catalog_relid(false), RowExclusiveLock);
	indexes = CatalogOpenIndexes(catalog);
	sequence = shape_sequence_relid();
	per_item = AllocSetContextCreate(CurrentMemoryContext, "shape_router register_shapes",
									 ALLOCSET_DEFAULT_SIZES);

	callback.callback = bulk_error_callback;
	callback.arg = &errctx;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	for (int i = 0; i < count; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(per_item);
		Datum		id;
		bool		id_null = false;

		errctx.item = i + 1;
		id = Int64GetDatum(register_one(catalog, indexes, sequence, rel,
										nulls[i] ? NULL : TextDatumGetCString(texts[i]),
										columns, &call));
		MemoryContextSwitchTo(old);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &id, &id_null);
		MemoryContextReset(per_item);
		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	error_context_stack = callback.previous;

	MemoryContextDelete(per_item);
	CatalogCloseIndexes(indexes);
	table_close(catalog, RowExclusiveLock);
	relation_close(rel, NoLock);
	return (Datum) 0;
}

/* Looks a shape up by id; returns a copy of its row or NULL. */
static HeapTuple
find_shape_tuple(Relation catalog, int64 shape_id)
{
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	ScanKeyInit(&key, Anum_shape_shape_id, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(shape_id));
	scan = systable_beginscan(catalog, shape_catalog_index_relid(SHAPE_CATALOG_PKEY_NAME), true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		tuple = heap_copytuple(tuple);
	systable_endscan(scan);
	return tuple;
}

PG_FUNCTION_INFO_V1(shape_router_drop_shape);
Datum
shape_router_drop_shape(PG_FUNCTION_ARGS)
{
	int64		shape_id = PG_GETARG_INT64(0);
	Relation	catalog = table_open(shape_catalog_relid(false), RowExclusiveLock);
	HeapTuple	tuple = find_shape_tuple(catalog, shape_id);
	bool		found = HeapTupleIsValid(tuple);

	shape_catalog_check_layout(RelationGetDescr(catalog));
	if (found)
	{
		bool		isnull;
		Oid			registered_by = DatumGetObjectId(heap_getattr(tuple, Anum_shape_registered_by,
																   RelationGetDescr(catalog), &isnull));
		Oid			relid = DatumGetObjectId(heap_getattr(tuple, Anum_shape_relid,
														  RelationGetDescr(catalog), &isnull));

		if (!has_privs_of_role(GetUserId(), registered_by) && !sr_relation_ownercheck(relid, GetUserId()))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to drop shape " INT64_FORMAT, shape_id),
					 errdetail("Only the role that registered a shape, or the owner of its table, may drop it.")));
		CatalogTupleDelete(catalog, &tuple->t_self);
	}
	table_close(catalog, RowExclusiveLock);
	PG_RETURN_BOOL(found);
}

/* The shard (0 .. shards - 1) of the plugin's `shard` option that a shape belongs to. */
PG_FUNCTION_INFO_V1(shape_router_shard_of);
Datum
shape_router_shard_of(PG_FUNCTION_ARGS)
{
	int64		shape_id = PG_GETARG_INT64(0);
	int32		shards = PG_GETARG_INT32(1);

	if (shards < 1 || shards > SR_SHARD_MAX_COUNT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shards must be between 1 and %d", SR_SHARD_MAX_COUNT)));
	PG_RETURN_INT32((int32) sr_shard_of((uint64) shape_id, (uint32) shards));
}

static int
compare_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* A catalog row of a shape, ordered by its shape id. */
typedef struct ShapeRow
{
	int64		shape_id;
	HeapTuple	tuple;
} ShapeRow;

static int
compare_shape_rows(const void *a, const void *b)
{
	return compare_int64(&((const ShapeRow *) a)->shape_id, &((const ShapeRow *) b)->shape_id);
}

/*
 * The catalog rows of the given tables' shapes (copies), ascending by shape id,
 * with the current snapshot: whatever visits them (messages naming shapes, drop
 * records in WAL order) does so in shape order, not in the heap's.
 */
static ShapeRow *
shape_rows_of_relations(Relation catalog, List *relids, int *count)
{
	ShapeRow   *rows = NULL;
	int			capacity = 0;
	ListCell   *lc;

	*count = 0;
	foreach(lc, relids)
	{
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tuple;

		ScanKeyInit(&key, Anum_shape_relid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(lfirst_oid(lc)));
		scan = systable_beginscan(catalog, shape_catalog_index_relid(SHAPE_CATALOG_RELID_INDEX_NAME),
								  true, NULL, 1, &key);
		while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		{
			bool		isnull;

			if (*count == capacity)
			{
				capacity = capacity == 0 ? 16 : capacity * 2;
				rows = rows == NULL ? palloc_extended(sizeof(ShapeRow) * capacity, MCXT_ALLOC_HUGE)
					: repalloc_huge(rows, sizeof(ShapeRow) * capacity);
			}
			rows[*count].shape_id = DatumGetInt64(heap_getattr(tuple, Anum_shape_shape_id,
															   RelationGetDescr(catalog), &isnull));
			rows[(*count)++].tuple = heap_copytuple(tuple);
		}
		systable_endscan(scan);
	}
	if (*count > 1)
		qsort(rows, *count, sizeof(ShapeRow), compare_shape_rows);
	return rows;
}

/* Calls visit for each shape of relid, in shape id order, with the current snapshot. */
static void
for_each_shape_of_relation(Relation catalog, Oid relid,
						   void (*visit) (const ShapeDef *def, void *arg), void *arg)
{
	int			count;
	ShapeRow   *rows = shape_rows_of_relations(catalog, list_make1_oid(relid), &count);

	for (int i = 0; i < count; i++)
	{
		ShapeDef	def;

		char	   *reason = NULL;

		/* One shape that this major cannot analyse (made under another) must not
		 * stop the others from being matched or guarded. */
		if (shape_def_from_tuple_or_reason(&def, rows[i].tuple, RelationGetDescr(catalog), SHAPE_DEF_SETS, &reason))
			visit(&def, arg);
		else
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("shape " INT64_FORMAT " is skipped: registered under PostgreSQL %d, its WHERE cannot be analysed again on this server: %s",
							def.shape_id, def.registered_major, reason),
					 errhint("Drop the shape and register it again.")));
		heap_freetuple(rows[i].tuple);
	}
	if (rows != NULL)
		pfree(rows);
}

typedef struct MatchState
{
	RowImage	image;
	RelationEvalInfo rel;
	ExprContext *econtext;
	MemoryContext context;		/* per shape, reset after each */
	int64	   *matches;
	int			count;
	int			capacity;
} MatchState;

static void
match_one(const ShapeDef *def, void *arg)
{
	MatchState *state = (MatchState *) arg;
	CompiledShape shape;
	char	   *message = NULL;
	ShapeOutcome outcome;

	state->rel.context = state->context;
	compiled_shape_init(&shape, state->context, def);
	outcome = compiled_shape_eval(&shape, &state->image, &state->rel, state->econtext, NULL, &message);
	if (outcome == SHAPE_ERROR)
		ereport(WARNING,
				(errmsg("shape " INT64_FORMAT ": %s", def->shape_id, message),
				 errdetail("The plugin sends this shape an error record for such a row.")));
	else if (outcome == SHAPE_DISABLED)
		ereport(WARNING,
				(errmsg("shape " INT64_FORMAT " is disabled: %s", def->shape_id, message)));
	ResetExprContext(state->econtext);
	MemoryContextReset(state->context);
	if (outcome != SHAPE_MATCH)
		return;
	if (state->count == state->capacity)
	{
		state->capacity = state->capacity * 2 + 16;
		state->matches = repalloc_huge(state->matches, sizeof(int64) * state->capacity);
	}
	state->matches[state->count++] = def->shape_id;
}

/*
 * A table row passed as anyelement, opened for evaluation: the function's
 * argument argno must be a row of a (non-partitioned) table.
 */
static Relation
open_row_argument(FunctionCallInfo fcinfo, int argno, const char *function, MatchState *state)
{
	Oid			row_type = get_fn_expr_argtype(fcinfo->flinfo, argno);
	Oid			relid = OidIsValid(row_type) ? typeidTypeRelid(row_type) : InvalidOid;
	HeapTupleHeader header;
	HeapTuple	tuple;
	Relation	rel;
	TupleTableSlot *slot;
	uint8	   *tags;

	if (!OidIsValid(relid) ||
		(get_rel_relkind(relid) != RELKIND_RELATION && get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s expects a row of a table, not type %s", function, format_type_be(row_type)),
				 errhint("Pass the table alias: SELECT shape_router.%s(t) FROM my_table t;", function)));
	header = PG_GETARG_HEAPTUPLEHEADER(argno);
	tuple = palloc0(sizeof(HeapTupleData));
	tuple->t_len = HeapTupleHeaderGetDatumLength(header);
	ItemPointerSetInvalid(&tuple->t_self);
	tuple->t_tableOid = relid;
	tuple->t_data = header;

	rel = relation_open(relid, AccessShareLock);
	state->context = AllocSetContextCreate(CurrentMemoryContext, "shape_router evaluation",
										   ALLOCSET_DEFAULT_SIZES);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tuple, slot, false);
	row_image_init(&state->image, slot, NULL);
	tags = palloc(RelationGetDescr(rel)->natts + 1);
	relation_column_tags(RelationGetDescr(rel), tags);
	state->rel.desc = RelationGetDescr(rel);
	state->rel.tags = tags;
	state->rel.generation = 1;
	state->econtext = CreateStandaloneExprContext();
	return rel;
}

static void
close_row_argument(Relation rel, MatchState *state)
{
	FreeExprContext(state->econtext, true);
	ExecDropSingleTupleTableSlot(state->image.slot);
	MemoryContextDelete(state->context);
	relation_close(rel, AccessShareLock);
}

PG_FUNCTION_INFO_V1(shape_router_matching_shapes);
Datum
shape_router_matching_shapes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel;
	Relation	catalog;
	MatchState	state = {0};

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rel = open_row_argument(fcinfo, 0, "matching_shapes", &state);
	catalog = table_open(shape_catalog_relid(false), AccessShareLock);
	state.matches = palloc(sizeof(int64) * 16);
	state.capacity = 16;

	for_each_shape_of_relation(catalog, RelationGetRelid(rel), match_one, &state);
	qsort(state.matches, state.count, sizeof(int64), compare_int64);
	for (int i = 0; i < state.count; i++)
	{
		Datum		id = Int64GetDatum(state.matches[i]);
		bool		null = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &id, &null);
	}

	table_close(catalog, AccessShareLock);
	close_row_argument(rel, &state);
	return (Datum) 0;
}

/*
 * One shape on one row, in full: 'true', 'false', 'null' (unknown: no match, as
 * in WHERE), or 'error: <message>' (the plugin's error record for that row).
 */
PG_FUNCTION_INFO_V1(shape_router_evaluate_shape);
Datum
shape_router_evaluate_shape(PG_FUNCTION_ARGS)
{
	int64		shape_id = PG_GETARG_INT64(0);
	Relation	rel;
	Relation	catalog;
	HeapTuple	tuple;
	ShapeDef	def;
	CompiledShape shape;
	MatchState	state = {0};
	char	   *message = NULL;
	const char *result = NULL;

	rel = open_row_argument(fcinfo, 1, "evaluate_shape", &state);
	catalog = table_open(shape_catalog_relid(false), AccessShareLock);
	tuple = find_shape_tuple(catalog, shape_id);
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("shape " INT64_FORMAT " does not exist", shape_id)));
	shape_def_from_tuple_or_reason(&def, tuple, RelationGetDescr(catalog), SHAPE_DEF_SETS, NULL);
	if (def.relid != RelationGetRelid(rel))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("shape " INT64_FORMAT " is on table %s, not on %s", shape_id,
						get_rel_name(def.relid), RelationGetRelationName(rel))));
	state.rel.context = state.context;
	compiled_shape_init(&shape, state.context, &def);
	switch (compiled_shape_eval(&shape, &state.image, &state.rel, state.econtext, NULL, &message))
	{
		case SHAPE_MATCH:
			result = "true";
			break;
		case SHAPE_NO_MATCH:
			result = "false";
			break;
		case SHAPE_UNKNOWN:
			result = "null";
			break;
		case SHAPE_ERROR:
			result = psprintf("error: %s", message);
			break;
		case SHAPE_DISABLED:
			result = psprintf("disabled: %s", message);
			break;
	}
	result = pstrdup(result);	/* the evaluation context goes away below */
	table_close(catalog, AccessShareLock);
	close_row_argument(rel, &state);
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

static char *
attnum_list(Oid relid, const Bitmapset *attnums)
{
	StringInfoData buf;
	int			attnum = -1;

	initStringInfo(&buf);
	while ((attnum = bms_next_member(attnums, attnum)) >= 0)
		if (attnum > 0)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
							 quote_identifier(get_attname(relid, attnum, false)));
	return buf.data;
}

/* The program, one instruction a line, and what its fallbacks evaluate. */
static List *
explain_program(const ShapeDef *def)
{
	const uint8 *program = (const uint8 *) VARDATA_ANY(def->program);
	size_t		program_len = VARSIZE_ANY_EXHDR(def->program);
	List	   *fallbacks = def->fallback_text != NULL ? (List *) stringToNode(def->fallback_text) : NIL;
	List	   *lines = NIL;
	List	   *context = deparse_context_for(get_rel_name(def->relid), def->relid);
	size_t		needed = sr_program_disassemble(program, NULL, 0);
	char	   *listing = palloc(needed);
	char	   *line;
	char	   *save;
	uint16		attnums[64];
	size_t		columns = sr_program_columns(program, attnums, lengthof(attnums));
	StringInfoData legend;
	ListCell   *lc;
	int			i = 0;

	lines = lappend(lines, psprintf("evaluation: %s", fallbacks == NIL
									? "native program (no PostgreSQL call)"
									: psprintf("program with %d fallback(s) to PostgreSQL's executor",
											   list_length(fallbacks))));
	lines = lappend(lines, psprintf("program: %zu bytes", program_len));
	sr_program_disassemble(program, listing, needed);
	for (line = strtok_r(listing, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		lines = lappend(lines, psprintf("  %s", line));
	initStringInfo(&legend);
	for (size_t c = 0; c < columns && c < lengthof(attnums); c++)
		appendStringInfo(&legend, "%s$%u = %s", c > 0 ? ", " : "", attnums[c],
						 quote_identifier(get_attname(def->relid, attnums[c], false)));
	if (legend.len > 0)
		lines = lappend(lines, psprintf("columns: %s", legend.data));
	foreach(lc, fallbacks)
		lines = lappend(lines, psprintf("fallback %d: %s", i++,
										deparse_expression((Node *) lfirst(lc), context, false, false)));
	return lines;
}

/* "equality on a (2 keys), range on b": an alternative's atoms by column and kind. */
/* "lower(email)": the expression(s) of a virtual column, as the cover names them. */
static char *
virtual_column_name(uint16 attnum, List *expressions, List *context)
{
	StringInfoData out;
	ListCell   *lc;

	initStringInfo(&out);
	foreach(lc, expressions)
	{
		ShapeIndexExpression *indexed = lfirst(lc);

		if (indexed->attnum == attnum)
			appendStringInfo(&out, "%s%s", out.len > 0 ? " or " : "",
							 deparse_expression(indexed->expr, context, false, false));
	}
	if (out.len == 0)
		appendStringInfo(&out, "%u", attnum);
	return psprintf("expression %s", out.data);
}

static char *
describe_atoms(Oid relid, const sr_index_atom *atoms, uint32 count, List *expressions, List *context)
{
	StringInfoData out;

	if (count == 0)
		return "no atom (the WHERE is never true)";
	initStringInfo(&out);
	for (uint32 k = 0; k < count; k++)
	{
		uint32		same = 0;
		bool		seen = false;

		for (uint32 j = 0; j < count; j++)
		{
			bool		alike = atoms[j].attnum == atoms[k].attnum && atoms[j].kind == atoms[k].kind;

			seen |= alike && j < k;
			same += alike;
		}
		if (seen || atoms[k].kind == SR_ATOM_EXCLUDED)
			continue;
		if (atoms[k].kind == SR_ATOM_ALWAYS)
		{
			appendStringInfo(&out, "%severy row (whole table)", out.len > 0 ? ", " : "");
			continue;
		}
		appendStringInfo(&out, "%s%s on %s", out.len > 0 ? ", " : "",
						 atoms[k].kind == SR_ATOM_RANGE ? "range"
						 : atoms[k].kind == SR_ATOM_NULL ? "NULL"
						 : atoms[k].kind == SR_ATOM_COMPLEMENT ? "complement"
						 : atoms[k].kind == SR_ATOM_PREFIX ? "prefix"
						 : atoms[k].kind == SR_ATOM_ELEMENT ? "element"
						 : atoms[k].kind == SR_ATOM_SUBSTRING ? (atoms[k].lower ? "lowered substring" : "substring")
						 : "equality",
						 SHAPE_ATTNUM_IS_VIRTUAL(atoms[k].attnum)
						 ? virtual_column_name(atoms[k].attnum, expressions, context)
						 : quote_identifier(get_attname(relid, atoms[k].attnum, false)));
		if (atoms[k].kind == SR_ATOM_COMPLEMENT)
			appendStringInfo(&out, atoms[k].upper == 0 ? " (any value but NULL)" : " (any value but NULL and %u excluded)", (uint32) atoms[k].upper);
		else if (same > 1)
			appendStringInfo(&out, " (%u %s)", same, atoms[k].kind == SR_ATOM_RANGE ? "ranges"
							 : atoms[k].kind == SR_ATOM_PREFIX ? "prefixes"
							 : atoms[k].kind == SR_ATOM_ELEMENT ? "elements"
							 : atoms[k].kind == SR_ATOM_SUBSTRING ? "grams" : "keys");
		if (atoms[k].kind == SR_ATOM_COMPOSITE)
			appendStringInfo(&out, " with a range on %s (composite)",
							 SHAPE_ATTNUM_IS_VIRTUAL(atoms[k].range_attnum)
							 ? virtual_column_name(atoms[k].range_attnum, expressions, context)
							 : quote_identifier(get_attname(relid, atoms[k].range_attnum, false)));
	}
	return out.data;
}

/*
 * Whether the decoder decides the shape from its index hits alone when filed
 * under this alternative: the alternative is exact, and its equality atoms (if
 * any) lie on one column (the router checks a key hit against the shape's own
 * keys, which it keeps for one column).
 */
static bool
decided_by_index(const sr_index_atom *atoms, uint32 count, bool exact)
{
	int			equality_column = -1;

	if (!exact)
		return false;
	for (uint32 k = 0; k < count; k++)
	{
		if (atoms[k].kind != SR_ATOM_EQUAL)
			continue;
		if (equality_column >= 0 && atoms[k].attnum != equality_column)
			return false;
		equality_column = atoms[k].attnum;
	}
	return true;
}

/* A shape's WHERE deparsed as this server reads it (NULL: every row). */
PG_FUNCTION_INFO_V1(shape_router_where_clause_of);
Datum
shape_router_where_clause_of(PG_FUNCTION_ARGS)
{
	int64		shape_id = PG_GETARG_INT64(0);
	Relation	catalog = table_open(shape_catalog_relid(false), AccessShareLock);
	HeapTuple	tuple = find_shape_tuple(catalog, shape_id);
	ShapeDef	def;
	Datum		result;

	char	   *reason = NULL;

	if (!HeapTupleIsValid(tuple))
	{
		table_close(catalog, AccessShareLock);
		PG_RETURN_NULL();
	}
	if (!shape_def_from_tuple_or_reason(&def, tuple, RelationGetDescr(catalog), SHAPE_DEF_WHERE_TEXT, &reason))
	{
		/* The shapes view must still list it: its text as stored, with a WARNING. */
		bool		isnull;
		Datum		source = heap_getattr(tuple, Anum_shape_where_source, RelationGetDescr(catalog), &isnull);

		if (def.registered_major == SHAPE_SERVER_MAJOR)
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("shape " INT64_FORMAT " is shown as stored: its WHERE text cannot be analysed again: %s",
							def.shape_id, reason),
					 errhint("Drop the shape and register it again.")));
		else
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("shape " INT64_FORMAT " is shown as stored: registered under PostgreSQL %d, its WHERE cannot be analysed again on this server: %s",
							def.shape_id, def.registered_major, reason),
					 errhint("Drop the shape and register it again.")));
		result = isnull ? (Datum) 0 : PointerGetDatum(DatumGetTextPCopy(source));
		table_close(catalog, AccessShareLock);
		if (isnull)
			PG_RETURN_NULL();
		PG_RETURN_DATUM(result);
	}
	table_close(catalog, AccessShareLock);
	if (def.where_text == NULL)
		PG_RETURN_NULL();
	result = DirectFunctionCall2(pg_get_expr, CStringGetTextDatum(def.where_text), ObjectIdGetDatum(def.relid));
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(shape_router_explain_shape);
Datum
shape_router_explain_shape(PG_FUNCTION_ARGS)
{
	int64		shape_id = PG_GETARG_INT64(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	catalog;
	HeapTuple	tuple;
	ShapeDef	def;
	List	   *lines = NIL;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	catalog = table_open(shape_catalog_relid(false), AccessShareLock);
	tuple = find_shape_tuple(catalog, shape_id);
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("shape " INT64_FORMAT " does not exist", shape_id)));
	shape_def_from_tuple(&def, tuple, RelationGetDescr(catalog));

	lines = lappend(lines, psprintf("shape: " INT64_FORMAT, def.shape_id));
	if (def.reanalysed)
		lines = lappend(lines, psprintf("registered under PostgreSQL %d: re-analysed from its WHERE text on this server",
										def.registered_major));
	lines = lappend(lines, psprintf("relation: %s",
									quote_qualified_identifier(get_namespace_name(get_rel_namespace(def.relid)),
															   get_rel_name(def.relid))));
	if (def.where_text == NULL)
	{
		lines = lappend(lines, "where: (none: every row matches)");
		lines = lappend(lines, "evaluation: none (always matches)");
	}
	else
	{
		lines = lappend(lines, psprintf("where: %s",
										TextDatumGetCString(DirectFunctionCall2(pg_get_expr,
																				CStringGetTextDatum(def.where_text),
																				ObjectIdGetDatum(def.relid)))));
		lines = lappend(lines, psprintf("reads columns: %s", attnum_list(def.relid, def.where_columns)));
		lines = list_concat(lines, explain_program(&def));
	}
	lines = lappend(lines, def.columns == NULL ? "projects: all columns"
					: psprintf("projects: %s (and the primary key)", attnum_list(def.relid, def.columns)));
	if (def.where_text == NULL && def.cover_alternatives > 0)
		lines = lappend(lines, "routing: index cover, every row (no WHERE): a whole-table shape, a candidate for every change of its table, decided without a program");
	else if (def.where_text == NULL)
		lines = lappend(lines, "routing: every change of its table (no WHERE)");
	else if (def.cover_alternatives > 0)
	{
		ShapeCover	cover;
		List	   *context = deparse_context_for(get_rel_name(def.relid), def.relid);

		/* The sources are recomputed; the atoms are the stored ones. */
		shape_cover(stringToNode(def.where_text), def.relid, &cover);
		lines = lappend(lines, psprintf("routing: index cover, %d alternative(s); the decoder files the shape "
										"under the one whose keys have the fewest shapes",
										def.cover_alternatives));
		for (int a = 0, first = 0; a < def.cover_alternatives; first += def.cover_sizes[a], a++)
			lines = lappend(lines, psprintf("  alternative %d: %s%s, from %s", a + 1,
											describe_atoms(def.relid, def.cover_atoms + first, def.cover_sizes[a],
														   cover.expressions, context),
											((def.cover_exact >> a) & 1) == 0 || def.cover_sizes[a] == 0 ? ""
											: decided_by_index(def.cover_atoms + first, def.cover_sizes[a], true)
											? "; exact: a hit is a match, the program is not run"
											: "; exact, but its keys lie on several columns: the program decides",
											a < cover.alternative_count && cover.sources[a] != NULL
											? deparse_expression(cover.sources[a], context, false, false)
											: "(the stored atoms)"));
	}
	else if (def.program != NULL &&
			 sr_program_runs_in_lane((const uint8_t *) VARDATA_ANY(def.program), VARSIZE_ANY_EXHDR(def.program)))
		lines = lappend(lines, "routing: scan shape in a form lane, decided there: one pass a change over the constants of every shape whose WHERE is this one but for its constants (no index cover: no equality, IN list or range that the WHERE implies on every row it matches)");
	else
		lines = lappend(lines, "routing: scan shape, run for every change of its table (no index cover: no equality, IN list or range that the WHERE implies on every row it matches)");

	foreach(lc, lines)
	{
		Datum		line = CStringGetTextDatum((char *) lfirst(lc));
		bool		null = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &line, &null);
	}
	table_close(catalog, AccessShareLock);
	return (Datum) 0;
}

/*
 * Deletes every shape of the given tables in ascending shape id order: the
 * plugin emits one drop record per deleted catalog row, in WAL order, and the
 * records of one statement must go out in ascending shape order.
 */
static void
delete_shapes_of_relations(Relation catalog, List *relids)
{
	int			count;
	ShapeRow   *rows = shape_rows_of_relations(catalog, relids, &count);

	for (int i = 0; i < count; i++)
	{
		CatalogTupleDelete(catalog, &rows[i].tuple->t_self);
		heap_freetuple(rows[i].tuple);
	}
	if (rows != NULL)
		pfree(rows);
}

/* The indexed expressions of dropped tables go with them (a later table may reuse the OID). */
static void
delete_index_expressions_of_relations(List *relids)
{
	Oid			table_relid = shape_index_expressions_relid();
	Relation	table;
	ListCell   *lc;

	if (!OidIsValid(table_relid) || relids == NIL)
		return;
	table = table_open(table_relid, RowExclusiveLock);
	foreach(lc, relids)
	{
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tuple;

		ScanKeyInit(&key, Anum_index_expression_relid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(lfirst_oid(lc)));
		scan = systable_beginscan(table, shape_catalog_index_relid(INDEX_EXPRESSIONS_PKEY_NAME), true, NULL, 1, &key);
		while (HeapTupleIsValid(tuple = systable_getnext(scan)))
			CatalogTupleDelete(table, &tuple->t_self);
		systable_endscan(scan);
	}
	table_close(table, RowExclusiveLock);
}

/*
 * Rows of an event-trigger function (pg_event_trigger_dropped_objects and
 * friends) whose classid is pg_class, read through SPI. Filtering happens here,
 * in C: an operator in the query would be resolved through the caller's
 * search_path, which an unprivileged role may control.
 */
typedef struct ClassObject
{
	Oid			objid;
	int32		objsubid;
	char	   *identity;
} ClassObject;

static List *
class_objects(const char *query)
{
	List	   *objects = NIL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the event trigger's objects");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Oid			classid = DatumGetObjectId(SPI_getbinval(row, desc, 1, &isnull));
		ClassObject *object;

		if (isnull || classid != RelationRelationId)
			continue;
		object = palloc(sizeof(ClassObject));
		object->objid = DatumGetObjectId(SPI_getbinval(row, desc, 2, &isnull));
		object->objsubid = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
		object->identity = SPI_getvalue(row, desc, 4);
		objects = lappend(objects, object);
	}
	return objects;				/* valid until the caller's SPI_finish() */
}

/* An event trigger's opening: the catalog, or NULL while the extension itself is being dropped. */
static Relation
event_trigger_catalog(FunctionCallInfo fcinfo, const char *function, LOCKMODE lockmode)
{
	Oid			catalog_relid;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("shape_router.%s() must be called as an event trigger", function)));
	catalog_relid = shape_catalog_relid(true);
	return OidIsValid(catalog_relid) ? table_open(catalog_relid, lockmode) : NULL;
}

typedef struct ColumnUse
{
	int			attnum;
	StringInfoData users;
} ColumnUse;

static void
note_column_user(const ShapeDef *def, void *arg)
{
	ColumnUse  *use = (ColumnUse *) arg;

	if (bms_is_member(use->attnum, def->where_columns) ||
		(def->columns != NULL && bms_is_member(use->attnum, def->columns)))
		appendStringInfo(&use->users, "%s" INT64_FORMAT, use->users.len > 0 ? ", " : "", def->shape_id);
}

/*
 * sql_drop: DROP TABLE takes the table's shapes with it; dropping a column that
 * a shape reads or projects is refused, naming the shapes.
 */
PG_FUNCTION_INFO_V1(shape_router_on_sql_drop);
Datum
shape_router_on_sql_drop(PG_FUNCTION_ARGS)
{
	Relation	catalog;
	List	   *objects;
	List	   *dropped_tables = NIL;
	ListCell   *lc;

	catalog = event_trigger_catalog(fcinfo, "on_sql_drop", RowExclusiveLock);
	if (catalog == NULL)
		PG_RETURN_VOID();		/* the extension itself is being dropped */
	objects = class_objects("SELECT classid, objid, objsubid, object_identity"
							" FROM pg_catalog.pg_event_trigger_dropped_objects()");
	foreach(lc, objects)
	{
		ClassObject *object = (ClassObject *) lfirst(lc);

		if (object->objsubid == 0)
			dropped_tables = lappend_oid(dropped_tables, object->objid);
	}
	delete_shapes_of_relations(catalog, dropped_tables);
	delete_index_expressions_of_relations(dropped_tables);
	foreach(lc, objects)
	{
		ClassObject *object = (ClassObject *) lfirst(lc);
		ColumnUse	use;

		if (object->objsubid == 0 || list_member_oid(dropped_tables, object->objid))
			continue;
		use.attnum = object->objsubid;
		initStringInfo(&use.users);
		for_each_shape_of_relation(catalog, object->objid, note_column_user, &use);
		if (use.users.len > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot drop column %s because shapes use it", object->identity),
					 errdetail("Shapes using it: %s.", use.users.data),
					 errhint("Drop those shapes first with shape_router.drop_shape().")));
	}
	SPI_finish();
	table_close(catalog, RowExclusiveLock);
	PG_RETURN_VOID();
}

/* What an ALTER TABLE may have broken, shape by shape. */
typedef struct AlterCheck
{
	Relation	rel;			/* retyped columns: the shapes' own table */
	Relation	logged;			/* identity: the table whose rows the WAL carries */
	Oid			shaped_relid;	/* the shapes' table (logged, or its ancestor) */
	StringInfoData retyped;		/* "shape N reads column c" entries */
	StringInfoData uncovered;	/* "N on table t" entries */
} AlterCheck;

static void
check_shape_columns(const ShapeDef *def, void *arg)
{
	AlterCheck *check = (AlterCheck *) arg;
	TupleDesc	desc = RelationGetDescr(check->rel);

	if (!def->has_where)
		return;
	for (int i = 0; i < def->where_count; i++)
	{
		AttrNumber	attnum = def->where_attnums[i];
		Form_pg_attribute attr = attnum >= 1 && attnum <= desc->natts ? TupleDescAttr(desc, attnum - 1) : NULL;

		if (attr != NULL && !attr->attisdropped && attr->atttypid == def->where_types[2 * i] &&
			attr->attcollation == def->where_types[2 * i + 1])
			continue;
		appendStringInfo(&check->retyped, "%sshape " INT64_FORMAT " reads column %s",
						 check->retyped.len > 0 ? ", " : "", def->shape_id,
						 attr != NULL ? quote_identifier(NameStr(attr->attname)) : "(gone)");
		return;
	}
}

static void
check_shape_identity(const ShapeDef *def, void *arg)
{
	AlterCheck *check = (AlterCheck *) arg;

	if (shape_column_outside_identity(check->logged, check->shaped_relid, def->where_columns) == NULL)
		return;
	appendStringInfo(&check->uncovered, "%s" INT64_FORMAT, check->uncovered.len > 0 ? ", " : "",
					 def->shape_id);
	if (check->shaped_relid != RelationGetRelid(check->logged))
		appendStringInfo(&check->uncovered, " (on %s, partition %s)",
						 get_rel_name(check->shaped_relid), RelationGetRelationName(check->logged));
}

/*
 * The tables whose logged rows reach the shapes of an altered table or its
 * partitions: the table itself, or every leaf partition of a partitioned one.
 * For each, the shapes of that table and of its ancestors must still find what
 * their WHERE reads in its old rows.
 */
static void
check_identity_of_tree(Relation catalog, Oid relid, AlterCheck *check)
{
	List	   *tables = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE
		? find_all_inheritors(relid, AccessShareLock, NULL) : list_make1_oid(relid);
	ListCell   *lc;

	foreach(lc, tables)
	{
		List	   *shaped;
		ListCell   *shaped_lc;

		if (get_rel_relkind(lfirst_oid(lc)) != RELKIND_RELATION)
			continue;
		check->logged = relation_open(lfirst_oid(lc), AccessShareLock);
		shaped = list_make1_oid(lfirst_oid(lc));
		if (check->logged->rd_rel->relispartition)
			shaped = list_concat(shaped, get_partition_ancestors(lfirst_oid(lc)));
		foreach(shaped_lc, shaped)
		{
			check->shaped_relid = lfirst_oid(shaped_lc);
			for_each_shape_of_relation(catalog, check->shaped_relid, check_shape_identity, check);
		}
		relation_close(check->logged, AccessShareLock);
	}
}

/*
 * ddl_command_end for ALTER TABLE: changing the type or collation of a column a
 * shape's WHERE reads, or weakening the replica identity below what a shape's
 * WHERE needs (of the table, or of a partition that a shape on an ancestor
 * sees, attached or altered), is refused, naming the shapes. (Renames are
 * fine: programs and covers refer to columns by number, and the WHERE's text
 * is read back through where_names.)
 */
PG_FUNCTION_INFO_V1(shape_router_on_ddl_command_end);
Datum
shape_router_on_ddl_command_end(PG_FUNCTION_ARGS)
{
	Relation	catalog;
	List	   *objects;
	List	   *seen = NIL;
	ListCell   *lc;

	catalog = event_trigger_catalog(fcinfo, "on_ddl_command_end", AccessShareLock);
	if (catalog == NULL)
		PG_RETURN_VOID();
	objects = class_objects("SELECT classid, objid, objsubid, object_identity"
							" FROM pg_catalog.pg_event_trigger_ddl_commands()");
	foreach(lc, objects)
	{
		ClassObject *object = (ClassObject *) lfirst(lc);
		char		relkind = get_rel_relkind(object->objid);
		AlterCheck	check;

		if (list_member_oid(seen, object->objid) ||
			(relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE))
			continue;
		seen = lappend_oid(seen, object->objid);
		check.rel = relation_open(object->objid, AccessShareLock);
		initStringInfo(&check.retyped);
		initStringInfo(&check.uncovered);
		for_each_shape_of_relation(catalog, object->objid, check_shape_columns, &check);
		if (check.retyped.len > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot change the type or collation of a column of table %s that shapes read",
							object->identity),
					 errdetail("%s.", check.retyped.data),
					 errhint("Drop those shapes first with shape_router.drop_shape(), then register them again.")));
		check_identity_of_tree(catalog, object->objid, &check);
		if (check.uncovered.len > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the replica identity of table %s no longer covers the columns its shapes read",
							object->identity),
					 errdetail("Shapes affected: %s. UPDATE and DELETE are routed on the old row.", check.uncovered.data),
					 errhint("Keep REPLICA IDENTITY FULL, or drop those shapes first.")));
		relation_close(check.rel, AccessShareLock);
	}
	SPI_finish();
	table_close(catalog, AccessShareLock);
	PG_RETURN_VOID();
}

/*
 * ddl_command_start for DROP EXTENSION shape_router: refused while a logical
 * slot of this database decodes with the plugin. Such a slot still has WAL
 * from before the drop to decode, and the catalog it needs would be gone.
 */
PG_FUNCTION_INFO_V1(shape_router_on_ddl_command_start);
Datum
shape_router_on_ddl_command_start(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigger;
	DropStmt   *stmt;
	ListCell   *lc;
	bool		drops_us = false;
	StringInfoData slots;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("shape_router.on_ddl_command_start() must be called as an event trigger")));
	trigger = (EventTriggerData *) fcinfo->context;
	if (trigger->parsetree == NULL || !IsA(trigger->parsetree, DropStmt))
		PG_RETURN_VOID();
	stmt = (DropStmt *) trigger->parsetree;
	if (stmt->removeType != OBJECT_EXTENSION)
		PG_RETURN_VOID();
	foreach(lc, stmt->objects)
		if (IsA(lfirst(lc), String) && strcmp(strVal(lfirst(lc)), SHAPE_ROUTER_EXTENSION) == 0)
			drops_us = true;
	if (!drops_us)
		PG_RETURN_VOID();

	initStringInfo(&slots);
	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	for (int i = 0; i < max_replication_slots; i++)
	{
		ReplicationSlot *slot = &ReplicationSlotCtl->replication_slots[i];

		if (slot->in_use && slot->data.database == MyDatabaseId &&
			strcmp(NameStr(slot->data.plugin), SHAPE_ROUTER_EXTENSION) == 0)
			appendStringInfo(&slots, "%s%s", slots.len > 0 ? ", " : "", NameStr(slot->data.name));
	}
	LWLockRelease(ReplicationSlotControlLock);
	if (slots.len > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("cannot drop extension shape_router while replication slots use its plugin"),
				 errdetail("Slots: %s.", slots.data),
				 errhint("Drop the slots first with pg_drop_replication_slot().")));
	PG_RETURN_VOID();
}
