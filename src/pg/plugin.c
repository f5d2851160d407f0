/*
 * plugin.c — the shape_router logical decoding output plugin.
 *
 * Per change: relation gate (one probe in the core) → evaluate each candidate
 * shape's WHERE on the old and new row → records in ascending shape order.
 * Catalog rows of shape_router.shape_catalog decoded from the stream are
 * applied to the router in WAL order, so a registration is live from its own
 * transaction on and a rolled-back one never existed.
 *
 * This file holds the output plugin callbacks and the session state they share
 * (created, parked for the next session, reused, destroyed). The rest follows
 * the data flow: plugin_options.c (the plugin's options), catalog_sync.c (the
 * catalog loaded and followed in the stream; its whole-catalog read through
 * catalog_page_copy.c), shape_cache.c (the shapes in the
 * router and their state in the shell), relation_cache.c (what decoding keeps
 * per relation), routing.c (a change to its shapes' records) and output.c
 * (writing records). plugin_internal.h declares what they share.
 */
#include "shape_router_pg.h"

#include "executor/executor.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/slot.h"
#include "replication/walsender.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "plugin_internal.h"

extern PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);

static void shape_router_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init);
static void shape_router_shutdown(LogicalDecodingContext *ctx);
static void shape_router_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn);
static void shape_router_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn);
static void shape_router_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
								Relation relation, ReorderBufferChange *change);
static void shape_router_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
								  int nrelations, Relation relations[], ReorderBufferChange *change);

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

/*
 * The state of this backend's last cleanly ended SQL-interface session, kept for
 * the next one (pollers call pg_logical_slot_get_changes every few hundred ms):
 * may_reuse says when it is reused.
 */
static RouterState *parked_state = NULL;

/* The decoding session of this process, for the relcache callback. */
RouterState *active_state = NULL;
static bool relcache_callback_registered = false;

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
	forget_next_rows();
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
	hash_options.keysize = sizeof(EvaluatorKey);
	hash_options.entrysize = sizeof(ShapeEvaluator);
	hash_options.hash = evaluator_hash;
	hash_options.match = evaluator_match;
	state->evaluators = hash_create("shape_router evaluators", 64, &hash_options,
									HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	hash_options.keysize = sizeof(FormKey);
	hash_options.entrysize = sizeof(ShapeForm);
	hash_options.hash = form_hash;
	hash_options.match = form_match;
	state->forms = hash_create("shape_router shape forms", 64, &hash_options,
							   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	state->econtext = CreateStandaloneExprContext();
	reset_index_expressions(state);
	initStringInfo(&state->record);
	initStringInfo(&state->form_key);
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
	int64		cpu_at_start = shape_router_backend_cpu_us();
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
		{
			/* the previous session's teardown is not this session's start */
			int64		destroy_started = shape_router_backend_cpu_us();

			destroy_state(state);
			cpu_at_start += shape_router_backend_cpu_us() - destroy_started;
		}
		state = create_state(&options);
	}
	*holder = state;
	state->cpu_at_start = cpu_at_start;
	state->start_cpu_us = -1;
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

	txn_output_begin(ctx, txn);
	if (rbtxn_has_catalog_changes(txn))
		state->catalog_checked = false;
}

static void
shape_router_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	RouterState *state = (RouterState *) ctx->output_plugin_private;
	MemoryContext old = MemoryContextSwitchTo(state->change_context);
	bool		begin_sent;

	if (txn->output_plugin_private == NULL)
		txn_output_begin(ctx, txn);
	begin_sent = ((TxnOutput *) txn->output_plugin_private)->begin_sent;

	if (begin_sent && state->options.include_transaction)
	{
		record_append_commit(begin_record(ctx, state), state->options.format,
							 state->options.include_xids ? psprintf("%u", txn->xid) : NULL,
							 state->options.include_lsn ? lsn_text(commit_lsn) : NULL,
							 state->options.include_timestamp
							 ? timestamptz_to_str(txn->xact_time.commit_time) : NULL);
		send_record(ctx, state, txn);
	}
	flush_batch(ctx, txn);
	txn_output_end(txn);
	/* What this transaction changed in the catalogs, the next one sees. */
	if (rbtxn_has_catalog_changes(txn))
		state->catalog_checked = false;
	update_progress(ctx, state, !begin_sent);
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
			routes = palloc(sizeof(Route) * (1 + relation_info(state, relation)->ancestor_count));
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
		if (route_count > 0)
			route_all(ctx, state, txn, routes, route_count);
		else
			state->change_number++; /* (as route_all counts a change) */
	}
	MemoryContextSwitchTo(old);
	/* (most changes allocate nothing: no call then) */
	reset_if_used(state->change_context);
	reset_if_used(state->econtext->ecxt_per_tuple_memory);
	update_progress(ctx, state, false);
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
			RelationInfo *info = relation_info(state, relations[r]);

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
