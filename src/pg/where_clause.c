/*
 * where_clause.c — turning a user's WHERE text into an analysed expression,
 * with PostgreSQL's own parser and analyser, and refusing everything a
 * publication row filter refuses (check_simple_rowfilter_expr_walker in
 * publicationcmds.c is the model), plus what a shape additionally cannot use.
 */
#include "shape_router_pg.h"

#include "access/sysattr.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_clause.h"
#include "parser/parse_collate.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "access/htup_details.h"
#include "utils/regproc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/* The clause is parsed as the target of "SELECT <clause>", so that anything
 * that is not exactly one expression fails to parse or shows up as extra
 * statement parts, which we reject. */
#define WHERE_PARSE_PREFIX "SELECT "

typedef struct WhereErrorContext
{
	const char *clause;
	int			prefix_chars;
} WhereErrorContext;

/* Moves an error cursor from the wrapped statement onto the user's clause,
 * reported as an internal query (the client's statement is the function call). */
static void
where_error_callback(void *arg)
{
	WhereErrorContext *ctx = (WhereErrorContext *) arg;
	int			position = geterrposition();

	if (position > 0)
	{
		errposition(0);
		if (position > ctx->prefix_chars)
		{
			internalerrposition(position - ctx->prefix_chars);
			internalerrquery(ctx->clause);
		}
	}
	errcontext("shape WHERE clause \"%s\"", ctx->clause);
}

static void
reject_not_single_expression(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("shape WHERE clause must be a single boolean expression"),
			 errhint("Pass only what would follow WHERE, for example 'user_id = 5 AND status = ''open'''.")));
}

static Node *
parse_single_expression(const char *sql)
{
	List	   *statements = raw_parser(sql, RAW_PARSE_DEFAULT);
	RawStmt    *raw;
	SelectStmt *select;
	ResTarget  *target;

	if (list_length(statements) != 1)
		reject_not_single_expression();
	raw = linitial_node(RawStmt, statements);
	if (!IsA(raw->stmt, SelectStmt))
		reject_not_single_expression();
	select = (SelectStmt *) raw->stmt;
	if (select->op != SETOP_NONE || select->distinctClause != NIL ||
		select->intoClause != NULL || list_length(select->targetList) != 1 ||
		select->fromClause != NIL || select->whereClause != NULL ||
		select->groupClause != NIL || select->groupDistinct ||
		select->havingClause != NULL || select->windowClause != NIL ||
		select->valuesLists != NIL || select->sortClause != NIL ||
		select->limitOffset != NULL || select->limitCount != NULL ||
		select->lockingClause != NIL || select->withClause != NULL)
		reject_not_single_expression();
	target = linitial_node(ResTarget, select->targetList);
	if (target->name != NULL || target->indirection != NIL)
		reject_not_single_expression();
	if (IsA(target->val, ColumnRef) &&
		IsA(llast(((ColumnRef *) target->val)->fields), A_Star))
		reject_not_single_expression();
	return target->val;
}

static bool
mutable_or_user_function(Oid func_id, void *context)
{
	return func_volatile(func_id) != PROVOLATILE_IMMUTABLE ||
		func_id >= FirstNormalObjectId;
}

typedef struct WalkerContext
{
	ParseState *pstate;
} WalkerContext;

static void
reject_node(WalkerContext *ctx, Node *node, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("invalid shape WHERE clause"),
			 errdetail_internal("%s", detail),
			 parser_errposition(ctx->pstate, exprLocation(node))));
}

/* Finds the offending function of a node, to name it in the error. */
static Oid	offending_function;
static bool
remember_offending_function(Oid func_id, void *context)
{
	if (mutable_or_user_function(func_id, context))
	{
		offending_function = func_id;
		return true;
	}
	return false;
}

static bool
check_shape_expr_walker(Node *node, WalkerContext *ctx)
{
	if (node == NULL)
		return false;

	if (!IsA(node, List) && exprType(node) >= FirstNormalObjectId)
		reject_node(ctx, node, _("User-defined types are not allowed."));

	switch (nodeTag(node))
	{
		case T_Var:
			{
				Var		   *var = (Var *) node;

				if (var->varattno < InvalidAttrNumber)
					reject_node(ctx, node, _("System columns are not allowed."));
				if (var->varattno == InvalidAttrNumber)
					reject_node(ctx, node, _("Whole-row references are not allowed."));
				if (var->varlevelsup != 0 || var->varno != 1)
					reject_node(ctx, node, _("Only columns of the shape's table are allowed."));
				break;
			}
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			if (((OpExpr *) node)->opno >= FirstNormalObjectId)
				reject_node(ctx, node, _("User-defined operators are not allowed."));
			break;
		case T_ScalarArrayOpExpr:
			if (((ScalarArrayOpExpr *) node)->opno >= FirstNormalObjectId)
				reject_node(ctx, node, _("User-defined operators are not allowed."));
			break;
		case T_RowCompareExpr:
			{
				ListCell   *lc;

				foreach(lc, ((RowCompareExpr *) node)->opnos)
					if (lfirst_oid(lc) >= FirstNormalObjectId)
						reject_node(ctx, node, _("User-defined operators are not allowed."));
				break;
			}
		case T_SubLink:
			reject_node(ctx, node, _("Subqueries are not allowed."));
			break;
		case T_Param:
			reject_node(ctx, node, _("Parameters are not allowed."));
			break;
		case T_Aggref:
		case T_GroupingFunc:
			reject_node(ctx, node, _("Aggregate functions are not allowed."));
			break;
		case T_WindowFunc:
			reject_node(ctx, node, _("Window functions are not allowed."));
			break;
		case T_CoerceViaIO:
			reject_node(ctx, node,
						psprintf(_("Casts from %s to %s through their text forms are not allowed, as in publication row filters."),
								 format_type_be(exprType((Node *) ((CoerceViaIO *) node)->arg)),
								 format_type_be(((CoerceViaIO *) node)->resulttype)));
			break;
		case T_SQLValueFunction:
			reject_node(ctx, node, _("SQL value functions such as CURRENT_DATE and CURRENT_USER are not immutable."));
			break;
		case T_Const:
		case T_FuncExpr:
		case T_BoolExpr:
		case T_RelabelType:
		case T_CollateExpr:
		case T_CaseExpr:
		case T_CaseTestExpr:
		case T_ArrayExpr:
		case T_RowExpr:
		case T_CoalesceExpr:
		case T_MinMaxExpr:
		case T_XmlExpr:
		case T_NullTest:
		case T_BooleanTest:
		case T_List:
			break;
		default:
			reject_node(ctx, node, _("Only columns, constants, built-in operators, built-in data types, built-in collations, and immutable built-in functions are allowed."));
			break;
	}

	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcretset)
		reject_node(ctx, node, _("Set-returning functions are not allowed."));

	if (!IsA(node, List))
	{
		offending_function = InvalidOid;
		if (check_functions_in_node(node, remember_offending_function, NULL))
		{
			char	   *detail;

			if (offending_function >= FirstNormalObjectId)
				detail = psprintf(_("User-defined function %s is not allowed."),
								  format_procedure(offending_function));
			else
				detail = psprintf(_("Function %s is not immutable; only immutable built-in functions are allowed."),
								  format_procedure(offending_function));
			reject_node(ctx, node, detail);
		}
		if (exprCollation(node) >= FirstNormalObjectId ||
			exprInputCollation(node) >= FirstNormalObjectId)
			reject_node(ctx, node, _("User-defined collations are not allowed."));
	}

	return expression_tree_walker(node, check_shape_expr_walker, (void *) ctx);
}

/* Built-in functions written in SQL (OVERLAPS, for one) need an active snapshot,
 * which a walsender does not have: only C and internal functions may remain
 * once the planner has inlined what it can. */
static bool
not_c_function(Oid func_id, void *context)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(func_id));
	Oid			language;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", func_id);
	language = ((Form_pg_proc) GETSTRUCT(tuple))->prolang;
	ReleaseSysCache(tuple);
	if (language == INTERNALlanguageId || language == ClanguageId)
		return false;
	offending_function = func_id;
	return true;
}

static bool
sql_function_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, not_c_function, NULL))
		return true;
	return expression_tree_walker(node, sql_function_walker, context);
}

static bool
check_functions_in_node_tree(Node *node)
{
	return sql_function_walker(node, NULL);
}

/* Relations a shape may be registered on. */
void
shape_check_relation(Relation rel)
{
	char		relkind = rel->rd_rel->relkind;
	const char *relname = RelationGetRelationName(rel);

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot register a shape on \"%s\"", relname),
				 errdetail("Shapes can only be registered on tables.")));
	if (rel->rd_rel->relpersistence != RELPERSISTENCE_PERMANENT)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot register a shape on temporary or unlogged table \"%s\"", relname),
				 errdetail("Changes to such tables are not written to the WAL, so no slot sees them.")));
	if (IsCatalogRelation(rel) ||
		strcmp(get_namespace_name(RelationGetNamespace(rel)), SHAPE_ROUTER_SCHEMA) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot register a shape on system table \"%s\"", relname)));
}

/* Column names → sorted set of attnums; NULL array means all columns. */
Bitmapset *
shape_resolve_columns(Relation rel, ArrayType *columns)
{
	Datum	   *names;
	bool	   *nulls;
	int			count;
	Bitmapset  *attnums = NULL;

	if (columns == NULL)
		return NULL;
	if (ARR_NDIM(columns) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("shape column list must be a one-dimensional array")));
	deconstruct_array(columns, TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &count);
	for (int i = 0; i < count; i++)
	{
		char	   *name;
		AttrNumber	attnum;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("shape column list must not contain NULL")));
		name = TextDatumGetCString(names[i]);
		attnum = get_attnum(RelationGetRelid(rel), name);
		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							name, RelationGetRelationName(rel))));
		if (attnum < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("cannot use system column \"%s\" in shape column list", name)));
		if (bms_is_member(attnum, attnums))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("duplicate column \"%s\" in shape column list", name)));
		attnums = bms_add_member(attnums, attnum);
	}
	/* An empty list still yields a non-NULL "some columns" marker: the primary key. */
	if (attnums == NULL)
		attnums = bms_make_singleton(0);
	return attnums;
}

static void
check_select_privileges(Relation rel, const Bitmapset *where_columns, const Bitmapset *columns)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			user = GetUserId();
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *primary_key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	int			attnum;

	if (pg_class_aclcheck(relid, user, ACL_SELECT) == ACLCHECK_OK)
		return;
	for (attnum = 1; attnum <= desc->natts; attnum++)
	{
		bool		needed = bms_is_member(attnum, where_columns) ||
			bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, primary_key) ||
			(columns == NULL ? !TupleDescAttr(desc, attnum - 1)->attisdropped
			 : bms_is_member(attnum, columns));

		if (needed && pg_attribute_aclcheck(relid, attnum, user, ACL_SELECT) != ACLCHECK_OK)
			aclcheck_error_col(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel),
							   NameStr(TupleDescAttr(desc, attnum - 1)->attname));
	}
}

/*
 * The first column of where_columns (attnums of shaped_relid) that the old row of
 * a change to table rel does not carry, or NULL when it carries them all. rel is
 * the shape's table, or one of its partitions (columns are matched by name).
 */
const char *
shape_column_outside_identity(Relation rel, Oid shaped_relid, const Bitmapset *where_columns)
{
	Bitmapset  *identity;
	int			attnum = -1;

	if (rel->rd_rel->relreplident == REPLICA_IDENTITY_FULL || where_columns == NULL)
		return NULL;
	identity = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	while ((attnum = bms_next_member(where_columns, attnum)) >= 0)
	{
		char	   *name = get_attname(shaped_relid, attnum, false);
		AttrNumber	own = RelationGetRelid(rel) == shaped_relid ? attnum
			: get_attnum(RelationGetRelid(rel), name);

		if (own == InvalidAttrNumber ||
			!bms_is_member(own - FirstLowInvalidHeapAttributeNumber, identity))
			return name;
	}
	return NULL;
}

/*
 * UPDATE and DELETE are routed on the old row: it must carry what the WHERE
 * reads. For a partitioned table, the rows are logged by its partitions, each
 * with its own replica identity.
 */
static void
check_replica_identity(Relation rel, const Bitmapset *where_columns)
{
	List	   *tables = list_make1_oid(RelationGetRelid(rel));
	ListCell   *lc;

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		tables = find_all_inheritors(RelationGetRelid(rel), AccessShareLock, NULL);
	foreach(lc, tables)
	{
		Relation	table = lfirst_oid(lc) == RelationGetRelid(rel) ? rel
			: table_open(lfirst_oid(lc), NoLock);
		const char *column = NULL;

		if (table->rd_rel->relkind == RELKIND_RELATION)
			column = shape_column_outside_identity(table, RelationGetRelid(rel), where_columns);
		if (column != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("shape WHERE clause reads column \"%s\", which is not part of the replica identity of table \"%s\"",
							column, RelationGetRelationName(table)),
					 errdetail("UPDATE and DELETE are routed on the old row, which carries only the replica identity columns."),
					 errhint("Set the table's replica identity to full: ALTER TABLE %s REPLICA IDENTITY FULL;",
							 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(table)),
														RelationGetRelationName(table)))));
		if (table != rel)
			table_close(table, NoLock);
	}
}

/* Column names of a stored WHERE text mapped to the names those columns have now. */
typedef struct ColumnRenames
{
	int			count;
	char	  **from;
	char	  **to;
} ColumnRenames;

static bool
rename_column_refs(Node *node, void *arg)
{
	ColumnRenames *renames = (ColumnRenames *) arg;

	if (node == NULL)
		return false;
	if (IsA(node, ColumnRef))
	{
		ColumnRef  *ref = (ColumnRef *) node;
		const char *name;

		if (list_length(ref->fields) != 1 || !IsA(linitial(ref->fields), String))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("stored shape WHERE text holds a qualified column reference")));
		name = strVal(linitial(ref->fields));
		for (int i = 0; i < renames->count; i++)
			if (strcmp(name, renames->from[i]) == 0)
			{
				linitial(ref->fields) = makeString(renames->to[i]);
				return false;
			}
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("stored shape WHERE text reads column \"%s\", which it did not read when registered", name)));
	}
	return raw_expression_tree_walker(node, rename_column_refs, arg);
}

/*
 * The table's namespace item in pstate: made afresh without a scope, else
 * made once in the scope's context and its range table lent to each pstate
 * (the analysis of an expression adds no entry; it only notes the columns
 * read, in the entry's selectedCols, which nothing here reads back).
 */
static ParseNamespaceItem *
scope_item(ParseState *pstate, Relation rel, WhereScope *scope)
{
	MemoryContext old;

	if (scope == NULL)
		return addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL, false, false);
	if (scope->nsitem == NULL)
	{
		old = MemoryContextSwitchTo(scope->context);
		scope->nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL, false, false);
		MemoryContextSwitchTo(old);
		scope->rtable = pstate->p_rtable;
#if PG_VERSION_NUM >= 160000
		scope->perminfos = pstate->p_rteperminfos;
#endif
		return scope->nsitem;
	}
	/* Lists of this WHERE's own: nothing it appends outlives it. */
	pstate->p_rtable = list_make1(linitial(scope->rtable));
	/* The columns the last WHERE read were noted in its memory, gone now. */
#if PG_VERSION_NUM >= 160000
	pstate->p_rteperminfos = list_make1(linitial(scope->perminfos));
	((RTEPermissionInfo *) linitial(scope->perminfos))->selectedCols = NULL;
#else
	scope->nsitem->p_rte->selectedCols = NULL;
#endif
	return scope->nsitem;
}

/*
 * Parses and analyses a WHERE over rel and checks that a shape may use it;
 * returns the expression and sets *where_columns. With renames, the text's
 * column names are first replaced (a stored text, from before column renames).
 * With scope, the table's range table entry is the scope's (scope_item).
 */
static Node *
analyse_where(Relation rel, const char *where_text, ColumnRenames *renames, WhereScope *scope,
			  Bitmapset **where_columns, Node **planned_out)
{
	WhereErrorContext errctx;
	ErrorContextCallback callback;
	char	   *sql = psprintf(WHERE_PARSE_PREFIX "%s", where_text);
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	Node	   *raw;
	Node	   *expr;
	WalkerContext walker;
	Node	   *planned;
	Bitmapset  *attrs = NULL;
	int			attnum = -1;

	errctx.clause = where_text;
	errctx.prefix_chars = pg_mbstrlen(WHERE_PARSE_PREFIX);
	callback.callback = where_error_callback;
	callback.arg = &errctx;
	callback.previous = error_context_stack;
	error_context_stack = &callback;

	raw = parse_single_expression(sql);
	if (renames != NULL)
		rename_column_refs(raw, renames);

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = sql;
	nsitem = scope_item(pstate, rel, scope);
	addNSItemToQuery(pstate, nsitem, false, true, true);
	expr = transformWhereClause(pstate, raw, EXPR_KIND_WHERE, "WHERE");
	assign_expr_collations(pstate, expr);

	walker.pstate = pstate;
	check_shape_expr_walker(expr, &walker);

	/* Constant folding runs when the plugin prepares the expression; make
	 * its errors (1/0, bad literals) registration errors instead. */
	planned = shape_plan_where(expr);
	offending_function = InvalidOid;
	if (check_functions_in_node_tree(planned))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("invalid shape WHERE clause"),
				 errdetail("Function %s is written in SQL and cannot be evaluated during logical decoding.",
						   format_procedure(offending_function))));

	free_parsestate(pstate);
	error_context_stack = callback.previous;

	*where_columns = NULL;
	pull_varattnos(expr, 1, &attrs);
	while ((attnum = bms_next_member(attrs, attnum)) >= 0)
	{
		AttrNumber	column = attnum + FirstLowInvalidHeapAttributeNumber;

#ifdef ATTRIBUTE_GENERATED_VIRTUAL
		/* not stored: decoded rows carry no value for it (PostgreSQL 18) */
		if (column > 0 && TupleDescAttr(RelationGetDescr(rel), column - 1)->attgenerated == ATTRIBUTE_GENERATED_VIRTUAL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("invalid shape WHERE clause"),
					 errdetail("Column \"%s\" is a virtual generated column, which logical decoding does not see.",
							   NameStr(TupleDescAttr(RelationGetDescr(rel), column - 1)->attname)),
					 errhint("Use a stored generated column (GENERATED ALWAYS AS (...) STORED), or write its expression in the WHERE.")));
#endif
		*where_columns = bms_add_member(*where_columns, column);
	}
	if (planned_out != NULL)
		*planned_out = planned;
	return expr;
}

/*
 * A stored WHERE text analysed again by this server (a shape made under another
 * major): registered_names[i], as the text names a column, is now current_names[i].
 * The same checks as registration, except the role's privileges and the replica
 * identity, which registration settled and DDL guards since.
 */
Node *
shape_reanalyse_where(Relation rel, const char *where_source, int name_count,
					  char **registered_names, char **current_names, Bitmapset **where_columns)
{
	ColumnRenames renames;

	renames.count = name_count;
	renames.from = registered_names;
	renames.to = current_names;
	return analyse_where(rel, where_source, &renames, NULL, where_columns, NULL);
}

void
shape_analyse(Relation rel, const char *where_text, ArrayType *columns, WhereScope *scope, AnalysedShape *out)
{
	out->where = NULL;
	out->planned = NULL;
	out->where_columns = NULL;
	out->columns = shape_resolve_columns(rel, columns);

	if (where_text != NULL)
		out->where = analyse_where(rel, where_text, NULL, scope, &out->where_columns, &out->planned);

	check_select_privileges(rel, out->where_columns, out->columns);
	check_replica_identity(rel, out->where_columns);
	/* Without table-wide SELECT, "all columns" means the ones the role may read
	 * now; columns added later must not reach the stream through this shape. */
	if (out->columns == NULL && pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) != ACLCHECK_OK)
	{
		TupleDesc	desc = RelationGetDescr(rel);

		for (int i = 0; i < desc->natts; i++)
			if (!TupleDescAttr(desc, i)->attisdropped)
				out->columns = bms_add_member(out->columns, i + 1);
	}
}
