/*
 * sr_bench — what the end-to-end benchmark needs from inside the server:
 *  - a no-op logical decoding output plugin: PostgreSQL's own decoding cost, the
 *    floor no plugin can go below (it writes one byte per commit, nothing else);
 *  - bench_rusage(): CPU time and peak RSS of the calling backend, so the
 *    harness can measure exactly what pg_logical_slot_*_changes costs;
 *  - bench_floor_stats(): the no-op plugin's last decoding session in this
 *    backend timed from inside, as shape_router.decoding_stats() times its own
 *    (start_cpu_us: until the first change; session_cpu_us: the whole session,
 *    to the release of the decoding context's memory).
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
extern PGDLLEXPORT Datum bench_floor_stats(PG_FUNCTION_ARGS);

static int64 floor_cpu_at_start;
static int64 floor_start_cpu_us = -1;
static int64 floor_session_cpu_us = -1;

static int64
backend_cpu_us(void)
{
	struct rusage usage;

	getrusage(RUSAGE_SELF, &usage);
	return (int64) usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec +
		(int64) usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
}

static void
floor_session_end(void *arg)
{
	floor_session_cpu_us = backend_cpu_us() - floor_cpu_at_start;
}

static void
floor_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init)
{
	MemoryContextCallback *end = MemoryContextAlloc(ctx->context, sizeof(MemoryContextCallback));

	floor_cpu_at_start = backend_cpu_us();
	floor_start_cpu_us = floor_session_cpu_us = -1;
	end->func = floor_session_end;
	end->arg = NULL;
	MemoryContextRegisterResetCallback(ctx->context, end);
	opt->output_type = OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
}

static void
floor_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
}

static void
floor_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, Relation rel, ReorderBufferChange *change)
{
	if (floor_start_cpu_us < 0)
		floor_start_cpu_us = backend_cpu_us() - floor_cpu_at_start;
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

PG_FUNCTION_INFO_V1(bench_floor_stats);
Datum
bench_floor_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {floor_start_cpu_us < 0, floor_session_cpu_us < 0};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(floor_start_cpu_us);
	values[1] = Int64GetDatum(floor_session_cpu_us);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
