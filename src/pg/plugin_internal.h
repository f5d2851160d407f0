/*
 * plugin_internal.h — what the files of the output plugin share: the session
 * state (RouterState), the shell's state of a shape, a partition's routes, a
 * change's routes, and the functions one file calls in another (see plugin.c
 * for the files and their jobs). Private to the plugin.
 */
#ifndef PLUGIN_INTERNAL_H
#define PLUGIN_INTERNAL_H

#include "shape_router_pg.h"

#include "access/tupconvert.h"
#include "replication/logical.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapshot.h"

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
	size_t		shape_subset_cursor;	/* sr_shape_id_list_contains's; not an option */
	uint32		shard_index;	/* the shard option i/n; 0/1: every shape */
	uint32		shard_count;
} PluginOptions;

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
	uint8		memo_match[2];	/* sr_row_match */
	char	   *memo_message[2];	/* error or disabled: the message (change lifetime) */
} ShapeEvaluator;

/*
 * What the shapes of one form share (user_id = 1 and user_id = 2 are one form):
 * the relation, the program with its constants left out, the columns its WHERE
 * reads and its executor-evaluated parts. A shape the index decides (an exact
 * cover) needs only this: whether it has a WHERE, the columns it reads (a
 * key-only old row must carry them) and whether its program still fits the
 * relation, checked once a form and relation generation, not once a shape.
 */
typedef struct FormKey
{
	Oid			relid;
	uint32		len;
	const uint8 *bytes;			/* program (constants zeroed), WHERE attnums, fallback text */
} FormKey;

typedef struct ShapeForm
{
	FormKey		key;			/* hash key; bytes owned here */
	int			refcount;		/* shapes pointing here */
	bool		has_where;
	Bitmapset  *where_columns;
	uint8	   *program;		/* one shape's program, constants and all */
	uint32		program_len;
	char	   *fallback_text;	/* NULL: none */
	uint32		checked_generation; /* 0: never */
	char	   *unfit_reason;	/* NULL: fits the relation of checked_generation */
} ShapeForm;

/* The router's payload for one shape. */
typedef struct ShapeState
{
	int64		shape_id;
	ShapeForm  *form;			/* shared with the shapes of its form */
	ShapeEvaluator *evaluator;	/* shared with identical shapes; NULL until the
								 * program first runs (shape_evaluator) */
	Bitmapset  *columns;		/* projected; NULL: all columns */
	Oid			relid;			/* the table it was registered on */
	uint32		slot;			/* its slot in the router (its definition) */
	bool		disabled_reported;	/* its one error record has been sent */
} ShapeState;

/*
 * What one transaction has sent so far, on txn->output_plugin_private (as
 * pgoutput and test_decoding keep theirs): made at BEGIN, freed at COMMIT.
 */
typedef struct TxnOutput
{
	bool		begin_sent;
	StringInfoData batch;		/* batch-bytes: records packed, not yet sent */
} TxnOutput;

typedef struct RouterState
{
	PluginOptions options;
	MemoryContext context;		/* lives as long as the decoding context */
	MemoryContext change_context;	/* reset after every change */
	sr_router  *router;
	sr_counters *counters;
	HTAB	   *relations;		/* relid -> RelationInfo */
	int			partition_entries;	/* of relations: those with ancestors */
	Oid			last_named_relid;	/* add_shape's shortcut */
	RelationInfo *last_relation;	/* relation_info's shortcut (entries never move) */
	Snapshot	load_snapshot;	/* while loading: the catalog's snapshot, for names */
	ExprContext *econtext;
	Oid			catalog_relid;
	Oid			expressions_relid;	/* shape_router.index_expressions */
	MemoryContext expressions_context;	/* index_expressions and its lists */
	HTAB	   *index_expressions;	/* relid -> IndexExpressionList */
	uint32		expressions_added;	/* makes IndexExpressionList.version; moves on a reset too */
	/* shape_catalog_relid() scans pg_extension and pg_depend: it runs again
	 * only after something may have changed the catalogs (a relcache
	 * invalidation, or a transaction with catalog changes). */
	bool		catalog_checked;
	bool		shapes_loaded;
	StringInfoData record;		/* batch-bytes: the record being written */
	int			changes_since_progress;
	bool		prefetch;		/* the index is large enough to miss the cache */
	/* warm start: a session of the SQL interface that ends cleanly is parked */
	NameData	slot_name;
	bool		warm_start;		/* this session reused the previous one's state */
	int64		cpu_at_start;	/* the backend's CPU time when this session started */
	int64		start_cpu_us;	/* CPU from then until its first change could be routed; -1: not yet */
	bool		park;			/* set by the shutdown callback: keep for the next session */
	XLogRecPtr	parked_end;		/* where the parked session stopped reading */
	XLogRecPtr	confirmed_at_start;	/* the slot's confirmed position when this session began */
	HTAB	   *evaluators;		/* EvaluatorKey -> ShapeEvaluator, of shapes whose program ran */
	HTAB	   *forms;			/* FormKey -> ShapeForm, of built shape states */
	StringInfoData form_key;	/* scratch: a FormKey's bytes while it is looked up */
	ShapeState *free_shape_states;	/* ShapeStates to reuse, linked by their first word */
	uint64		change_number;	/* of the change being routed: keys evaluator memos */
} RouterState;

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
 * The decoding session of this process, for the relcache callback
 * (relation_cache.c); plugin.c sets and clears it.
 */
extern RouterState *active_state;

/* plugin_options.c */
extern bool same_shape_selection(const PluginOptions *a, const PluginOptions *b);
extern bool slot_wants_shape(PluginOptions *options, int64 shape_id);
extern void parse_options(List *raw_options, PluginOptions *options);

/* MemoryContextReset of a context that may have nothing to free. */
static inline void
reset_if_used(MemoryContext context)
{
	if (!context->isReset || context->firstchild != NULL)
		MemoryContextReset(context);
}

/* catalog_page_copy.c */
typedef struct CopiedScan CopiedScan;
extern CopiedScan *copied_scan_begin(Relation relation, Snapshot snapshot);
extern HeapTuple copied_scan_next(CopiedScan *scan);
extern void copied_scan_end(CopiedScan *scan);

/* catalog_sync.c */
extern void maintain_index(RouterState *state, bool force);
extern void publish_stats(RouterState *state, bool final);
extern void reset_index_expressions(RouterState *state);
extern void add_index_expression(RouterState *state, HeapTuple tuple, TupleDesc desc);
extern void relation_expressions_slow(RouterState *state, RelationInfo *rel);
/* The relation's indexed expressions: looked up only when one was added or reset. */
static inline void
relation_expressions(RouterState *state, RelationInfo *rel)
{
	if (unlikely(rel->expression_context == NULL || rel->expressions_checked != state->expressions_added))
		relation_expressions_slow(state, rel);
}
extern void ensure_catalog_slow(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn);
/* The catalog known and the shapes loaded: what every change asks first. */
static inline void
ensure_catalog(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn)
{
	if (unlikely(!state->catalog_checked || !state->shapes_loaded || state->start_cpu_us < 0))
		ensure_catalog_slow(ctx, state, txn);
}
extern void apply_catalog_change(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn,
								 Relation catalog, ReorderBufferChange *change);

/* shape_cache.c */
extern uint32 evaluator_hash(const void *key, Size keysize);
extern int evaluator_match(const void *key1, const void *key2, Size keysize);
extern uint32 form_hash(const void *key, Size keysize);
extern int form_match(const void *key1, const void *key2, Size keysize);
extern ShapeState *shape_state(RouterState *state, const sr_shape_ref *ref, Oid relid);
extern ShapeEvaluator *shape_evaluator(RouterState *state, ShapeState *shape);
extern bool form_fits(RouterState *state, ShapeForm *form, const RelationEvalInfo *info, char **message);
/* Adds a shape the slot wants (the caller has asked slot_wants_shape). */
extern void add_shape(RouterState *state, const ShapeDef *def);
extern void drop_shape(RouterState *state, int64 shape_id,
					   LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr lsn);
extern void drop_all_shapes(RouterState *state, LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr lsn);

/* relation_cache.c */
extern void invalidate_relations(RouterState *state, Oid relid);
extern void relcache_invalidated(Datum arg, Oid relid);
extern RelationInfo *relation_info_slow(RouterState *state, Relation rel);
/* rel's RelationInfo, made or remade when needed: inline for the table of the last change. */
static inline RelationInfo *
relation_info(RouterState *state, Relation rel)
{
	RelationInfo *info = state->last_relation;

	if (likely(info != NULL && info->relid == RelationGetRelid(rel) && info->valid &&
			   info->desc->natts == RelationGetDescr(rel)->natts))
		return info;
	return relation_info_slow(state, rel);
}
extern RelationInfo *relation_info_by_id(RouterState *state, Oid relid);
extern RelationInfo *relation_entry(RouterState *state, Oid relid);
extern void relation_name_refresh(RouterState *state, RelationInfo *info);

/* routing.c */
extern void forget_next_rows(void);
extern void prefetch_next_change(RouterState *state, ReorderBufferTXN *txn, ReorderBufferChange *change,
								 Relation relation, RelationInfo *rel,
								 const sr_index_column *columns, size_t column_count);
extern bool route_prepare(RouterState *state, RelationInfo *rel, const ChangeRows *change,
						  const sr_index_column *columns, size_t column_count, bool keep_candidates, Route *route);
extern void route_all(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn,
					  Route *routes, int route_count);
extern int ancestor_routes(RouterState *state, Relation partition, const ChangeRows *rows, Route *routes, int route_count);
extern void truncate_for(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn, Oid relid,
						 Relation relation, Relation partition, XLogRecPtr lsn);

/* output.c */
extern char *lsn_text(XLogRecPtr lsn);
extern TxnOutput *txn_output_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn);
extern void txn_output_end(ReorderBufferTXN *txn);
extern void flush_batch(LogicalDecodingContext *ctx, ReorderBufferTXN *txn);
extern StringInfo begin_record(LogicalDecodingContext *ctx, RouterState *state);
extern void send_record(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn);
extern void ensure_begin_sent(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn);
extern void emit_row_record(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn,
							const ShapeState *shape, RecordOp op, const RelationInfo *rel,
							const RecordRows *rows, XLogRecPtr lsn, const char *message);
#define CHANGES_PER_PROGRESS_UPDATE 100
/* Tells the walsender how far decoding got: at each transaction's end and every so many changes. */
static inline void
update_progress(LogicalDecodingContext *ctx, RouterState *state, bool skipped_xact)
{
	if (ctx->end_xact || ++state->changes_since_progress >= CHANGES_PER_PROGRESS_UPDATE)
	{
		OutputPluginUpdateProgress(ctx, skipped_xact);
		state->changes_since_progress = 0;
	}
}

#endif							/* PLUGIN_INTERNAL_H */
