/*
 * sr_bench — what the end-to-end benchmark needs from inside the server:
 *  - a no-op logical decoding output plugin: PostgreSQL's own decoding cost, the
 *    floor no plugin can go below (it writes one byte per commit, nothing else);
 *  - bench_rusage(): CPU time and peak RSS of the calling backend, so the
 *    harness can measure exactly what pg_logical_slot_*_changes costs.
 */
#include "postgres.h"

#include <sys/resource.h>

#include "fmgr.h"
#include "funcapi.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"

PG_MODULE_MAGIC;

extern PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);
extern PGDLLEXPORT Datum bench_rusage(PG_FUNCTION_ARGS);

static void
floor_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init)
{
	opt->output_type = OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
}

static void
floor_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
}

static void
floor_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, Relation rel, ReorderBufferChange *change)
{
}

static void
floor_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	OutputPluginPrepareWrite(ctx, true);
	appendStringInfoChar(ctx->out, 'c');
	OutputPluginWrite(ctx, true);
}

void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = floor_startup;
	cb->begin_cb = floor_begin;
	cb->change_cb = floor_change;
	cb->commit_cb = floor_commit;
}

PG_FUNCTION_INFO_V1(bench_rusage);
Datum
bench_rusage(PG_FUNCTION_ARGS)
{
	struct rusage usage;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {0};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	getrusage(RUSAGE_SELF, &usage);
	values[0] = Int64GetDatum((int64) usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec);
	values[1] = Int64GetDatum((int64) usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec);
	values[2] = Int64GetDatum((int64) usage.ru_maxrss);	/* kB */
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
