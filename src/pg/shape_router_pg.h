/*
 * shape_router — declarations shared by the PostgreSQL shell (src/pg).
 *
 * The shell is plain C on purpose: no C++ object can live in a frame that
 * ereport() may longjmp out of. It reaches the C++ core only through
 * include/shape_router/router.h, whose functions never throw.
 */
#ifndef SHAPE_ROUTER_PG_H
#define SHAPE_ROUTER_PG_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "nodes/execnodes.h"
#include "nodes/bitmapset.h"
#include "nodes/pg_list.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/relcache.h"

#include "shape_router/router.h"
#include "shape_router/program.h"
#include "shape_router/shard.h"

#include "pg_compat.h"

#define SHAPE_ROUTER_EXTENSION "shape_router"
#define SHAPE_ROUTER_SCHEMA "shape_router"
#define SHAPE_CATALOG_NAME "shape_catalog"
#define SHAPE_CATALOG_PKEY_NAME "shape_catalog_pkey"
#define SHAPE_CATALOG_RELID_INDEX_NAME "shape_catalog_relid_idx"
#define SHAPE_ID_SEQ_NAME "shape_id_seq"
#define INDEX_EXPRESSIONS_NAME "index_expressions"
#define INDEX_EXPRESSIONS_PKEY_NAME "index_expressions_pkey"

/* Attribute numbers of shape_router.index_expressions (see shape_router--0.1.sql). */
#define Anum_index_expression_relid 1
#define Anum_index_expression_attnum 2
#define Anum_index_expression_expr 3
#define Anum_index_expression_server_major 4
#define Natts_index_expressions 4

/*
 * Virtual columns: an indexed expression over a table's columns (lower(email),
 * (a + b) % 7) gets a column number in this range, above MaxAttrNumber, from a
 * hash of its text; expressions sharing one number only make extra candidates.
 */
#define SHAPE_VIRTUAL_ATTNUM_BASE SR_VIRTUAL_ATTNUM_BASE
#define SHAPE_VIRTUAL_ATTNUM_COUNT 4096
#define SHAPE_ATTNUM_IS_VIRTUAL(attnum) \
	((attnum) >= SHAPE_VIRTUAL_ATTNUM_BASE && (attnum) < SHAPE_VIRTUAL_ATTNUM_BASE + SHAPE_VIRTUAL_ATTNUM_COUNT)

/* Attribute numbers of shape_router.shape_catalog (see shape_router--0.1.sql). */
#define Anum_shape_shape_id 1
#define Anum_shape_relid 2
#define Anum_shape_where_columns 3
#define Anum_shape_columns 4
#define Anum_shape_created_at 5
#define Anum_shape_registered_by 6
#define Anum_shape_program 7
#define Anum_shape_fallback_exprs 8
#define Anum_shape_index_cover 9
#define Anum_shape_server_major 10
#define Anum_shape_where_source 11
#define Anum_shape_where_names 12
#define Anum_shape_where_types 13
#define Natts_shape_catalog 13

/* The major whose node trees this server reads (catalog column server_major). */
#define SHAPE_SERVER_MAJOR (PG_VERSION_NUM / 10000)

/* One catalog row, as both the SQL functions and the plugin read it. */
typedef struct ShapeDef
{
	int64		shape_id;
	Oid			relid;
	bool		has_where;		/* false: every row matches */
	char	   *where_text;		/* nodeToString of where_source analysed again (SHAPE_DEF_WHERE_TEXT) */
	Bitmapset  *where_columns;	/* attnums read by the WHERE (SHAPE_DEF_SETS) */
	Bitmapset  *columns;		/* projected attnums, NULL = all columns (SHAPE_DEF_SETS) */
	const Oid  *where_types;	/* type, collation of each where_attnums (SHAPE_DEF_SETS) */
	/* the same as the catalog row lists them: ascending, valid while the row is */
	const int16 *where_attnums;
	int			where_count;
	const int16 *column_attnums;	/* 0 alone: the primary key only */
	int			column_count;	/* -1: all columns */
	bytea	   *program;		/* compiled WHERE, NULL = every row (without SHAPE_DEF_SETS, valid while the row is) */
	char	   *fallback_text;	/* nodeToString(List) of executor-evaluated parts, or NULL */
	/* the cover (sr_cover); no alternative: a scan shape */
	int			cover_alternatives;
	uint32	   *cover_sizes;
	sr_index_atom *cover_atoms;
	uint32		cover_exact;	/* sr_cover.exact_alternatives */
	int			registered_major;	/* server major the row's trees were made under */
	bool		reanalysed;		/* made under another major: rebuilt from where_source */
	/* room for a usual row's arrays: reading one allocates nothing (never copy a ShapeDef) */
	int16		attnum_space[2][16];
	uint32		size_space[4];
	sr_index_atom atom_space[8];
} ShapeDef;

/* shape_catalog.c */
extern Oid	shape_catalog_relid(bool missing_ok);
extern Oid	shape_catalog_index_relid(const char *index_name);
/* What a ShapeDef read from a catalog row holds beyond what the router takes. */
#define SHAPE_DEF_WHERE_TEXT 0x1	/* where_text */
#define SHAPE_DEF_SETS 0x2		/* where_columns, columns, and a program of its own */
#define SHAPE_DEF_FULL (SHAPE_DEF_WHERE_TEXT | SHAPE_DEF_SETS)
extern void shape_catalog_check_layout(TupleDesc desc);
extern void shape_def_from_tuple(ShapeDef *def, HeapTuple tuple, TupleDesc desc);
extern bool shape_def_from_tuple_or_reason(ShapeDef *def, HeapTuple tuple, TupleDesc desc,
										   int parts, char **unusable);
extern void shape_cover_from_datum(ShapeDef *def, Datum datum);
extern int64 shape_id_of_tuple(HeapTuple tuple, TupleDesc desc);
extern Datum int2_array_from_bitmapset(const Bitmapset *attnums);
extern Bitmapset *attnums_bitmapset(const int16 *attnums, int count);
extern Oid	shape_index_expressions_relid(void);
extern bool shape_store_index_expressions(Oid relid, List *expressions, List **seen,
										  MemoryContext seen_context);

/* where_clause.c */
typedef struct AnalysedShape
{
	Node	   *where;			/* analysed, collations assigned; NULL = every row */
	Node	   *planned;		/* shape_plan_where(where), made once for the checks */
	Bitmapset  *where_columns;
	Bitmapset  *columns;		/* NULL = all columns */
} AnalysedShape;

/*
 * The table's range table entry that WHEREs are analysed against, made at a
 * registering call's first WHERE (in context) and shared by its others.
 */
typedef struct WhereScope
{
	MemoryContext context;
	struct ParseNamespaceItem *nsitem;	/* NULL until the first WHERE */
	List	   *rtable;
	List	   *perminfos;		/* PostgreSQL 16 and later */
} WhereScope;

extern const char *shape_column_outside_identity(Relation rel, Oid shaped_relid, const Bitmapset *where_columns);
extern void shape_check_relation(Relation rel);
extern void shape_analyse(Relation rel, const char *where_text, ArrayType *columns, WhereScope *scope,
						  AnalysedShape *out);
extern Bitmapset *shape_resolve_columns(Relation rel, ArrayType *columns);
extern Node *shape_reanalyse_where(Relation rel, const char *where_source, int name_count,
								   char **registered_names, char **current_names,
								   Bitmapset **where_columns);

/* shape_upgrade.c: shapes carried across a major upgrade */
extern List *shape_deparse_context(Relation rel);
extern char *shape_where_source(Relation rel, Node *where, List *context);
extern int	shape_text_settings_begin(Node *where, bool with_names);
extern void shape_text_settings_end(int level, bool ok);
extern Datum shape_where_names(Relation rel, const Bitmapset *where_columns);
extern Datum shape_where_types(Relation rel, const Bitmapset *where_columns);
extern void shape_def_where_text(ShapeDef *def, Relation rel, Datum where_source, Datum where_names);
extern void shape_def_reanalyse(ShapeDef *def, Relation rel, Datum where_source, Datum where_names,
								bool want_where_text);

/* predicate.c: one boolean expression evaluated by PostgreSQL's executor */
typedef struct ShapePredicate ShapePredicate;
typedef enum PredicateResult
{
	PREDICATE_FALSE = 0,
	PREDICATE_TRUE,
	PREDICATE_NULL,
	PREDICATE_ERROR,			/* a data error; message in *error_message */
	PREDICATE_ABORT				/* any other error, captured in *abort_error */
} PredicateResult;

extern ShapePredicate *shape_predicate_create(MemoryContext parent, Node *expr);
extern void shape_predicate_free(ShapePredicate *predicate);
extern PredicateResult shape_predicate_eval(ShapePredicate *predicate, TupleTableSlot *slot,
											ExprContext *econtext, char **error_message,
											ErrorData **abort_error);
extern PredicateResult shape_expression_eval(ShapePredicate *expression, TupleTableSlot *slot,
											 ExprContext *econtext, Datum *value, bool *isnull,
											 char **error_message);

/* compile.c: WHERE → program for the core's VM */
#include "shape_router/program.h"
extern sr_type_tag shape_type_tag(Oid type);
extern uint8 shape_element_tag(Oid type);
extern sr_value *shape_array_values(Datum array, int *count, bool *has_null);

/* variable_keys.c */
struct RelationInfo;
static inline bool
shape_has_virtual_columns(const sr_index_column *columns, size_t column_count)
{
	for (size_t c = 0; c < column_count; c++)
		if (SHAPE_ATTNUM_IS_VIRTUAL(columns[c].attnum))
			return true;
	return false;
}
extern sr_value *shape_lowered_values(const struct RelationInfo *rel, const sr_index_column *columns,
									  size_t column_count, const sr_value *values, sr_value *buffer,
									  int buffer_len);
/* Room for a row version's expression results that its caller keeps while
 * they are read (the expression functions palloc theirs without one). */
#define EXPRESSION_ROOM 8
typedef struct ExpressionRoom
{
	sr_expression_value results[EXPRESSION_ROOM];
	int			sources[EXPRESSION_ROOM];
} ExpressionRoom;
extern bool shape_expression_values(const struct RelationInfo *rel, TupleTableSlot *slot, const Bitmapset *unknown,
									const Bitmapset *key_only, ExprContext *econtext,
									const sr_index_column *columns, size_t column_count,
									const sr_expression_value **out, const int **sources_out, size_t *out_count,
									ExpressionRoom *room);
extern bool shape_native_expression_values(const struct RelationInfo *rel, HeapTuple tuple, const sr_value *values,
										   uint64 read_columns, const Bitmapset *key_only, const sr_index_column *columns,
										   size_t column_count, const sr_expression_value **out,
										   const int **sources_out, size_t *out_count, bool *trusted,
										   sr_counters *counters, ExpressionRoom *room);
extern bool shape_expression_columns_within(const struct RelationInfo *rel, uint16 attnum,
											const Bitmapset *columns);
extern void shape_value_from_datum(Oid type, Datum datum, bool isnull, sr_value *out);
extern Node *shape_plan_where(Node *where);
extern bytea *shape_compile(Node *where, List **fallbacks);
extern bytea *shape_compile_planned(Node *planned, List **fallbacks);
extern bool shape_fallback_on_expression(Node *node, MemoryContext context, uint16 *attnum, char **text,
										 uint8 **program, uint32 *program_len);

/*
 * The cover of a WHERE (router.h: sr_cover): alternatives of index atoms such
 * that whenever the WHERE holds for a row, each alternative has a true atom.
 * No alternative: no cover, a scan shape.
 */
typedef struct ShapeCover
{
	int			alternative_count;
	uint32		sizes[SR_COVER_MAX_ALTERNATIVES];
	Node	   *sources[SR_COVER_MAX_ALTERNATIVES];	/* the part each came from, for explain_shape */
	sr_index_atom *atoms;		/* back to back */
	int			atom_count;
	uint32		exact_alternatives;	/* sr_cover.exact_alternatives */
	List	   *expressions;	/* ShapeIndexExpression of its virtual columns */
} ShapeCover;

/* An indexed expression of a cover: its virtual column and tree. */
typedef struct ShapeIndexExpression
{
	uint16		attnum;			/* SHAPE_ATTNUM_IS_VIRTUAL */
	Node	   *expr;			/* planned, locations cleared */
	char	   *text;			/* nodeToString(expr): the catalog's form */
} ShapeIndexExpression;
extern void shape_cover(Node *where, Oid relid, ShapeCover *out);
extern void shape_cover_planned(Node *planned, Oid relid, ShapeCover *out);
extern Datum shape_cover_datum(const ShapeCover *cover);	/* shape_catalog.c */

/* shape_eval.c: a shape's program on a row (plugin and matching_shapes) */
typedef struct CompiledShape
{
	int64		shape_id;
	uint8	   *program;		/* NULL: no WHERE, every row matches */
	uint32		program_len;
	char	   *fallback_text;
	Bitmapset  *where_columns;
	/* prepared against the relation, at first use and after relcache changes */
	uint32		prepared_generation;	/* 0: never */
	uint16	   *columns;		/* attnums the program reads natively */
	int			column_count;
	ShapePredicate **fallbacks;
	int			fallback_count;
	struct FallbackOnExpression *on_expression;	/* by fallback; NULL: none is */
	bool		disabled;		/* the program does not fit the relation */
	char	   *disabled_reason;
} CompiledShape;

/*
 * A fallback that tests one indexed expression against constants: answered
 * from the expression's value when the decoder has it for the row (an index
 * column of the relation), by a program reading it as column 1.
 */
typedef struct FallbackOnExpression
{
	uint8	   *program;		/* NULL: not such a fallback */
	uint16		attnum;			/* the expression's virtual column */
	char	   *text;			/* the expression, as index_expressions holds it */
	/* which of the relation's expressions it is, found once per expression list */
	const struct IndexExpressionState *resolved_in;
	uint32		resolved_version;
	int			source;			/* index into that list; -1: not there */
} FallbackOnExpression;

/* One row version as the VM sees it: values converted on first use. */
typedef struct RowImage
{
	TupleTableSlot *slot;
	const Bitmapset *unknown;	/* attnums whose value is unknown (unchanged TOAST) */
	bool		key_only;		/* an old row that carries only the replica identity */
	const Bitmapset *key_columns;	/* then: the attnums it carries */
	sr_value   *values;			/* natts + 1 */
	bool	   *converted;		/* natts + 1 */
	/* the relation's indexed expressions' results on this row (none: NULL),
	 * each with its index into expression_states (version: of that list) */
	const sr_expression_value *expressions;
	const int  *expression_sources;
	size_t		expression_count;
	const struct IndexExpressionState *expression_states;
	int			expression_state_count;
	uint32		expressions_version;
} RowImage;

/* What evaluation needs to know of the relation, valid for one generation. */
typedef struct RelationEvalInfo
{
	TupleDesc	desc;
	const uint8 *tags;			/* natts + 1 column type tags */
	uint32		generation;		/* changes whenever the relation's shape may have */
	MemoryContext context;		/* where prepared shapes keep their state */
} RelationEvalInfo;

typedef enum ShapeOutcome
{
	SHAPE_NO_MATCH,				/* FALSE */
	SHAPE_UNKNOWN,				/* NULL: no match either, as in WHERE */
	SHAPE_MATCH,
	SHAPE_ERROR,				/* this row: error record, message set */
	SHAPE_DISABLED				/* the program does not fit the relation; message set */
} ShapeOutcome;

extern void compiled_shape_init(CompiledShape *shape, MemoryContext context, const ShapeDef *def);
extern void compiled_shape_release(CompiledShape *shape);
extern void relation_column_tags(TupleDesc desc, uint8 *tags);
extern void row_image_init(RowImage *image, TupleTableSlot *slot, const Bitmapset *unknown);
extern bool compiled_shape_usable(CompiledShape *shape, const RelationEvalInfo *rel, char **message);
extern bool program_fits_relation(const uint8 *program, uint32 program_len, const char *fallback_text,
								  const uint8 *tags, TupleDesc desc, List **fallback_exprs_out,
								  char *message, size_t message_size);
extern ShapeOutcome compiled_shape_eval(CompiledShape *shape, RowImage *image,
										const RelationEvalInfo *rel, ExprContext *econtext,
										sr_counters *counters, char **message);
extern bool expr_fits_relation(Node *expr, TupleDesc desc, AttrNumber *bad_attnum);
extern bool rows_agree_on(TupleTableSlot *old_row, TupleTableSlot *new_row, const Bitmapset *columns);

/* record.c: routed records in the formats of DESIGN.md §4 */
typedef enum OutputFormat
{
	OUTPUT_FORMAT_JSON,
	OUTPUT_FORMAT_TEXT
} OutputFormat;

typedef enum ValueKind
{
	VALUE_NUMBER,				/* int2/int4/int8/oid: text output is a JSON number */
	VALUE_MAYBE_NUMBER,			/* float/numeric: a number unless NaN or infinite */
	VALUE_BOOL,
	VALUE_JSON,					/* json/jsonb: embedded as is */
	VALUE_STRING				/* everything else: the type's text output */
} ValueKind;

typedef struct ColumnOutput
{
	Oid			output_function;
	Oid			base_type;		/* picks a direct JSON writer for common types */
	ValueKind	kind;
	char	   *json_key;		/* the column name as a JSON string, quotes included; NULL: dropped */
	int			json_key_len;
	char	   *text_label;		/* name[type] for format=text */
} ColumnOutput;

/* Integer arithmetic on integer columns, evaluated without the executor (native_arith.c). */
typedef struct NativeArith NativeArith;
typedef enum NativeResult
{
	NATIVE_VALUE,
	NATIVE_NULL,
	NATIVE_EXECUTOR				/* PostgreSQL would raise an error, or a column is unreadable */
} NativeResult;
extern NativeArith *native_arith_compile(Node *expr);
extern NativeResult native_arith_eval(const NativeArith *program, const sr_value *values, uint64 read_columns,
									  bool (*read) (void *arg, AttrNumber attnum, int64 *value, bool *isnull),
									  void *arg, int64 *result);

/* An indexed expression as the plugin evaluates it on a relation's rows. */
typedef struct IndexExpressionState
{
	uint16		attnum;			/* its virtual column */
	Oid			type;			/* result type */
	uint8		tag;			/* shape_type_tag(type) */
	bool		fits;			/* its Vars match the relation's columns */
	Bitmapset  *columns;		/* attnums it reads */
	ShapePredicate *expression;
	NativeArith *native;		/* NULL: only the executor evaluates it */
	char	   *text;			/* as index_expressions holds it */
} IndexExpressionState;

/* What the plugin keeps per decoded relation; rebuilt after relcache invalidation. */
/* One ancestor of a partition whose shapes see the partition's changes. */
typedef struct AncestorRoute
{
	Oid			relid;
	struct TupleConversionMap *map; /* partition row → ancestor layout; NULL: same layout */
	Bitmapset  *identity_key;	/* the partition's replica identity, in ancestor attnums */
} AncestorRoute;

/*
 * Everything decoding keeps about one relation (relation_cache.c): built on
 * first use, rebuilt after an invalidation of it (or of an ancestor).
 */
typedef struct RelationInfo
{
	Oid			relid;			/* hash key */
	bool		valid;
	/* The schema-qualified name, as a JSON string and as text: kept across
	 * rebuilds and invalidations, so that a drop record names a table that DROP
	 * TABLE has removed from the catalogs decoding reads. Set by the first shape
	 * on the table or the first build; looked up again when stale. */
	char	   *table_json;
	int			table_json_len;
	char	   *table_text;
	bool		name_stale;
	MemoryContext context;		/* owns everything below */
	TupleDesc	desc;
	ColumnOutput *columns;		/* desc->natts entries */
	/* a partition: its ancestors, parent first, with how to convert its rows */
	int			ancestor_count;
	AncestorRoute *ancestors;
	Bitmapset  *primary_key;	/* attnums, always projected */
	Bitmapset  *identity_key;	/* attnums an old key-only tuple carries */
	bool		identity_full;
	uint8	   *tags;			/* natts + 1 column type tags for the VM */
	uint32		generation;		/* distinct for every build: shapes re-validate on change */
	TupleTableSlot *new_slot;
	TupleTableSlot *old_slot;
	/* the relation's indexed expressions, built at first use (catalog_sync.c) */
	MemoryContext expression_context;	/* NULL: none built */
	uint32		expressions_version;	/* of the list they were built from */
	uint32		expressions_checked;	/* RouterState.expressions_added when last checked */
	int			expression_count;
	IndexExpressionState *expressions;
	bool		expressions_native; /* every one of them has a native program */
} RelationInfo;

typedef enum RecordOp
{
	RECORD_INSERT,
	RECORD_UPDATE,
	RECORD_DELETE,
	RECORD_MOVE_IN,
	RECORD_MOVE_OUT,
	RECORD_TRUNCATE,
	RECORD_ERROR
} RecordOp;

typedef struct RecordRows
{
	TupleTableSlot *new_row;	/* NULL when absent */
	TupleTableSlot *old_row;	/* NULL when unknown */
	bool		old_key_only;	/* old row carries only the identity key */
	const Bitmapset *old_key_columns;	/* then: the attnums it carries */
	Bitmapset  *unchanged_toast;	/* attnums of the new row whose value is unknown */
	const RelationInfo *partition;	/* TRUNCATE of one partition of the shape's table */
} RecordRows;

/* text as a JSON string literal, quotes included (palloc'd) */
extern char *json_string(const char *text);
extern bool relation_qualified_names(Oid relid, Snapshot snapshot, MemoryContext context, char **json, char **text);
extern void record_relation_build(RelationInfo *info, Relation rel);
extern Bitmapset *attnums_from_index_bitmap(Bitmapset *offset_attnums);
extern void record_append_row_change(StringInfo out, OutputFormat format, int64 shape_id, RecordOp op,
									 const RelationInfo *rel, const Bitmapset *projection,
									 const RecordRows *rows, const char *lsn, const char *message);
extern void record_append_drop(StringInfo out, OutputFormat format, int64 shape_id,
							   const char *table_json, const char *table_text, const char *lsn);
extern void record_append_begin(StringInfo out, OutputFormat format, const char *xid, const char *lsn);
extern void record_batch_append(StringInfo batch, const char *record, int len);
extern void record_append_commit(StringInfo out, OutputFormat format, const char *xid,
								 const char *lsn, const char *timestamp);

/* module.c: counters of the latest decoding session in this backend */
extern void shape_router_publish_stats(const sr_counters *counters, size_t shapes,
									   size_t relations, const sr_index_stats *index, bool warm_start,
									   int64 start_cpu_us, int64 session_cpu_us, bool final);
/* This backend's CPU time so far (user + system), in microseconds. */
extern int64 shape_router_backend_cpu_us(void);
extern int	shape_router_stats_log_level;
extern bool shape_router_warm_start;
extern int	shape_router_prefetch_min_keys;

/*
 * SQL-callable functions. PG15's PG_FUNCTION_INFO_V1 exports only the info
 * function, and the library is built with -fvisibility=hidden, so the entry
 * points themselves are declared exported here.
 */
extern PGDLLEXPORT Datum shape_router_register_shape(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum shape_router_register_shapes(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum shape_router_drop_shape(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum shape_router_shard_of(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum shape_router_where_clause_of(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum shape_router_upgrade_shapes(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum shape_router_matching_shapes(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum shape_router_explain_shape(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum shape_router_evaluate_shape(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum shape_router_decoding_stats(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum shape_router_on_sql_drop(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum shape_router_on_ddl_command_end(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum shape_router_on_ddl_command_start(PG_FUNCTION_ARGS);

/* Turns a core status into an ERROR (never returns for a failure). */
extern void shape_router_check_status(sr_status status, const char *what);

#endif							/* SHAPE_ROUTER_PG_H */
