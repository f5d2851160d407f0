/*
 * emit_bench() — what writing one record costs on its own, with shape_router's
 * own record writer (src/pg/record.c, compiled into this module): one row of a
 * table written again and again as an insert, update or delete record (JSON or
 * text), or a begin or commit record, optionally packed into batches as the
 * batch-bytes option packs them. No decoding, no routing: the CPU time of the
 * loop over the number of records.
 */
#include "postgres.h"

#include <time.h>

#include "access/table.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "shape_router_pg.h"

extern PGDLLEXPORT Datum emit_bench(PG_FUNCTION_ARGS);

static double
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}

/* The table's first row, in a slot of its own. */
static TupleTableSlot *
first_row(Relation rel)
{
	TupleTableSlot *scanned = table_slot_create(rel, NULL);
	TupleTableSlot *row = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);

	if (!table_scan_getnextslot(scan, ForwardScanDirection, scanned))
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("emit_bench needs a row in table \"%s\"", RelationGetRelationName(rel))));
	ExecCopySlot(row, scanned);
	slot_getallattrs(row);
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(scanned);
	return row;
}

PG_FUNCTION_INFO_V1(emit_bench);
Datum
emit_bench(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int32		records = PG_GETARG_INT32(1);
	char	   *format = text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(3));
	int32		batch_bytes = PG_GETARG_INT32(4);
	OutputFormat output_format;
	RecordOp	op = RECORD_INSERT;
	bool		row_record = true;
	Relation	rel;
	RelationInfo info;
	RecordRows	rows = {0};
	TupleTableSlot *row;
	StringInfoData record;
	StringInfoData batch;
	MemoryContext per_record;
	MemoryContext old;
	int64		bytes = 0;
	double		start;
	double		elapsed;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {0};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (records < 1 || batch_bytes < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("emit_bench needs records >= 1 and batch_bytes >= 0")));
	if (strcmp(format, "json") == 0)
		output_format = OUTPUT_FORMAT_JSON;
	else if (strcmp(format, "text") == 0)
		output_format = OUTPUT_FORMAT_TEXT;
	else
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("format is \"json\" or \"text\"")));

	rel = table_open(relid, AccessShareLock);
	memset(&info, 0, sizeof(info));
	info.desc = RelationGetDescr(rel);
	record_relation_build(&info, rel);
	row = first_row(rel);
	if (strcmp(kind, "insert") == 0)
		rows.new_row = row;
	else if (strcmp(kind, "update") == 0)
	{
		op = RECORD_UPDATE;
		rows.new_row = rows.old_row = row;
	}
	else if (strcmp(kind, "delete") == 0)
	{
		op = RECORD_DELETE;
		rows.old_row = row;
	}
	else if (strcmp(kind, "begin") == 0 || strcmp(kind, "commit") == 0)
		row_record = false;
	else
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("kind is \"insert\", \"update\", \"delete\", \"begin\" or \"commit\"")));

	initStringInfo(&record);
	initStringInfo(&batch);
	/* what a record allocates goes away with it, as the plugin's per-change context does */
	per_record = AllocSetContextCreate(CurrentMemoryContext, "emit_bench record", ALLOCSET_DEFAULT_SIZES);
	start = cpu_ns();
	for (int32 i = 0; i < records; i++)
	{
		old = MemoryContextSwitchTo(per_record);
		resetStringInfo(&record);
		if (row_record)
			record_append_row_change(&record, output_format, 1 + i, op, &info, NULL, &rows, NULL, NULL);
		else if (kind[0] == 'b')
			record_append_begin(&record, output_format, NULL, NULL);
		else
			record_append_commit(&record, output_format, NULL, NULL, NULL);
		bytes += record.len;
		if (batch_bytes > 0)
		{
			/* as send_record packs: a full batch goes out (here: is emptied) first */
			if (batch.len > 0 && batch.len + 1 + record.len > batch_bytes)
				resetStringInfo(&batch);
			record_batch_append(&batch, record.data, record.len);
			if (batch.len >= batch_bytes)
				resetStringInfo(&batch);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(per_record);
	}
	elapsed = cpu_ns() - start;
	table_close(rel, AccessShareLock);
	values[0] = Float8GetDatum(elapsed / records);
	values[1] = Float8GetDatum((double) bytes / records);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
