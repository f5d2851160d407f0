/*
 * module.c — library entry: module magic, GUCs, and the counters of the latest
 * decoding session of this backend.
 */
#include "shape_router_pg.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

extern PGDLLEXPORT void _PG_init(void);

int			shape_router_stats_log_level = DEBUG1;

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
						   const sr_index_stats *index, bool final)
{
	last_counters = *counters;
	last_shapes = (int64) shapes;
	last_relations = (int64) relations;
	last_index = *index;
	if (final)
		ereport(shape_router_stats_log_level,
				(errmsg("shape_router decoding stats: changes_seen=" UINT64_FORMAT
						" relation_gate_passes=" UINT64_FORMAT
						" filter_passes=" UINT64_FORMAT " mphf_hits=" UINT64_FORMAT
						" gate_evaluations=" UINT64_FORMAT " fallback_evaluations=" UINT64_FORMAT
						" records_emitted=" UINT64_FORMAT
						" errors=" UINT64_FORMAT " catalog_changes=" UINT64_FORMAT
						" shapes=%zu relations=%zu index_keys=%zu index_bytes=%zu index_rebuilds=" UINT64_FORMAT
						" index_background_builds=" UINT64_FORMAT " index_longest_pause_us=" UINT64_FORMAT,
						counters->changes_seen, counters->relation_gate_passes,
						counters->filter_passes, counters->mphf_hits,
						counters->gate_evaluations, counters->fallback_evaluations,
						counters->records_emitted,
						counters->errors, counters->catalog_changes, shapes, relations,
						index->keys, index->static_bytes, index->rebuilds,
						index->background_builds, index->longest_pause_us)));
}

PG_FUNCTION_INFO_V1(shape_router_decoding_stats);
Datum
shape_router_decoding_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[17];
	bool		nulls[17] = {0};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum((int64) last_counters.changes_seen);
	values[1] = Int64GetDatum((int64) last_counters.relation_gate_passes);
	values[2] = Int64GetDatum((int64) last_counters.filter_passes);
	values[3] = Int64GetDatum((int64) last_counters.mphf_hits);
	values[4] = Int64GetDatum((int64) last_counters.gate_evaluations);
	values[5] = Int64GetDatum((int64) last_counters.fallback_evaluations);
	values[6] = Int64GetDatum((int64) last_counters.records_emitted);
	values[7] = Int64GetDatum((int64) last_counters.errors);
	values[8] = Int64GetDatum((int64) last_counters.catalog_changes);
	values[9] = Int64GetDatum(last_shapes);
	values[10] = Int64GetDatum(last_relations);
	values[11] = Int64GetDatum((int64) last_index.keys);
	values[12] = Int64GetDatum((int64) last_index.static_bytes);
	values[13] = Int64GetDatum((int64) last_index.overlay_keys);
	values[14] = Int64GetDatum((int64) last_index.rebuilds);
	values[15] = Int64GetDatum((int64) last_index.background_builds);
	values[16] = Int64GetDatum((int64) last_index.longest_pause_us);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
