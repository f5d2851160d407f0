/*
 * shape_upgrade.c — shapes carried across a major upgrade. pg_upgrade copies the
 * catalog's rows as they are, but a node tree (nodeToString) is read correctly
 * only by the major that wrote it (17 added Var.varnullingrels, 18
 * varreturningtype), and programs and covers hold what that major's analysis
 * made. Each row records its major and its WHERE as text; a row from another
 * major is rebuilt from the text, in memory, wherever it is read (the plugin, the
 * SQL functions, the shapes view). Nothing is written back: a standby can do it.
 */
#include "shape_router_pg.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "parser/parser.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/ruleutils.h"

static bool
money_const_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Const) && ((Const *) node)->consttype == CASHOID)
		return true;
	return expression_tree_walker(node, money_const_walker, context);
}

static void
set_for_text(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Settings under which a WHERE's text reads back as the constants it was written
 * from, in every session and major: constants are deparsed through their types'
 * output functions (DateStyle, IntervalStyle, extra_float_digits, lc_monetary) and
 * string literals quoted by standard_conforming_strings; names resolve against
 * pg_catalog only (with_names). Returns a GUC nest level for
 * shape_text_settings_end, or 0 when the session's settings already agree
 * (registration deparses every shape: no GUC work in the common case).
 */
int
shape_text_settings_begin(Node *where, bool with_names)
{
	bool		money = with_names || (where != NULL && money_const_walker(where, NULL));
	int			level;

	if (!with_names && !money && DateStyle == USE_ISO_DATES && IntervalStyle == INTSTYLE_POSTGRES &&
		extra_float_digits >= 1 && standard_conforming_strings)
		return 0;
	level = NewGUCNestLevel();
	if (DateStyle != USE_ISO_DATES)
		set_for_text("datestyle", "ISO");
	if (IntervalStyle != INTSTYLE_POSTGRES)
		set_for_text("intervalstyle", "postgres");
	if (extra_float_digits < 1)
		set_for_text("extra_float_digits", "3");
	if (!standard_conforming_strings)
		set_for_text("standard_conforming_strings", "on");
	if (money)
		set_for_text("lc_monetary", "C");
	if (with_names)
		set_for_text("search_path", "pg_catalog, pg_temp");
	return level;
}

void
shape_text_settings_end(int level, bool ok)
{
	if (level > 0)
		AtEOXact_GUC(ok, level);
}

/* What shape_where_source deparses rel's WHEREs with; one serves many WHEREs. */
List *
shape_deparse_context(Relation rel)
{
	return deparse_context_for(RelationGetRelationName(rel), RelationGetRelid(rel));
}

/*
 * The WHERE as registration stores it: deparsed, column names unqualified.
 * context is shape_deparse_context(rel), or NIL to make one.
 */
char *
shape_where_source(Relation rel, Node *where, List *context)
{
	int			level;
	char	   *text;

	if (context == NIL)
		context = shape_deparse_context(rel);
	level = shape_text_settings_begin(where, false);
	text = deparse_expression(where, context, false, false);

	shape_text_settings_end(level, true);
	return text;
}

/* The names the WHERE's columns have now, in attnum order (catalog where_names). */
Datum
shape_where_names(Relation rel, const Bitmapset *where_columns)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *items = palloc(sizeof(Datum) * (bms_num_members(where_columns) + 1));
	int			count = 0;
	int			attnum = -1;

	while ((attnum = bms_next_member(where_columns, attnum)) >= 0)
		items[count++] = CStringGetTextDatum(NameStr(TupleDescAttr(desc, attnum - 1)->attname));
	return PointerGetDatum(construct_array(items, count, TEXTOID, -1, false, TYPALIGN_INT));
}

/* The type and collation of each column the WHERE reads, in attnum order (catalog where_types). */
Datum
shape_where_types(Relation rel, const Bitmapset *where_columns)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *items = palloc(sizeof(Datum) * (2 * bms_num_members(where_columns) + 1));
	int			count = 0;
	int			attnum = -1;

	while ((attnum = bms_next_member(where_columns, attnum)) >= 0)
	{
		items[count++] = ObjectIdGetDatum(TupleDescAttr(desc, attnum - 1)->atttypid);
		items[count++] = ObjectIdGetDatum(TupleDescAttr(desc, attnum - 1)->attcollation);
	}
	return PointerGetDatum(construct_array(items, count, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
}

/*
 * def's WHERE, analysed again from where_source. The text names columns as they
 * were named at registration; where_names maps those names to attnums
 * (pg_upgrade keeps attnums), and each is replaced by the column's name now, so
 * renames since registration are followed. rel is def's table.
 */
static Node *
where_of_source(ShapeDef *def, Relation rel, Datum where_source, Datum where_names)
{
	Datum	   *name_datums;
	bool	   *name_nulls;
	int			name_count;
	char	  **registered;
	char	  **current;
	int			attnum = -1;
	Node	   *where;
	Bitmapset  *where_columns;

	deconstruct_array(DatumGetArrayTypeP(where_names), TEXTOID, -1, false, TYPALIGN_INT,
					  &name_datums, &name_nulls, &name_count);
	if (name_count != bms_num_members(def->where_columns))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("shape " INT64_FORMAT " has %d column names for %d columns", def->shape_id,
						name_count, bms_num_members(def->where_columns))));
	registered = palloc(sizeof(char *) * (name_count + 1));
	current = palloc(sizeof(char *) * (name_count + 1));
	for (int i = 0; (attnum = bms_next_member(def->where_columns, attnum)) >= 0; i++)
	{
		Form_pg_attribute attr;

		if (attnum > RelationGetDescr(rel)->natts || name_nulls[i] ||
			(attr = TupleDescAttr(RelationGetDescr(rel), attnum - 1))->attisdropped)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("shape " INT64_FORMAT " reads column %d, which table %u does not have",
							def->shape_id, attnum, def->relid)));
		registered[i] = TextDatumGetCString(name_datums[i]);
		current[i] = pstrdup(NameStr(attr->attname));
	}
	where = shape_reanalyse_where(rel, TextDatumGetCString(where_source), name_count, registered, current,
								  &where_columns);
	if (!bms_equal(where_columns, def->where_columns))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("shape " INT64_FORMAT "'s WHERE text reads other columns than its catalog row lists",
						def->shape_id)));
	return where;
}

/* def's where_text: its WHERE analysed again (where_of_source). */
void
shape_def_where_text(ShapeDef *def, Relation rel, Datum where_source, Datum where_names)
{
	def->where_text = nodeToString(where_of_source(def, rel, where_source, where_names));
}

/*
 * Rebuilds def's program, fallbacks and cover (and, with want_where_text, its
 * where_text) from where_source (where_of_source), for a row made under
 * another major. Its where_types become the columns' of now, which it was
 * analysed against.
 */
void
shape_def_reanalyse(ShapeDef *def, Relation rel, Datum where_source, Datum where_names, bool want_where_text)
{
	Node	   *where = where_of_source(def, rel, where_source, where_names);
	ShapeCover	cover;
	List	   *fallbacks;
	Node	   *planned;
	ArrayType  *types = DatumGetArrayTypeP(shape_where_types(rel, def->where_columns));

	def->where_types = (const Oid *) ARR_DATA_PTR(types);
	def->where_text = want_where_text ? nodeToString(where) : NULL;
	planned = shape_plan_where(where);
	def->program = shape_compile_planned(planned, &fallbacks);
	def->fallback_text = fallbacks != NIL ? nodeToString(fallbacks) : NULL;
	shape_cover_planned(planned, def->relid, &cover);
	def->cover_alternatives = 0;
	def->cover_sizes = NULL;
	def->cover_atoms = NULL;
	def->cover_exact = 0;
	/*
	 * A cover on indexed expressions needs their index_expressions rows of this
	 * major, which only upgrade_shapes() writes: without them the decoder does
	 * not evaluate the expressions, or (another expression sharing the virtual
	 * column number) keys the rows by the other one. Until then such a shape
	 * runs as a scan shape.
	 */
	if (cover.expressions != NIL)
		cover.alternative_count = 0;
	if (cover.alternative_count > 0)
		shape_cover_from_datum(def, shape_cover_datum(&cover));
	def->reanalysed = true;
}

/*
 * shape_router.upgrade_shapes(): rewrites every row made under another major as
 * this one would have made it, so that decoding sessions stop re-analysing
 * them at each start. Returns the number of rows rewritten.
 */
PG_FUNCTION_INFO_V1(shape_router_upgrade_shapes);
Datum
shape_router_upgrade_shapes(PG_FUNCTION_ARGS)
{
	Relation	catalog = table_open(shape_catalog_relid(false), RowExclusiveLock);
	TupleDesc	desc = RelationGetDescr(catalog);
	SysScanDesc scan = systable_beginscan(catalog, InvalidOid, false, NULL, 0, NULL);
	List	   *stale = NIL;
	List	   *seen = NIL;
	HeapTuple	tuple;
	ListCell   *lc;
	int64		rewritten = 0;

	shape_catalog_check_layout(desc);

	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		major = heap_getattr(tuple, Anum_shape_server_major, desc, &isnull);

		if (isnull || DatumGetInt32(major) != SHAPE_SERVER_MAJOR)
			stale = lappend(stale, heap_copytuple(tuple));
	}
	systable_endscan(scan);

	foreach(lc, stale)
	{
		HeapTuple	old = (HeapTuple) lfirst(lc);
		Datum		values[Natts_shape_catalog] = {0};
		bool		nulls[Natts_shape_catalog] = {0};
		bool		replace[Natts_shape_catalog] = {0};
		ShapeDef	def;
		HeapTuple	updated;

		char	   *reason = NULL;

		if (!shape_def_from_tuple_or_reason(&def, old, desc, SHAPE_DEF_FULL, &reason))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("shape " INT64_FORMAT ", registered under PostgreSQL %d, cannot be analysed again on this server: %s",
							def.shape_id, def.registered_major, reason),
					 errhint("Drop the shape (shape_router.drop_shape) and register it again, then call upgrade_shapes() again.")));
		replace[Anum_shape_server_major - 1] = true;
		values[Anum_shape_server_major - 1] = Int32GetDatum(SHAPE_SERVER_MAJOR);
		if (def.has_where)
		{
			Relation	rel = RelationIdGetRelation(def.relid);
			Node	   *where = stringToNode(def.where_text);

			if (!RelationIsValid(rel))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("table %u of shape " INT64_FORMAT " does not exist", def.relid, def.shape_id)));
			for (int att = Anum_shape_program; att <= Natts_shape_catalog; att++)
				if (att == Anum_shape_program || att == Anum_shape_fallback_exprs ||
					att == Anum_shape_index_cover || att == Anum_shape_where_source ||
					att == Anum_shape_where_names || att == Anum_shape_where_types)
					replace[att - 1] = true;
			values[Anum_shape_program - 1] = PointerGetDatum(def.program);
			nulls[Anum_shape_fallback_exprs - 1] = def.fallback_text == NULL;
			if (def.fallback_text != NULL)
				values[Anum_shape_fallback_exprs - 1] = CStringGetTextDatum(def.fallback_text);
			{
				/* (def's cover leaves out expressions: shape_def_reanalyse) */
				ShapeCover	cover;

				shape_cover(where, def.relid, &cover);
				nulls[Anum_shape_index_cover - 1] = cover.alternative_count == 0;
				/* this major's texts (another's are not read); without their table, a scan shape */
				if (cover.alternative_count > 0 &&
					shape_store_index_expressions(def.relid, cover.expressions, &seen, CurrentMemoryContext))
					values[Anum_shape_index_cover - 1] = shape_cover_datum(&cover);
				else
					nulls[Anum_shape_index_cover - 1] = true;
			}
			values[Anum_shape_where_source - 1] = CStringGetTextDatum(shape_where_source(rel, where, NIL));
			values[Anum_shape_where_names - 1] = shape_where_names(rel, def.where_columns);
			values[Anum_shape_where_types - 1] = shape_where_types(rel, def.where_columns);
			RelationClose(rel);
		}
		updated = heap_modify_tuple(old, desc, values, nulls, replace);
		CatalogTupleUpdate(catalog, &old->t_self, updated);
		rewritten++;
	}
	table_close(catalog, RowExclusiveLock);
	PG_RETURN_INT64(rewritten);
}
