/*
 * module.c — library entry: module magic, GUCs, and the counters of the latest
 * decoding session of this backend.
 */
#include "shape_router_pg.h"

#include <sys/resource.h>

#include "fmgr.h"
#include "funcapi.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

extern PGDLLEXPORT void _PG_init(void);

int			shape_router_stats_log_level = DEBUG1;
bool		shape_router_warm_start = true;
/*
 * From this many index keys on, the front filter (16 bits a key) outgrows a
 * core's L2 cache of 2 MB, and each change prefetches the filter lines of the
 * next one; below it they are in cache, and the prefetch's bookkeeping costs
 * more than it saves.
 */
int			shape_router_prefetch_min_keys = 1048576;

static const struct config_enum_entry log_level_options[] = {
	{"debug5", DEBUG5, false},
	{"debug4", DEBUG4, false},
	{"debug3", DEBUG3, false},
	{"debug2", DEBUG2, false},
	{"debug1", DEBUG1, false},
	{"info", INFO, false},
	{"notice", NOTICE, false},
	{"warning", WARNING, false},
	{"log", LOG, false},
	{NULL, 0, false}
};

/* Plain data, no constructor: the latest published counters of this backend. */
static sr_counters last_counters;
static int64 last_shapes;
static int64 last_relations;
static sr_index_stats last_index;
static bool last_warm_start;
static int64 last_start_cpu_us = -1;
static int64 last_session_cpu_us = -1;

void
_PG_init(void)
{
	DefineCustomEnumVariable("shape_router.stats_log_level",
							 "Level at which a decoding session logs its funnel counters when it ends.",
							 "Walsenders have no SQL session to ask, so their counters go to the server log.",
							 &shape_router_stats_log_level,
							 DEBUG1,
							 log_level_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("shape_router.warm_start",
							 "Lets a decoding session through the SQL interface reuse the shapes of the previous one.",
							 "A session of pg_logical_slot_get_changes that ends cleanly keeps its shapes and index in "
							 "this backend; the next session reuses them when it starts on the same slot exactly where "
							 "that one stopped. Off: every session loads the catalog.",
							 &shape_router_warm_start,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("shape_router.prefetch_min_keys",
							"Index keys from which each change prefetches the index lines of the next change.",
							"With fewer keys the index's front filter stays in cache and the prefetch costs more than "
							"it saves. Read when a decoding session starts and at each commit.",
							&shape_router_prefetch_min_keys,
							1048576,
							0,
							INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("shape_router");
}

void
shape_router_check_status(sr_status status, const char *what)
{
	if (status == SR_OK)
		return;
	ereport(ERROR,
			(errcode(status == SR_OUT_OF_MEMORY ? ERRCODE_OUT_OF_MEMORY : ERRCODE_INTERNAL_ERROR),
			 errmsg("shape_router could not %s: %s", what, sr_status_message(status))));
}

void
shape_router_publish_stats(const sr_counters *counters, size_t shapes, size_t relations,
						   const sr_index_stats *index, bool warm_start, int64 start_cpu_us,
						   int64 session_cpu_us, bool final)
{
	last_warm_start = warm_start;
	last_start_cpu_us = start_cpu_us;
	last_session_cpu_us = session_cpu_us;
	last_counters = *counters;
	last_shapes = (int64) shapes;
	last_relations = (int64) relations;
	last_index = *index;
	if (final)
	{
		StringInfoData line;

		initStringInfo(&line);
#define SR_COUNTER_LOG(name, meaning) \
		appendStringInfo(&line, "%s" #name "=" UINT64_FORMAT, line.len > 0 ? " " : "", counters->name);
		SR_COUNTERS(SR_COUNTER_LOG)
#undef SR_COUNTER_LOG
		ereport(shape_router_stats_log_level,
				(errmsg("shape_router decoding stats: %s warm_start=%d shapes=%zu relations=%zu index_keys=%zu index_bytes=%zu"
						" index_rebuilds=" UINT64_FORMAT " index_background_builds=" UINT64_FORMAT
						" index_longest_pause_us=" UINT64_FORMAT " start_cpu_us=" INT64_FORMAT " session_cpu_us=" INT64_FORMAT,
						line.data, warm_start ? 1 : 0, shapes, relations, index->keys, index->static_bytes, index->rebuilds,
						index->background_builds, index->longest_pause_us, start_cpu_us, session_cpu_us)));
		pfree(line.data);
	}
}

int64
shape_router_backend_cpu_us(void)
{
	struct rusage usage;

	if (getrusage(RUSAGE_SELF, &usage) != 0)
		return 0;
	return (int64) usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec +
		(int64) usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
}

PG_FUNCTION_INFO_V1(shape_router_decoding_stats);
Datum
shape_router_decoding_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[64];
	bool		nulls[64] = {0};
	int			n = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
#define SR_COUNTER_VALUE(name, meaning) values[n++] = Int64GetDatum((int64) last_counters.name);
	SR_COUNTERS(SR_COUNTER_VALUE)
#undef SR_COUNTER_VALUE
	values[n++] = Int64GetDatum(last_shapes);
	values[n++] = Int64GetDatum(last_relations);
	values[n++] = Int64GetDatum((int64) last_index.keys);
	values[n++] = Int64GetDatum((int64) last_index.static_bytes);
	values[n++] = Int64GetDatum((int64) last_index.overlay_keys);
	values[n++] = Int64GetDatum((int64) last_index.rebuilds);
	values[n++] = Int64GetDatum((int64) last_index.background_builds);
	values[n++] = Int64GetDatum((int64) last_index.longest_pause_us);
	values[n++] = Int64GetDatum((int64) last_index.range_entries);
	values[n++] = Int64GetDatum((int64) last_index.lane_shapes);
	values[n++] = Int64GetDatum((int64) last_index.lane_forms);
	values[n++] = BoolGetDatum(last_warm_start);
	if (last_start_cpu_us >= 0)
		values[n++] = Int64GetDatum(last_start_cpu_us);
	else
		nulls[n++] = true;
	if (last_session_cpu_us >= 0)
		values[n++] = Int64GetDatum(last_session_cpu_us);
	else
		nulls[n++] = true;
	if (desc->natts != n)
		elog(ERROR, "shape_router.decoding_stats() returns %d columns, the library %d: reinstall the extension",
			 desc->natts, n);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
