/*
 * compile.c — from a shape's analysed WHERE to a program for the core's VM
 * (include/shape_router/program.h), and the conversion of column values and
 * constants to the plain data the VM compares.
 *
 * The tree is first planned (constants folded), as the executor would run it.
 * Boolean structure (AND/OR/NOT/IS TRUE...) and comparisons the core can decide
 * exactly become native instructions; every other boolean sub-expression becomes
 * a FALLBACK leaf that PostgreSQL's executor evaluates. So every accepted clause
 * is evaluated exactly; the native set only decides how fast.
 */
#include "shape_router_pg.h"

#include "access/stratnum.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_locale.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "shape_router/program.h"

/* Btree operator families not named in pg_opfamily_d.h. */
#define SR_FLOAT_BTREE_FAM_OID 1970
#define SR_DATETIME_BTREE_FAM_OID 434
#define SR_UUID_BTREE_FAM_OID 2968
#define SR_NUMERIC_BTREE_FAM_OID 1988
#define SR_TEXT_NOT_LIKE_OP 1210
#define SR_TEXT_STARTS_WITH_OP 3877

sr_type_tag
shape_type_tag(Oid type)
{
	switch (type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return SR_TAG_INT;
		case BOOLOID:
			return SR_TAG_BOOL;
		case DATEOID:
			return SR_TAG_DATE;
		case TIMESTAMPOID:
			return SR_TAG_TIMESTAMP;
		case TIMESTAMPTZOID:
			return SR_TAG_TIMESTAMPTZ;
		case FLOAT4OID:
		case FLOAT8OID:
			return SR_TAG_FLOAT;
		case TEXTOID:
		case VARCHAROID:
			return SR_TAG_TEXT;
		case BPCHAROID:
			return SR_TAG_BPCHAR;
		case UUIDOID:
			return SR_TAG_UUID;
		case NUMERICOID:
			return SR_TAG_NUMERIC;
		default:
			return SR_TAG_NONE;
	}
}

/*
 * The tag of an array column whose elements the index can key (integers, text,
 * uuid), with SR_TAG_ELEMENT_FLAG; SR_TAG_NONE for any other type.
 */
uint8
shape_element_tag(Oid type)
{
	switch (type)
	{
		case INT2ARRAYOID:
		case INT4ARRAYOID:
		case INT8ARRAYOID:
			return SR_TAG_INT | SR_TAG_ELEMENT_FLAG;
		case TEXTARRAYOID:
		case VARCHARARRAYOID:
			return SR_TAG_TEXT | SR_TAG_ELEMENT_FLAG;
		case UUIDARRAYOID:
			return SR_TAG_UUID | SR_TAG_ELEMENT_FLAG;
		default:
			return SR_TAG_NONE;
	}
}

/*
 * Datum → sr_value for a type with a native tag. Byte values point into the
 * (detoasted) datum, which must outlive the evaluation.
 */
void
shape_value_from_datum(Oid type, Datum datum, bool isnull, sr_value *out)
{
	memset(out, 0, sizeof(*out));
	if (isnull)
	{
		out->is_null = 1;
		return;
	}
	switch (type)
	{
		case INT2OID:
			out->v.i = DatumGetInt16(datum);
			break;
		case INT4OID:
			out->v.i = DatumGetInt32(datum);
			break;
		case INT8OID:
			out->v.i = DatumGetInt64(datum);
			break;
		case BOOLOID:
			out->v.i = DatumGetBool(datum) ? 1 : 0;
			break;
		case DATEOID:
			out->v.i = DatumGetDateADT(datum);
			break;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			out->v.i = DatumGetTimestamp(datum);
			break;
		case FLOAT4OID:
			out->v.f = (double) DatumGetFloat4(datum);
			break;
		case FLOAT8OID:
			out->v.f = DatumGetFloat8(datum);
			break;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			{
				text	   *value = DatumGetTextPP(datum);
				int			len = VARSIZE_ANY_EXHDR(value);

				if (type == BPCHAROID)
					len = bpchartruelen(VARDATA_ANY(value), len);	/* bpchar ignores trailing blanks */
				out->v.bytes = (const uint8_t *) VARDATA_ANY(value);
				out->len = (uint32_t) len;
				break;
			}
		case UUIDOID:
			out->v.bytes = DatumGetUUIDP(datum)->data;
			out->len = UUID_LEN;
			break;
		case NUMERICOID:
			{
				/* numeric's own text form, encoded so that bytes order = numeric order */
				char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out, datum));
				size_t		text_len = strlen(text);
				uint8_t    *encoded = palloc(text_len + 8);
				size_t		encoded_len;

				if (sr_encode_decimal(text, text_len, encoded, &encoded_len) != SR_OK)
					elog(ERROR, "shape_router cannot encode numeric \"%s\"", text);
				pfree(text);
				out->v.bytes = encoded;
				out->len = (uint32_t) encoded_len;
				break;
			}
		default:
			elog(ERROR, "shape_router: type %u has no native form", type);
	}
}

/* ---------------------------------------------------------------- compiler */

typedef struct CompileState
{
	sr_program_builder *builder;
	List	   *fallbacks;		/* Expr nodes, index = FALLBACK operand */
	bool		failed;			/* a builder limit was hit: use one whole fallback */
} CompileState;

static void
emit(CompileState *cs, sr_status status)
{
	if (status == SR_OUT_OF_MEMORY)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (status != SR_OK)
		cs->failed = true;
}

static void
compile_fallback(CompileState *cs, Node *node)
{
	int			index = list_length(cs->fallbacks);

	if (index > 255)
	{
		cs->failed = true;
		return;
	}
	cs->fallbacks = lappend(cs->fallbacks, node);
	emit(cs, sr_builder_fallback(cs->builder, (uint16_t) index));
}

static Node *
strip_relabel(Node *node)
{
	while (node != NULL && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	return node;
}

static bool
is_table_column(Node *node)
{
	return node != NULL && IsA(node, Var) && ((Var *) node)->varno == 1 &&
		((Var *) node)->varlevelsup == 0 && ((Var *) node)->varattno > 0;
}

/* The btree family whose comparisons the core implements for this tag. */
static bool
family_matches_tag(Oid family, sr_type_tag tag)
{
	switch (tag)
	{
		case SR_TAG_INT:
			return family == INTEGER_BTREE_FAM_OID;
		case SR_TAG_BOOL:
			return family == BOOL_BTREE_FAM_OID;
		case SR_TAG_DATE:
		case SR_TAG_TIMESTAMP:
		case SR_TAG_TIMESTAMPTZ:
			return family == SR_DATETIME_BTREE_FAM_OID;
		case SR_TAG_FLOAT:
			return family == SR_FLOAT_BTREE_FAM_OID;
		case SR_TAG_TEXT:
			return family == TEXT_BTREE_FAM_OID || family == TEXT_PATTERN_BTREE_FAM_OID;
		case SR_TAG_BPCHAR:
			return family == BPCHAR_BTREE_FAM_OID || family == BPCHAR_PATTERN_BTREE_FAM_OID;
		case SR_TAG_UUID:
			return family == SR_UUID_BTREE_FAM_OID;
		case SR_TAG_NUMERIC:
			return family == SR_NUMERIC_BTREE_FAM_OID;
		default:
			return false;
	}
}

/* Whether comparisons under collid are byte comparisons' (no collation: yes). */
static bool
collation_is_deterministic(Oid collid)
{
	return !OidIsValid(collid) || get_collation_isdeterministic(collid);
}

/*
 * Maps operator opno, applied to two operands of the given tag, to a native
 * comparison. Text ordering is native only where it is byte order: the C
 * collation, or the pattern families (~<~). Equality is byte equality under
 * every built-in collation (all deterministic).
 */
static bool
native_comparison(Oid opno, Oid inputcollid, sr_type_tag tag, sr_compare_op *op)
{
	List	   *interpretations;
	ListCell   *lc;

	/* A nondeterministic collation's equality is not byte equality. */
	if ((tag == SR_TAG_TEXT || tag == SR_TAG_BPCHAR) && !collation_is_deterministic(inputcollid))
		return false;
	interpretations = sr_op_interpretations(opno);
	foreach(lc, interpretations)
	{
		SrOpInterpretation *interp = (SrOpInterpretation *) lfirst(lc);
		bool		bytes = tag == SR_TAG_TEXT || tag == SR_TAG_BPCHAR;

		if (!family_matches_tag(interp->opfamily_id, tag))
			continue;
		switch (SR_INTERP_CMP(interp))
		{
			case SR_CMP_EQ:
				*op = SR_OP_EQ;
				return true;
			case SR_CMP_NE:
				*op = SR_OP_NE;
				return true;
			case SR_CMP_LT:
			case SR_CMP_LE:
			case SR_CMP_GT:
			case SR_CMP_GE:
				if (bytes && interp->opfamily_id != TEXT_PATTERN_BTREE_FAM_OID &&
					interp->opfamily_id != BPCHAR_PATTERN_BTREE_FAM_OID &&
					!(OidIsValid(inputcollid) && sr_collation_is_c(inputcollid)))
					return false;
				*op = SR_INTERP_CMP(interp) == SR_CMP_LT ? SR_OP_LT
					: SR_INTERP_CMP(interp) == SR_CMP_LE ? SR_OP_LE
					: SR_INTERP_CMP(interp) == SR_CMP_GT ? SR_OP_GT : SR_OP_GE;
				return true;
			default:
				return false;
		}
	}
	return false;
}

/* Operand types the native comparison may mix: integers, floats, and within text. */
static bool
operand_types_compatible(Oid column_type, Oid other_type)
{
	sr_type_tag a = shape_type_tag(column_type);
	sr_type_tag b = shape_type_tag(other_type);

	if (a == SR_TAG_NONE || a != b)
		return false;
	/* date vs timestamp comparisons convert; only same-type datetime is native */
	if (a == SR_TAG_DATE || a == SR_TAG_TIMESTAMP || a == SR_TAG_TIMESTAMPTZ)
		return column_type == other_type;
	return true;
}

static sr_compare_op
commute(sr_compare_op op)
{
	switch (op)
	{
		case SR_OP_LT:
			return SR_OP_GT;
		case SR_OP_LE:
			return SR_OP_GE;
		case SR_OP_GT:
			return SR_OP_LT;
		case SR_OP_GE:
			return SR_OP_LE;
		default:
			return op;
	}
}

/* col op const, const op col, col op col; distinct: IS DISTINCT FROM. */
static bool
compile_comparison(CompileState *cs, Oid opno, Oid inputcollid, List *args, bool distinct)
{
	Node	   *left;
	Node	   *right;
	Var		   *column;
	Node	   *other;
	bool		column_on_left;
	sr_type_tag tag;
	sr_compare_op op;

	if (list_length(args) != 2)
		return false;
	left = strip_relabel(linitial(args));
	right = strip_relabel(lsecond(args));
	column_on_left = is_table_column(left);
	if (!column_on_left && !is_table_column(right))
		return false;
	column = (Var *) (column_on_left ? left : right);
	other = column_on_left ? right : left;
	tag = shape_type_tag(column->vartype);
	if (tag == SR_TAG_NONE)
		return false;

	if (IsA(other, Const))
	{
		Const	   *constant = (Const *) other;
		sr_value	value;

		if (!operand_types_compatible(column->vartype, constant->consttype) ||
			!native_comparison(opno, inputcollid, tag, &op))
			return false;
		if (distinct && op != SR_OP_EQ)
			return false;
		if (constant->constisnull)
		{
			/* x IS DISTINCT FROM NULL = x IS NOT NULL; x op NULL = NULL */
			if (distinct)
				emit(cs, sr_builder_null_test(cs->builder, column->varattno, 0));
			else
				emit(cs, sr_builder_constant(cs->builder, SR_NULL));
			return true;
		}
		shape_value_from_datum(constant->consttype, constant->constvalue, false, &value);
		if (distinct)
			op = SR_OP_DISTINCT;
		else if (!column_on_left)
			op = commute(op);
		emit(cs, sr_builder_compare(cs->builder, op, tag, column->varattno, &value));
		return true;
	}
	if (is_table_column(other))
	{
		Var		   *second = (Var *) other;

		if (!operand_types_compatible(column->vartype, second->vartype) ||
			!native_comparison(opno, inputcollid, tag, &op))
			return false;
		if (distinct && op != SR_OP_EQ)
			return false;
		emit(cs, sr_builder_compare_columns(cs->builder, distinct ? SR_OP_DISTINCT : op, tag,
											((Var *) left)->varattno, ((Var *) right)->varattno));
		return true;
	}
	return false;
}

/*
 * col op ANY/ALL (const array) with a native column and a btree comparison op of
 * its family: the column, the array constant (NULL when the array is NULL) and op.
 */
static bool
array_comparison(ScalarArrayOpExpr *saop, Var **column, Const **array, sr_compare_op *op)
{
	Node	   *scalar;
	Const	   *constant;

	if (list_length(saop->args) != 2)
		return false;
	scalar = strip_relabel(linitial(saop->args));
	if (!is_table_column(scalar) || !IsA(lsecond(saop->args), Const))
		return false;
	*column = (Var *) scalar;
	constant = (Const *) lsecond(saop->args);
	*array = constant->constisnull ? NULL : constant;
	return shape_type_tag((*column)->vartype) != SR_TAG_NONE &&
		(constant->constisnull ||
		 operand_types_compatible((*column)->vartype, ARR_ELEMTYPE(DatumGetArrayTypeP(constant->constvalue)))) &&
		native_comparison(saop->opno, saop->inputcollid, shape_type_tag((*column)->vartype), op);
}

/*
 * The non-NULL elements of an array (a datum of an array type, detoasted here)
 * as VM values; *has_null: it held a NULL.
 */
sr_value *
shape_array_values(Datum array, int *count, bool *has_null)
{
	ArrayType  *values = DatumGetArrayTypeP(array);
	Oid			element_type = ARR_ELEMTYPE(values);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elements;
	bool	   *nulls;
	int			n;
	sr_value   *items;

	/* A type's length, passing and alignment never change: the last asked for
	 * is kept (an array column is read on every change). */
	static Oid	known_type = InvalidOid;
	static int16 known_typlen;
	static bool known_typbyval;
	static char known_typalign;

	if (element_type != known_type)
	{
		get_typlenbyvalalign(element_type, &known_typlen, &known_typbyval, &known_typalign);
		known_type = element_type;
	}
	typlen = known_typlen;
	typbyval = known_typbyval;
	typalign = known_typalign;
	deconstruct_array(values, element_type, typlen, typbyval, typalign, &elements, &nulls, &n);
	items = palloc(sizeof(sr_value) * (n + 1));
	*count = 0;
	*has_null = false;
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			*has_null = true;
		else
			shape_value_from_datum(element_type, elements[i], false, &items[(*count)++]);
	}
	return items;
}

/* shape_array_values of an array constant. */
static sr_value *
array_values(Const *array, int *count, bool *has_null)
{
	return shape_array_values(array->constvalue, count, has_null);
}

/* col = ANY(const array) → IN; col <> ALL(const array) → NOT IN. */
static bool
compile_in(CompileState *cs, ScalarArrayOpExpr *saop)
{
	Var		   *column;
	Const	   *array;
	sr_compare_op op;
	sr_value   *items;
	int			count;
	bool		has_null;

	if (!array_comparison(saop, &column, &array, &op) ||
		!((saop->useOr && op == SR_OP_EQ) || (!saop->useOr && op == SR_OP_NE)))
		return false;
	if (array == NULL)
	{
		emit(cs, sr_builder_constant(cs->builder, SR_NULL));	/* x = ANY(NULL) is NULL */
		return true;
	}
	items = array_values(array, &count, &has_null);
	emit(cs, sr_builder_in(cs->builder, shape_type_tag(column->vartype), column->varattno, items, count,
						   has_null, saop->useOr ? 0 : 1));
	return true;
}

/*
 * The literal of a LIKE pattern that is 'literal%...' (*prefix true) or just
 * 'literal' (*prefix false), with \ escapes; false for any other pattern.
 */
static bool
like_literal(text *pattern, StringInfo literal, bool *prefix)
{
	const char *p = VARDATA_ANY(pattern);
	int			len = VARSIZE_ANY_EXHDR(pattern);
	int			i = 0;

	while (i < len)
	{
		if (p[i] == '%')
		{
			for (int j = i; j < len; j++)
				if (p[j] != '%')
					return false;	/* a wildcard inside: not a prefix pattern */
			*prefix = true;
			return true;
		}
		if (p[i] == '_')
			return false;
		if (p[i] == '\\')
		{
			int			charlen;

			if (++i >= len)
				return false;	/* trailing escape: PostgreSQL raises an error; let it */
			charlen = pg_mblen(p + i);
			appendBinaryStringInfo(literal, p + i, charlen);
			i += charlen;
			continue;
		}
		appendStringInfoChar(literal, p[i]);
		i++;
	}
	*prefix = false;
	return true;
}

/* text LIKE 'literal%' (prefix) or LIKE 'literal' (equality), with \ escapes. */
static bool
compile_like(CompileState *cs, OpExpr *opexpr)
{
	Node	   *left;
	Node	   *right;
	Var		   *column;
	text	   *pattern;
	StringInfoData literal;
	bool		negate = opexpr->opno == SR_TEXT_NOT_LIKE_OP;
	bool		prefix;

	if ((opexpr->opno != OID_TEXT_LIKE_OP && !negate) || list_length(opexpr->args) != 2 ||
		!collation_is_deterministic(opexpr->inputcollid))
		return false;
	left = strip_relabel(linitial(opexpr->args));
	right = lsecond(opexpr->args);
	if (!is_table_column(left) || !IsA(right, Const) || ((Const *) right)->constisnull)
		return false;
	column = (Var *) left;
	if (shape_type_tag(column->vartype) != SR_TAG_TEXT)
		return false;
	pattern = DatumGetTextPP(((Const *) right)->constvalue);
	initStringInfo(&literal);
	if (!like_literal(pattern, &literal, &prefix))
		return false;
	if (prefix)
	{
		emit(cs, sr_builder_like_prefix(cs->builder, column->varattno,
										(const uint8_t *) literal.data, literal.len, negate));
		return true;
	}
	/* no wildcard: byte equality, as textlike compares bytes */
	{
		sr_value	value = {0};

		value.v.bytes = (const uint8_t *) literal.data;
		value.len = literal.len;
		emit(cs, sr_builder_compare(cs->builder, negate ? SR_OP_NE : SR_OP_EQ, SR_TAG_TEXT,
									column->varattno, &value));
	}
	return true;
}

/*
 * An array column of native elements against constants, natively (not through
 * the executor): c = ANY(arr), arr @> ARRAY[..], arr <@ ARRAY[..], their
 * commuted forms, and arr && ARRAY[..] either way round.
 */
static bool
compile_array(CompileState *cs, Node *node)
{
	OpExpr	   *opexpr;
	Node	   *left;
	Node	   *right;
	Var		   *column;
	Const	   *array;
	uint8		tag;
	sr_array_op kind;
	sr_value   *items;
	int			count;
	bool		has_null;
	bool		column_left;

	if (IsA(node, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) node;
		Node	   *scalar;
		Node	   *arr;
		sr_compare_op op;
		sr_value	value;

		if (!saop->useOr || list_length(saop->args) != 2)
			return false;
		scalar = strip_relabel(linitial(saop->args));
		arr = strip_relabel(lsecond(saop->args));
		if (!is_table_column(arr) || !IsA(scalar, Const) || ((Const *) scalar)->constisnull ||
			(tag = shape_element_tag(((Var *) arr)->vartype)) == SR_TAG_NONE)
			return false;
		column = (Var *) arr;
		tag &= ~SR_TAG_ELEMENT_FLAG;
		if (!operand_types_compatible(get_element_type(column->vartype), ((Const *) scalar)->consttype) ||
			!native_comparison(saop->opno, saop->inputcollid, (sr_type_tag) tag, &op) || op != SR_OP_EQ)
			return false;
		shape_value_from_datum(((Const *) scalar)->consttype, ((Const *) scalar)->constvalue, false, &value);
		emit(cs, sr_builder_array(cs->builder, SR_ARRAY_ANY_EQ, (sr_type_tag) tag, column->varattno, &value, 1, 0));
		return true;
	}
	if (!IsA(node, OpExpr) || list_length(((OpExpr *) node)->args) != 2)
		return false;
	opexpr = (OpExpr *) node;
	if (opexpr->opno != OID_ARRAY_CONTAINS_OP && opexpr->opno != OID_ARRAY_CONTAINED_OP &&
		opexpr->opno != OID_ARRAY_OVERLAP_OP)
		return false;
	left = strip_relabel(linitial(opexpr->args));
	right = strip_relabel(lsecond(opexpr->args));
	column_left = is_table_column(left) && IsA(right, Const);
	if (!column_left && !(is_table_column(right) && IsA(left, Const)))
		return false;
	column = (Var *) (column_left ? left : right);
	array = (Const *) (column_left ? right : left);
	if ((tag = shape_element_tag(column->vartype)) == SR_TAG_NONE || array->consttype != column->vartype ||
		array->constisnull || !collation_is_deterministic(opexpr->inputcollid))
		return false;
	tag &= ~SR_TAG_ELEMENT_FLAG;
	if (opexpr->opno == OID_ARRAY_OVERLAP_OP)
		kind = SR_ARRAY_OVERLAPS;
	else if ((opexpr->opno == OID_ARRAY_CONTAINS_OP) == column_left)
		kind = SR_ARRAY_CONTAINS;	/* arr @> c, c <@ arr */
	else
		kind = SR_ARRAY_CONTAINED_BY;	/* arr <@ c, c @> arr */
	items = shape_array_values(array->constvalue, &count, &has_null);
	emit(cs, sr_builder_array(cs->builder, kind, (sr_type_tag) tag, column->varattno, items, count, has_null));
	return true;
}

static void compile_bool(CompileState *cs, Node *node);

static void
compile_group(CompileState *cs, BoolExpr *expr)
{
	ListCell   *lc;

	emit(cs, sr_builder_group_begin(cs->builder, expr->boolop == AND_EXPR));
	foreach(lc, expr->args)
	{
		compile_bool(cs, (Node *) lfirst(lc));
		emit(cs, sr_builder_group_term_done(cs->builder));
	}
	emit(cs, sr_builder_group_end(cs->builder));
}

static void
compile_bool(CompileState *cs, Node *node)
{
	check_stack_depth();
	if (cs->failed)
		return;
	switch (nodeTag(node))
	{
		case T_Const:
			{
				Const	   *constant = (Const *) node;

				if (constant->consttype == BOOLOID)
				{
					emit(cs, sr_builder_constant(cs->builder, constant->constisnull ? SR_NULL
												 : (DatumGetBool(constant->constvalue) ? SR_TRUE : SR_FALSE)));
					return;
				}
				break;
			}
		case T_Var:
			if (is_table_column(node) && ((Var *) node)->vartype == BOOLOID)
			{
				emit(cs, sr_builder_bool_column(cs->builder, ((Var *) node)->varattno));
				return;
			}
			break;
		case T_BoolExpr:
			{
				BoolExpr   *expr = (BoolExpr *) node;

				if (expr->boolop == NOT_EXPR)
				{
					compile_bool(cs, linitial(expr->args));
					emit(cs, sr_builder_not(cs->builder));
				}
				else
					compile_group(cs, expr);
				return;
			}
		case T_BooleanTest:
			{
				BooleanTest *test = (BooleanTest *) node;
				static const sr_truth_test tests[] = {
					[IS_TRUE] = SR_TEST_IS_TRUE,[IS_NOT_TRUE] = SR_TEST_IS_NOT_TRUE,
					[IS_FALSE] = SR_TEST_IS_FALSE,[IS_NOT_FALSE] = SR_TEST_IS_NOT_FALSE,
					[IS_UNKNOWN] = SR_TEST_IS_UNKNOWN,[IS_NOT_UNKNOWN] = SR_TEST_IS_NOT_UNKNOWN,
				};

				compile_bool(cs, (Node *) test->arg);
				emit(cs, sr_builder_test(cs->builder, tests[test->booltesttype]));
				return;
			}
		case T_NullTest:
			{
				NullTest   *test = (NullTest *) node;
				Node	   *arg = strip_relabel((Node *) test->arg);

				if (!test->argisrow && is_table_column(arg))
				{
					emit(cs, sr_builder_null_test(cs->builder, ((Var *) arg)->varattno,
												  test->nulltesttype == IS_NULL));
					return;
				}
				break;
			}
		case T_OpExpr:
			{
				OpExpr	   *opexpr = (OpExpr *) node;

				if (compile_comparison(cs, opexpr->opno, opexpr->inputcollid, opexpr->args, false) ||
					compile_like(cs, opexpr) || compile_array(cs, node))
					return;
				break;
			}
		case T_DistinctExpr:
			{
				DistinctExpr *expr = (DistinctExpr *) node;

				if (compile_comparison(cs, expr->opno, expr->inputcollid, expr->args, true))
					return;
				break;
			}
		case T_ScalarArrayOpExpr:
			if (compile_in(cs, (ScalarArrayOpExpr *) node) || compile_array(cs, node))
				return;
			break;
		default:
			break;
	}
	compile_fallback(cs, node);
}

/* Frees the C++ builder if an ERROR unwinds past the compiler. */
static void
destroy_builder(void *arg)
{
	CompileState *cs = (CompileState *) arg;

	if (cs->builder != NULL)
		sr_builder_destroy(cs->builder);
	cs->builder = NULL;
}

static bytea *
finish_program(CompileState *cs)
{
	uint8_t    *bytes;
	size_t		len;
	sr_status	status = sr_builder_finish(cs->builder, (uint8_t) list_length(cs->fallbacks), &bytes, &len);
	bytea	   *program;

	if (status == SR_OUT_OF_MEMORY)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (status != SR_OK)
		return NULL;
	program = palloc(VARHDRSZ + len);
	SET_VARSIZE(program, VARHDRSZ + len);
	memcpy(VARDATA(program), bytes, len);
	free(bytes);
	return program;
}

/*
 * Compiles an analysed WHERE. Returns the program and sets *fallbacks to the
 * (planned) sub-expressions it hands to the executor, NIL when fully native.
 */
/* The form the compiler and the cover read: constants folded, ANDs and ORs flattened. */
Node *
shape_plan_where(Node *where)
{
	return (Node *) expression_planner((Expr *) copyObject(where));
}

bytea *
shape_compile(Node *where, List **fallbacks)
{
	return shape_compile_planned(shape_plan_where(where), fallbacks);
}

/* shape_compile of a WHERE already planned by shape_plan_where (not modified). */
bytea *
shape_compile_planned(Node *planned, List **fallbacks)
{
	CompileState *cs = palloc0(sizeof(CompileState));
	MemoryContextCallback *cleanup = palloc(sizeof(MemoryContextCallback));
	bytea	   *program = NULL;

	cleanup->func = destroy_builder;
	cleanup->arg = cs;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cleanup);

	shape_router_check_status(sr_builder_create(&cs->builder), "create a program builder");
	compile_bool(cs, planned);
	if (!cs->failed)
		program = finish_program(cs);
	if (program == NULL)
	{
		/* Past the format's limits: the whole clause is one fallback. */
		destroy_builder(cs);
		shape_router_check_status(sr_builder_create(&cs->builder), "create a program builder");
		cs->failed = false;
		cs->fallbacks = NIL;
		compile_fallback(cs, planned);
		program = finish_program(cs);
		if (program == NULL)
			elog(ERROR, "shape_router could not compile even a single fallback");
	}
	destroy_builder(cs);
	*fallbacks = cs->fallbacks;
	return program;
}

/* ---------------------------------------------------------------- routing index key */

/*
 * The (binary) operator's column and constant, in either order, when it is a
 * native comparison of the column's type: the comparison with the column on
 * the left. The constant may be NULL.
 */
static bool
column_against_constant(OpExpr *opexpr, Var **column, Const **constant, sr_compare_op *op)
{
	Node	   *left;
	Node	   *right;
	bool		swapped = false;

	if (list_length(opexpr->args) != 2)
		return false;
	left = strip_relabel(linitial(opexpr->args));
	right = strip_relabel(lsecond(opexpr->args));
	if (is_table_column(right) && IsA(left, Const))
	{
		Node	   *swap = left;

		left = right;
		right = swap;
		swapped = true;
	}
	if (!is_table_column(left) || !IsA(right, Const))
		return false;
	*column = (Var *) left;
	*constant = (Const *) right;
	if (shape_type_tag((*column)->vartype) == SR_TAG_NONE ||
		!operand_types_compatible((*column)->vartype, (*constant)->consttype) ||
		!native_comparison(opexpr->opno, opexpr->inputcollid, shape_type_tag((*column)->vartype), op))
		return false;
	if (swapped)
		*op = commute(*op);
	return true;
}

/*
 * col op const or const op col (native type and comparison, constant not
 * NULL): the column, the constant and the comparison with the column on the
 * left, or false when the node is not of that form.
 */
static bool
comparison_conjunct(Node *node, Var **column, Const **constant, sr_compare_op *op)
{
	return IsA(node, OpExpr) && column_against_constant((OpExpr *) node, column, constant, op) &&
		!(*constant)->constisnull;
}

/* col = const: the value the conjunct requires. */
static bool
equality_conjunct(Node *node, Var **column, Const **constant)
{
	sr_compare_op op;

	return comparison_conjunct(node, column, constant, &op) && op == SR_OP_EQ;
}

static bool range_bounds(uint8 tag, Const *constant, sr_compare_op op, uint64 *lo, uint64 *hi);
static Var *expression_range_column(Node *node, Const **constant, sr_compare_op *op, const char **text);

/*
 * col < <= > >= const on a type with order keys: the order keys the column's
 * value can have, inclusive ([*lo, *hi]; lo > hi: none). Strict bounds are
 * tightened only where keys are exact. The same on an indexable expression,
 * with *column a Var standing for its virtual column and *text the
 * expression's (NULL for a column): two such conjuncts on one expression, a
 * BETWEEN, then meet in one range as a column's do (two expressions may share
 * a virtual column number: the text tells them apart).
 */
static bool
range_conjunct(Node *node, Var **column, uint64 *lo, uint64 *hi, const char **text)
{
	Const	   *constant;
	sr_compare_op op;
	uint8		tag;

	*text = NULL;
	if (!comparison_conjunct(node, column, &constant, &op) &&
		(*column = expression_range_column(node, &constant, &op, text)) == NULL)
		return false;
	if (op != SR_OP_LT && op != SR_OP_LE && op != SR_OP_GT && op != SR_OP_GE)
		return false;
	tag = (uint8) shape_type_tag((*column)->vartype);
	return range_bounds(tag, constant, op, lo, hi);
}

/*
 * The order keys [lo, hi] a one-sided comparison (op: <, <=, >, >=) of a value
 * of tag with constant admits (lo > hi: none). False when tag has no order keys.
 */
static bool
range_bounds(uint8 tag, Const *constant, sr_compare_op op, uint64 *lo, uint64 *hi)
{
	sr_value	value;
	uint64		key;
	bool		exact;

	if (sr_tag_order(tag) == SR_ORDER_NONE)
		return false;
	exact = sr_tag_order(tag) == SR_ORDER_EXACT;
	shape_value_from_datum(constant->consttype, constant->constvalue, false, &value);
	key = sr_order_key(tag, &value);
	*lo = 0;
	*hi = PG_UINT64_MAX;
	if (op == SR_OP_GE || (op == SR_OP_GT && !exact))
		*lo = key;
	else if (op == SR_OP_GT)
		*lo = key + 1;
	else if (op == SR_OP_LE || !exact)
		*hi = key;
	else
		*hi = key - 1;
	if ((op == SR_OP_GT && exact && key == PG_UINT64_MAX) || (op == SR_OP_LT && exact && key == 0))
	{
		*lo = 1;				/* nothing is beyond the last key: an empty range */
		*hi = 0;
	}
	return true;
}

/* col = ANY(const array) (native type, btree equality, array not NULL). */
static bool
in_conjunct(Node *node, Var **column, Const **array)
{
	sr_compare_op op;

	return IsA(node, ScalarArrayOpExpr) && ((ScalarArrayOpExpr *) node)->useOr &&
		array_comparison((ScalarArrayOpExpr *) node, column, array, &op) && *array != NULL && op == SR_OP_EQ;
}

/* One alternative of a cover under construction. */
typedef struct CoverAlternative
{
	int			count;
	sr_index_atom *atoms;
	Node	   *source;			/* the part of the WHERE it came from */
	bool		exact;			/* source holds exactly when one of the atoms does */
} CoverAlternative;

static CoverAlternative *
new_alternative(int count, Node *source)
{
	CoverAlternative *alternative = palloc(sizeof(CoverAlternative));

	alternative->count = count;
	alternative->exact = false;
	alternative->atoms = palloc(sizeof(sr_index_atom) * (count + 1));
	alternative->source = source;
	return alternative;
}

static sr_index_atom
equality_atom(Oid relid, Var *column, const sr_value *value)
{
	sr_index_atom atom;

	memset(&atom, 0, sizeof(atom));
	atom.kind = SR_ATOM_EQUAL;
	atom.attnum = (uint16) column->varattno;
	atom.tag = (uint8) shape_type_tag(column->vartype);
	atom.key = sr_index_key(relid, atom.attnum, atom.tag, value);
	return atom;
}

static List *cover_of(Node *node, Oid relid);

/* An alternative of one NULL atom: col IS NULL (or IS NOT DISTINCT FROM NULL). */
static CoverAlternative *
null_alternative(Var *column, Node *source)
{
	CoverAlternative *alternative = new_alternative(1, source);

	memset(&alternative->atoms[0], 0, sizeof(sr_index_atom));
	alternative->atoms[0].kind = SR_ATOM_NULL;
	alternative->atoms[0].attnum = (uint16) column->varattno;
	alternative->atoms[0].tag = (uint8) shape_type_tag(column->vartype);
	alternative->exact = true;	/* NULL-ness needs no key */
	return alternative;
}

/*
 * A complement alternative: "col is not NULL and is none of items" (col <> c,
 * NOT IN, IS NOT NULL with no item), plus a NULL atom when also_null (IS
 * DISTINCT FROM c). Exact when every item's key is the value itself (an
 * excluded key then names just that value) and none was left out for room.
 */
static CoverAlternative *
complement_alternative(Oid relid, Var *column, const sr_value *items, int count, bool also_null, Node *source)
{
	int			kept = Min(count, SR_COVER_MAX_ATOMS - 2);
	CoverAlternative *alternative = new_alternative(1 + kept + (also_null ? 1 : 0), source);
	sr_index_atom *complement = &alternative->atoms[0];

	memset(complement, 0, sizeof(sr_index_atom));
	complement->kind = SR_ATOM_COMPLEMENT;
	complement->attnum = (uint16) column->varattno;
	complement->tag = (uint8) shape_type_tag(column->vartype);
	complement->upper = (uint64) kept;
	for (int i = 0; i < kept; i++)
	{
		alternative->atoms[1 + i] = equality_atom(relid, column, &items[i]);
		alternative->atoms[1 + i].kind = SR_ATOM_EXCLUDED;
	}
	if (also_null)
		alternative->atoms[1 + kept] = null_alternative(column, source)->atoms[0];
	alternative->exact = kept == count && (kept == 0 || sr_key_exact(complement->tag));
	return alternative;
}

/* An alternative of one always atom: every row (no WHERE, or one folded to true). */
static CoverAlternative *
always_alternative(Node *source)
{
	CoverAlternative *alternative = new_alternative(1, source);

	memset(&alternative->atoms[0], 0, sizeof(sr_index_atom));
	alternative->atoms[0].kind = SR_ATOM_ALWAYS;
	alternative->exact = true;
	return alternative;
}

/*
 * x IS [NOT] DISTINCT FROM const, x a native column and = of its btree family:
 * the column and the constant (*constant NULL for a NULL constant).
 */
static bool
distinct_conjunct(Node *node, Var **column, Const **constant)
{
	sr_compare_op op;

	if (!IsA(node, DistinctExpr) || !column_against_constant((OpExpr *) node, column, constant, &op) ||
		op != SR_OP_EQ)
		return false;
	if ((*constant)->constisnull)
		*constant = NULL;
	return true;
}

/* col IS [NOT] NULL on a native column: the column; *is_null for IS NULL. */
static bool
null_test_conjunct(Node *node, Var **column, bool *is_null)
{
	NullTest   *test;
	Node	   *arg;

	if (!IsA(node, NullTest))
		return false;
	test = (NullTest *) node;
	arg = strip_relabel((Node *) test->arg);
	if (test->argisrow || !is_table_column(arg) || shape_type_tag(((Var *) arg)->vartype) == SR_TAG_NONE)
		return false;
	*column = (Var *) arg;
	*is_null = test->nulltesttype == IS_NULL;
	return true;
}

/*
 * The literal runs of a LIKE pattern, split at its unescaped % and _, with \
 * escapes applied: whatever the pattern matches contains each of them. False
 * on a trailing escape (PostgreSQL raises the error).
 */
static bool
like_segments(const char *p, int len, List **segments)
{
	StringInfo	run = makeStringInfo();

	*segments = NIL;
	for (int i = 0; i < len;)
	{
		if (p[i] == '%' || p[i] == '_')
		{
			if (run->len > 0)
				*segments = lappend(*segments, run);
			run = makeStringInfo();
			i++;
			continue;
		}
		if (p[i] == '\\')
		{
			int			charlen;

			if (++i >= len)
				return false;
			charlen = pg_mblen(p + i);
			appendBinaryStringInfo(run, p + i, charlen);
			i += charlen;
			continue;
		}
		appendStringInfoChar(run, p[i]);
		i++;
	}
	if (run->len > 0)
		*segments = lappend(*segments, run);
	return true;
}

/* Substring alternatives a LIKE or ILIKE offers: more lets the router find a rare gram. */
#define SUBSTRING_ALTERNATIVES 6

/* How common a gram's bytes are in text (space and the most frequent letters):
 * grams with fewer of them are offered first, as likelier to be rare in rows. */
static int
gram_commonness(const char *gram, int len)
{
	int			score = 0;

	for (int i = 0; i < len; i++)
	{
		char		c = gram[i];

		score += c == ' ' ? 3 : strchr("etaoin", c) != NULL && c != '\0' ? 2
			: strchr("shrdlu", c) != NULL && c != '\0' ? 1 : 0;
	}
	return score;
}

typedef struct Gram
{
	const char *bytes;
	int			len;
	int			score;
} Gram;

static int
gram_order(const void *a, const void *b)
{
	const Gram *x = a;
	const Gram *y = b;

	if (x->len != y->len)
		return y->len - x->len;	/* longer first: rarer */
	return x->score - y->score;
}

/*
 * The substring atoms of a LIKE pattern's literal runs (pattern lowered for an
 * ILIKE): one alternative per gram, each gram a run of up to SR_SUBSTRING_GRAM
 * bytes or a SR_SUBSTRING_GRAM-byte window of a longer run, up to
 * SUBSTRING_ALTERNATIVES of them, the longest and least common first. Every
 * match contains every gram, so each alone is a cover. NIL: no literal byte.
 */
static List *
substring_alternatives(Oid relid, Var *column, const char *pattern, int len, bool lower, Node *source)
{
	List	   *segments;
	ListCell   *lc;
	Gram	   *grams;
	int			gram_count = 0;
	int			room = 0;
	List	   *alternatives = NIL;

	if (!like_segments(pattern, len, &segments) || segments == NIL)
		return NIL;
	foreach(lc, segments)
		room += Max(1, ((StringInfo) lfirst(lc))->len - SR_SUBSTRING_GRAM + 1);
	grams = palloc(sizeof(Gram) * room);
	foreach(lc, segments)
	{
		StringInfo	run = lfirst(lc);
		int			q = Min(run->len, SR_SUBSTRING_GRAM);

		for (int i = 0; i + q <= run->len; i++)
		{
			bool		seen = false;

			for (int g = 0; g < gram_count && !seen; g++)
				seen = grams[g].len == q && memcmp(grams[g].bytes, run->data + i, q) == 0;
			if (seen)
				continue;
			grams[gram_count].bytes = run->data + i;
			grams[gram_count].len = q;
			grams[gram_count].score = gram_commonness(run->data + i, q);
			gram_count++;
		}
	}
	qsort(grams, gram_count, sizeof(Gram), gram_order);
	for (int g = 0; g < gram_count && g < SUBSTRING_ALTERNATIVES; g++)
	{
		CoverAlternative *alternative = new_alternative(1, source);
		sr_index_atom *atom = &alternative->atoms[0];

		memset(atom, 0, sizeof(*atom));
		atom->kind = SR_ATOM_SUBSTRING;
		atom->attnum = (uint16) column->varattno;
		atom->tag = SR_TAG_TEXT;
		atom->upper = (uint64) grams[g].len;
		atom->lower = lower ? 1 : 0;
		atom->key = sr_substring_key(relid, atom->attnum, lower ? 1 : 0, (const uint8 *) grams[g].bytes,
									 grams[g].len);
		alternative->exact = false;
		alternatives = lappend(alternatives, alternative);
	}
	return alternatives;
}

/*
 * text_col ILIKE pattern: substring atoms of the pattern as PostgreSQL lowers
 * it. Only where ILIKE is LIKE on both sides lowered by lower() (a UTF8
 * database) and under the column's own collation, the one the shell lowers a
 * row's value with. NIL otherwise.
 */
static List *
cover_of_ilike(OpExpr *opexpr, Oid relid)
{
	Node	   *left;
	Node	   *right;
	Var		   *column;
	text	   *lowered;

	if (list_length(opexpr->args) != 2 || GetDatabaseEncoding() != PG_UTF8 ||
		!OidIsValid(opexpr->inputcollid) || !collation_is_deterministic(opexpr->inputcollid))
		return NIL;
	left = strip_relabel(linitial(opexpr->args));
	right = lsecond(opexpr->args);
	if (!is_table_column(left) || !IsA(right, Const) || ((Const *) right)->constisnull ||
		shape_type_tag(((Var *) left)->vartype) != SR_TAG_TEXT ||
		((Var *) left)->varcollid != opexpr->inputcollid)
		return NIL;
	column = (Var *) left;
	lowered = DatumGetTextPP(DirectFunctionCall1Coll(lower, opexpr->inputcollid, ((Const *) right)->constvalue));
	return substring_alternatives(relid, column, VARDATA_ANY(lowered), VARSIZE_ANY_EXHDR(lowered), true,
								  (Node *) opexpr);
}

/*
 * text_col ~ '^abc…': the fixed prefix PostgreSQL's planner finds in an
 * anchored regular expression (regexp_fixed_prefix) is a prefix atom, or an
 * equality atom when the expression matches only that string; an unanchored
 * one with no special character at all ('abc') is a literal the text must
 * contain: its substring atoms, as for LIKE '%abc%'. NIL otherwise.
 */
static List *
cover_of_regex(OpExpr *opexpr, Oid relid)
{
	Node	   *left;
	Node	   *right;
	Var		   *column;
	char	   *prefix;
	bool		exact;
	int			len;
	CoverAlternative *alternative;

	if (list_length(opexpr->args) != 2 || !OidIsValid(opexpr->inputcollid) ||
		!collation_is_deterministic(opexpr->inputcollid))
		return NIL;
	left = strip_relabel(linitial(opexpr->args));
	right = lsecond(opexpr->args);
	if (!is_table_column(left) || !IsA(right, Const) || ((Const *) right)->constisnull ||
		shape_type_tag(((Var *) left)->vartype) != SR_TAG_TEXT)
		return NIL;
	column = (Var *) left;
	prefix = regexp_fixed_prefix(DatumGetTextPP(((Const *) right)->constvalue), false, opexpr->inputcollid, &exact);
	if (prefix == NULL || prefix[0] == '\0')
	{
		text	   *pattern = DatumGetTextPP(((Const *) right)->constvalue);
		const char *p = VARDATA_ANY(pattern);
		int			n = VARSIZE_ANY_EXHDR(pattern);

		for (int i = 0; i < n; i++)
			if (strchr(".^$*+?()[]{}|\\%_", p[i]) != NULL || p[i] == '\0')
				return NIL;		/* % and _ too: the literal goes through the LIKE splitter */
		return n == 0 ? NIL : substring_alternatives(relid, column, p, n, false, (Node *) opexpr);
	}
	len = strlen(prefix);
	alternative = new_alternative(1, (Node *) opexpr);
	if (exact)
	{
		sr_value	value;

		memset(&value, 0, sizeof(value));
		value.v.bytes = (const uint8_t *) prefix;
		value.len = len;
		alternative->atoms[0] = equality_atom(relid, column, &value);
	}
	else
	{
		sr_index_atom *atom = &alternative->atoms[0];

		memset(atom, 0, sizeof(*atom));
		atom->kind = SR_ATOM_PREFIX;
		atom->attnum = (uint16) column->varattno;
		atom->tag = SR_TAG_TEXT;
		len = Min(len, SR_PREFIX_MAX);
		atom->key = sr_prefix_key(relid, atom->attnum, (const uint8 *) prefix, len);
		atom->upper = (uint64) len;
	}
	alternative->exact = false;
	return list_make1(alternative);
}

/*
 * text_col LIKE 'p%' (a literal then only %), text_col ^@ 'p' or
 * starts_with(text_col, 'p'): a prefix atom of p's first
 * SR_PREFIX_MAX bytes (LIKE compares bytes: a prefix of the bytes is one of the
 * characters); 'p' alone is equality, '%' alone IS NOT NULL; any other pattern
 * substring atoms of its literal runs, and ILIKE those of its lowered runs
 * (cover_of_ilike). Not exact: text keys may collide, so the program decides.
 * NIL: not such a LIKE.
 */
static List *
cover_of_like(Node *node, Oid relid)
{
	OpExpr	   *opexpr;
	Node	   *left;
	Node	   *right;
	Var		   *column;
	StringInfoData literal;
	bool		prefix;
	CoverAlternative *alternative;
	List	   *args;
	Oid			collation;
	bool		starts_with;

	if (IsA(node, OpExpr) && ((OpExpr *) node)->opno == OID_TEXT_ICLIKE_OP)
		return cover_of_ilike((OpExpr *) node, relid);
	if (IsA(node, OpExpr) && ((OpExpr *) node)->opno == OID_TEXT_REGEXEQ_OP)
		return cover_of_regex((OpExpr *) node, relid);
	if (IsA(node, OpExpr) && (((OpExpr *) node)->opno == OID_TEXT_LIKE_OP ||
							  ((OpExpr *) node)->opno == SR_TEXT_STARTS_WITH_OP))
	{
		opexpr = (OpExpr *) node;
		args = opexpr->args;
		collation = opexpr->inputcollid;
		starts_with = opexpr->opno == SR_TEXT_STARTS_WITH_OP;
	}
	else if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcid == F_STARTS_WITH)
	{
		args = ((FuncExpr *) node)->args;
		collation = ((FuncExpr *) node)->inputcollid;
		starts_with = true;
	}
	else
		return NIL;
	if (list_length(args) != 2 || !collation_is_deterministic(collation))
		return NIL;
	left = strip_relabel(linitial(args));
	right = lsecond(args);
	if (!is_table_column(left) || !IsA(right, Const) || ((Const *) right)->constisnull ||
		shape_type_tag(((Var *) left)->vartype) != SR_TAG_TEXT)
		return NIL;
	column = (Var *) left;
	initStringInfo(&literal);
	if (starts_with)
	{
		/* t ^@ 'p', starts_with(t, 'p'): a byte prefix, no wildcards or escapes */
		text	   *p = DatumGetTextPP(((Const *) right)->constvalue);

		appendBinaryStringInfo(&literal, VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p));
		prefix = true;
	}
	else if (!like_literal(DatumGetTextPP(((Const *) right)->constvalue), &literal, &prefix))
	{
		/* a wildcard inside: the literal runs' grams (LIKE compares bytes) */
		text	   *p = DatumGetTextPP(((Const *) right)->constvalue);

		return substring_alternatives(relid, column, VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p), false, node);
	}
	if (prefix && literal.len == 0)
		return list_make1(complement_alternative(relid, column, NULL, 0, false, node));
	alternative = new_alternative(1, node);
	memset(&alternative->atoms[0], 0, sizeof(sr_index_atom));
	alternative->atoms[0].attnum = (uint16) column->varattno;
	alternative->atoms[0].tag = SR_TAG_TEXT;
	if (prefix)
	{
		int			len = Min(literal.len, SR_PREFIX_MAX);

		alternative->atoms[0].kind = SR_ATOM_PREFIX;
		alternative->atoms[0].key = sr_prefix_key(relid, (uint16) column->varattno, (const uint8 *) literal.data, len);
		alternative->atoms[0].upper = (uint64) len;
	}
	else
	{
		sr_value	value;

		memset(&value, 0, sizeof(value));
		value.v.bytes = (const uint8_t *) literal.data;
		value.len = literal.len;
		alternative->atoms[0] = equality_atom(relid, column, &value);
	}
	alternative->exact = false;
	return list_make1(alternative);
}

/* An element atom: some element of array column is value (of the element's tag). */
static sr_index_atom
element_atom(Oid relid, Var *column, const sr_value *value)
{
	sr_index_atom atom;
	uint8		tag = shape_element_tag(column->vartype);

	memset(&atom, 0, sizeof(atom));
	atom.kind = SR_ATOM_ELEMENT;
	atom.attnum = (uint16) column->varattno;
	atom.tag = tag;
	atom.key = sr_index_key(relid, atom.attnum, (uint8) (tag & ~SR_TAG_ELEMENT_FLAG), value);
	return atom;
}

/* An array constant's elements' type is the array column's (as @> and && require). */
static bool
array_constant_of(Var *column, Node *node, Const **constant)
{
	if (!IsA(node, Const) || ((Const *) node)->consttype != column->vartype)
		return false;
	*constant = (Const *) node;
	return true;
}

/*
 * Array columns of keyable elements (shape_element_tag): c = ANY(arr) is one
 * element atom; arr @> ARRAY[a, b] (or ARRAY[a, b] <@ arr) one alternative per
 * element (each is implied); arr && ARRAY[a, b] one alternative of an atom per
 * element. Not exact: the program (its executor fallback) decides. An array
 * with a NULL element never contains it; && ignores NULL elements. NIL: none
 * of these.
 */
static List *
cover_of_array(Node *node, Oid relid)
{
	Var		   *column = NULL;
	Const	   *array = NULL;
	int			count;
	bool		has_null;
	sr_value   *items;
	List	   *alternatives = NIL;
	CoverAlternative *alternative;

	if (IsA(node, ScalarArrayOpExpr) && ((ScalarArrayOpExpr *) node)->useOr &&
		list_length(((ScalarArrayOpExpr *) node)->args) == 2)
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) node;
		Node	   *scalar = strip_relabel(linitial(saop->args));
		Node	   *arr = strip_relabel(lsecond(saop->args));
		sr_compare_op op;
		sr_value	value;
		uint8		tag;

		if (!is_table_column(arr) || !IsA(scalar, Const) ||
			(tag = shape_element_tag(((Var *) arr)->vartype)) == SR_TAG_NONE)
			return NIL;
		column = (Var *) arr;
		tag &= ~SR_TAG_ELEMENT_FLAG;
		if (!operand_types_compatible(get_element_type(column->vartype), ((Const *) scalar)->consttype) ||
			!native_comparison(saop->opno, saop->inputcollid, (sr_type_tag) tag, &op) || op != SR_OP_EQ)
			return NIL;
		alternative = new_alternative(((Const *) scalar)->constisnull ? 0 : 1, node);
		if (!((Const *) scalar)->constisnull)	/* NULL = ANY(..) is never true */
		{
			shape_value_from_datum(((Const *) scalar)->consttype, ((Const *) scalar)->constvalue, false, &value);
			alternative->atoms[0] = element_atom(relid, column, &value);
		}
		return list_make1(alternative);
	}
	if (IsA(node, OpExpr) && list_length(((OpExpr *) node)->args) == 2)
	{
		OpExpr	   *opexpr = (OpExpr *) node;
		Node	   *left = strip_relabel(linitial(opexpr->args));
		Node	   *right = strip_relabel(lsecond(opexpr->args));
		bool		contains;

		if (opexpr->opno == OID_ARRAY_CONTAINS_OP || opexpr->opno == OID_ARRAY_OVERLAP_OP)
		{
			if (!is_table_column(left) || !array_constant_of((Var *) left, right, &array))
			{
				if (opexpr->opno != OID_ARRAY_OVERLAP_OP || !is_table_column(right) ||
					!array_constant_of((Var *) right, left, &array))
					return NIL;
				left = right;
			}
			contains = opexpr->opno == OID_ARRAY_CONTAINS_OP;
		}
		else if (opexpr->opno == OID_ARRAY_CONTAINED_OP)	/* const <@ arr */
		{
			if (!is_table_column(right) || !array_constant_of((Var *) right, left, &array))
				return NIL;
			left = right;
			contains = true;
		}
		else
			return NIL;
		column = (Var *) left;
		if (shape_element_tag(column->vartype) == SR_TAG_NONE || array->constisnull ||
			!collation_is_deterministic(opexpr->inputcollid))
			return NIL;
		items = array_values(array, &count, &has_null);
		if (contains)
		{
			if (has_null)		/* an array never contains a NULL: never true */
				return list_make1(new_alternative(0, node));
			if (count == 0)
				return NIL;		/* @> '{}': every non-NULL array */
			for (int i = 0; i < count && i < SR_COVER_MAX_ALTERNATIVES; i++)
			{
				alternative = new_alternative(1, node);
				alternative->atoms[0] = element_atom(relid, column, &items[i]);
				alternatives = lappend(alternatives, alternative);
			}
			return alternatives;
		}
		if (count > SR_COVER_MAX_ATOMS)
			return NIL;
		alternative = new_alternative(count, node);
		for (int i = 0; i < count; i++)
			alternative->atoms[i] = element_atom(relid, column, &items[i]);
		return list_make1(alternative);
	}
	return NIL;
}

/* The cover of the negations: <>, NOT IN, IS [NOT] NULL, IS [NOT] DISTINCT FROM. NIL: none of them. */
static List *
cover_of_negation(Node *node, Oid relid)
{
	Var		   *column;
	Const	   *constant;
	sr_compare_op op;
	bool		is_null;
	sr_value	value;

	if (null_test_conjunct(node, &column, &is_null))
		return list_make1(is_null ? null_alternative(column, node)
						  : complement_alternative(relid, column, NULL, 0, false, node));
	if (comparison_conjunct(node, &column, &constant, &op) && op == SR_OP_NE)
	{
		shape_value_from_datum(constant->consttype, constant->constvalue, false, &value);
		return list_make1(complement_alternative(relid, column, &value, 1, false, node));
	}
	if (IsA(node, ScalarArrayOpExpr) && !((ScalarArrayOpExpr *) node)->useOr &&
		array_comparison((ScalarArrayOpExpr *) node, &column, &constant, &op) && op == SR_OP_NE)
	{
		int			count;
		bool		has_null;
		sr_value   *items;
		CoverAlternative *never;

		if (constant != NULL)
		{
			items = array_values(constant, &count, &has_null);
			if (count == 0 && !has_null)
				return list_make1(always_alternative(node));	/* <> ALL('{}') is true */
			if (!has_null)
				return list_make1(complement_alternative(relid, column, items, count, false, node));
		}
		/* <> ALL(NULL), or a list with a NULL: never true */
		never = new_alternative(0, node);
		never->exact = true;
		return list_make1(never);
	}
	if (distinct_conjunct(node, &column, &constant))
	{
		if (constant == NULL)	/* IS DISTINCT FROM NULL: IS NOT NULL */
			return list_make1(complement_alternative(relid, column, NULL, 0, false, node));
		shape_value_from_datum(constant->consttype, constant->constvalue, false, &value);
		return list_make1(complement_alternative(relid, column, &value, 1, true, node));
	}
	if (IsA(node, BoolExpr) && ((BoolExpr *) node)->boolop == NOT_EXPR &&
		distinct_conjunct(linitial(((BoolExpr *) node)->args), &column, &constant))
	{
		CoverAlternative *alternative;

		if (constant == NULL)	/* IS NOT DISTINCT FROM NULL: IS NULL */
			return list_make1(null_alternative(column, node));
		shape_value_from_datum(constant->consttype, constant->constvalue, false, &value);
		alternative = new_alternative(1, node);
		alternative->atoms[0] = equality_atom(relid, column, &value);
		alternative->exact = sr_key_exact(alternative->atoms[0].tag);
		return list_make1(alternative);
	}
	return NIL;
}

/* A range alternative: one atom, or none when no key is in [lo, hi]. */
static CoverAlternative *
range_alternative(Var *column, uint64 lo, uint64 hi, Node *source)
{
	CoverAlternative *alternative = new_alternative(lo <= hi ? 1 : 0, source);

	if (lo <= hi)
	{
		memset(&alternative->atoms[0], 0, sizeof(sr_index_atom));
		alternative->atoms[0].kind = SR_ATOM_RANGE;
		alternative->atoms[0].attnum = (uint16) column->varattno;
		alternative->atoms[0].tag = (uint8) shape_type_tag(column->vartype);
		alternative->atoms[0].key = lo;
		alternative->atoms[0].upper = hi;
	}
	/* Where keys are exact, [lo, hi] holds just the values the comparison admits. */
	alternative->exact = sr_tag_order((uint8) shape_type_tag(column->vartype)) == SR_ORDER_EXACT;
	return alternative;
}

/*
 * The composite alternative of an equality (or IN) conjunct and the range of
 * another column: one composite atom per value, or NULL when the range is
 * empty (its own alternative already says the AND never holds).
 */
static CoverAlternative *
composite_alternative(CoverAlternative *equality, Var *column, uint64 lo, uint64 hi, Node *source)
{
	CoverAlternative *alternative;

	if (lo > hi)
		return NULL;
	alternative = new_alternative(equality->count, source);
	for (int i = 0; i < equality->count; i++)
	{
		alternative->atoms[i] = equality->atoms[i];
		alternative->atoms[i].kind = SR_ATOM_COMPOSITE;
		alternative->atoms[i].range_attnum = (uint16) column->varattno;
		alternative->atoms[i].range_tag = (uint8) shape_type_tag(column->vartype);
		alternative->atoms[i].lower = lo;
		alternative->atoms[i].upper = hi;
	}
	return alternative;
}

/*
 * An AND: each indexable conjunct's alternatives (the router picks the one
 * whose atoms have the fewest shapes), except that the ranges on one column
 * (a BETWEEN, or >= and <) are intersected into one two-sided range; and,
 * first, each equality or IN conjunct combined with each range on another
 * column (composite atoms: a key shared by many shapes with their own
 * thresholds).
 */
static List *
cover_of_and(BoolExpr *expr, Oid relid)
{
	List	   *alternatives = NIL;
	Var		   *range_columns[SR_COVER_MAX_ALTERNATIVES];
	uint64		range_lo[SR_COVER_MAX_ALTERNATIVES];
	uint64		range_hi[SR_COVER_MAX_ALTERNATIVES];
	Node	   *range_source[SR_COVER_MAX_ALTERNATIVES];
	const char *range_text[SR_COVER_MAX_ALTERNATIVES];	/* an expression's, NULL for a column */
	int			ranges = 0;
	bool		only_ranges = true;
	List	   *equalities = NIL;	/* the equality and IN conjuncts' alternatives */
	List	   *composites = NIL;
	int			other_children = 0;
	ListCell   *lc;

	foreach(lc, expr->args)
	{
		Node	   *child = (Node *) lfirst(lc);
		Var		   *column;
		Const	   *constant;
		uint64		lo;
		uint64		hi;
		int			r;
		const char *text;

		if (range_conjunct(child, &column, &lo, &hi, &text))
		{
			for (r = 0; r < ranges && (range_columns[r]->varattno != column->varattno ||
									   (range_text[r] == NULL) != (text == NULL) ||
									   (text != NULL && strcmp(range_text[r], text) != 0)); r++)
				;
			if (r == ranges)
			{
				if (ranges == SR_COVER_MAX_ALTERNATIVES)
					continue;
				range_columns[ranges] = column;
				range_text[ranges] = text;
				range_lo[ranges] = lo;
				range_hi[ranges] = hi;
				range_source[ranges++] = child;
			}
			else
			{
				range_lo[r] = Max(range_lo[r], lo);
				range_hi[r] = Min(range_hi[r], hi);
				range_source[r] = (Node *) make_andclause(list_make2(range_source[r], child));
			}
			continue;
		}
		only_ranges = false;
		if (equality_conjunct(child, &column, &constant) || in_conjunct(child, &column, &constant))
		{
			List	   *own = cover_of(child, relid);

			equalities = list_concat(equalities, own);
			alternatives = list_concat(alternatives, own);
			continue;
		}
		other_children++;
		alternatives = list_concat(alternatives, cover_of(child, relid));
	}
	for (int r = 0; r < ranges; r++)
		alternatives = lappend(alternatives, range_alternative(range_columns[r], range_lo[r], range_hi[r],
															   range_source[r]));
	foreach(lc, equalities)
	{
		CoverAlternative *equality = lfirst(lc);

		for (int r = 0; r < ranges; r++)
		{
			CoverAlternative *composite;

			/* (not on an expression: the composite index reads one value of its
			 * range column a row, and two expressions may share the number) */
			if (equality->count == 0 || equality->atoms[0].attnum == range_columns[r]->varattno ||
				range_text[r] != NULL)
				continue;
			composite = composite_alternative(equality, range_columns[r], range_lo[r], range_hi[r],
											  (Node *) make_andclause(list_make2(equality->source, range_source[r])));
			if (composite == NULL)
				continue;
			/* Exact when the AND is just the equality and ranges on one column. */
			composite->exact = equality->exact && list_length(equalities) == 1 && ranges == 1 &&
				other_children == 0 &&
				sr_tag_order((uint8) shape_type_tag(range_columns[r]->vartype)) == SR_ORDER_EXACT;
			composites = lappend(composites, composite);
		}
	}
	/* Only ranges on one column (a BETWEEN): their intersection is the AND itself. */
	if (!(only_ranges && ranges == 1))
		foreach(lc, alternatives)
			((CoverAlternative *) lfirst(lc))->exact = false;
	alternatives = list_concat(composites, alternatives);
	while (list_length(alternatives) > SR_COVER_MAX_ALTERNATIVES)
		alternatives = list_delete_last(alternatives);
	return alternatives;
}

/*
 * An OR: every branch needs a cover, and the OR's alternatives are the unions
 * of one alternative of each branch. Past SR_COVER_MAX_ALTERNATIVES unions, each
 * branch keeps only its smallest alternative; past SR_COVER_MAX_ATOMS atoms a
 * union is dropped (too wide to be worth probing), and with it, if none is
 * left, the cover.
 */
static List *
cover_of_or(BoolExpr *expr, Oid relid)
{
	List	   *unions = list_make1(new_alternative(0, (Node *) expr));
	ListCell   *lc;

	((CoverAlternative *) linitial(unions))->exact = true;	/* no branch yet: false, as no atom */

	foreach(lc, expr->args)
	{
		List	   *branch = cover_of((Node *) lfirst(lc), relid);
		List	   *next = NIL;
		ListCell   *u;
		ListCell   *b;

		if (branch == NIL)
			return NIL;
		if (list_length(unions) * list_length(branch) > SR_COVER_MAX_ALTERNATIVES)
		{
			CoverAlternative *smallest = linitial(branch);

			foreach(b, branch)
				if (((CoverAlternative *) lfirst(b))->count < smallest->count)
					smallest = lfirst(b);
			branch = list_make1(smallest);
		}
		foreach(u, unions)
		{
			foreach(b, branch)
			{
				CoverAlternative *left = lfirst(u);
				CoverAlternative *right = lfirst(b);
				CoverAlternative *both;

				if (left->count + right->count > SR_COVER_MAX_ATOMS)
					continue;
				both = new_alternative(left->count + right->count, (Node *) expr);
				both->exact = left->exact && right->exact;
				memcpy(both->atoms, left->atoms, sizeof(sr_index_atom) * left->count);
				memcpy(both->atoms + left->count, right->atoms, sizeof(sr_index_atom) * right->count);
				next = lappend(next, both);
			}
		}
		if (next == NIL || list_length(next) > SR_COVER_MAX_ALTERNATIVES)
			return NIL;
		unions = next;
	}
	return unions;
}

/*
 * A boolean column tested for one value: `done`, `NOT done` (the form the
 * planner gives `done = false`, and `NOT` pushed down to it), `done IS TRUE`,
 * `done IS FALSE`. Each holds exactly when the column has that value (NULL:
 * none of them), so it is the equality atom of that value.
 */
static bool
bool_column_test(Node *node, Var **column, bool *value)
{
	if (is_table_column(node) && ((Var *) node)->vartype == BOOLOID)
	{
		*column = (Var *) node;
		*value = true;
		return true;
	}
	if (IsA(node, BoolExpr) && ((BoolExpr *) node)->boolop == NOT_EXPR &&
		is_table_column(linitial(((BoolExpr *) node)->args)) &&
		((Var *) linitial(((BoolExpr *) node)->args))->vartype == BOOLOID)
	{
		*column = (Var *) linitial(((BoolExpr *) node)->args);
		*value = false;
		return true;
	}
	if (IsA(node, BooleanTest) && is_table_column((Node *) ((BooleanTest *) node)->arg) &&
		((Var *) ((BooleanTest *) node)->arg)->vartype == BOOLOID &&
		(((BooleanTest *) node)->booltesttype == IS_TRUE || ((BooleanTest *) node)->booltesttype == IS_FALSE))
	{
		*column = (Var *) ((BooleanTest *) node)->arg;
		*value = ((BooleanTest *) node)->booltesttype == IS_TRUE;
		return true;
	}
	return false;
}

/* ---------------------------------------------------------------- indexed expressions */

/* Longer texts are not indexed: the catalog's key must fit a btree entry. */
#define EXPRESSION_TEXT_MAX 2000

/* The expressions cover_of filed atoms under, while shape_cover_planned runs. */
static List *cover_expressions = NIL;

/* Whether an expression tree reads only its table's own columns, and at least one. */
static bool
foreign_to_row_walker(Node *node, bool *has_var)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		if (!is_table_column(node))
			return true;
		*has_var = true;
		return false;
	}
	if (IsA(node, Param) || IsA(node, SubLink) || IsA(node, SubPlan) || IsA(node, AlternativeSubPlan) ||
		IsA(node, Aggref) || IsA(node, WindowFunc) || IsA(node, GroupingFunc) ||
		IsA(node, CurrentOfExpr) || IsA(node, NextValueExpr))
		return true;
	return expression_tree_walker(node, foreign_to_row_walker, (void *) has_var);
}

/*
 * An expression the plugin can evaluate on a row to key it: immutable, over
 * the table's own columns only, not a bare column (those have atoms of their
 * own), of a keyable type.
 */
static bool
indexable_expression(Node *node)
{
	bool		has_var = false;

	if (node == NULL || IsA(node, Var) || IsA(node, Const) ||
		shape_type_tag(exprType(node)) == SR_TAG_NONE)
		return false;
	if (foreign_to_row_walker(node, &has_var) || !has_var)
		return false;
	return !contain_mutable_functions(node) && !expression_returns_set(node);
}

/*
 * nodeToString's text with every ":location N" made -1 and every implicit
 * coercion's format (2, COERCE_IMPLICIT_CAST) made explicit (1): the same
 * expression written anywhere in a WHERE, or read back from the WHERE's
 * deparsed text (which spells its implicit casts out), has one text. Formats
 * only say how a node is shown. (A string's blanks are escaped, so " :name "
 * is always a field.)
 */
static char *
expression_text(Node *expr)
{
	static const char *const formats[] = {"relabelformat", "funcformat", "coerceformat", "convertformat",
	"coercionformat"};
	char	   *text = nodeToString(expr);
	StringInfoData out;
	const char *p = text;
	const char *hit;

	initStringInfo(&out);
	while ((hit = strstr(p, " :")) != NULL)
	{
		const char *name = hit + 2;
		const char *value = strchr(name, ' ');
		bool		location;
		bool		format = false;

		if (value == NULL)
			break;
		location = value - name == 8 && strncmp(name, "location", 8) == 0;
		for (int i = 0; i < (int) lengthof(formats) && !location && !format; i++)
			format = (size_t) (value - name) == strlen(formats[i]) && strncmp(name, formats[i], value - name) == 0;
		value++;
		appendBinaryStringInfo(&out, p, value - p);
		p = value;
		if (location)
		{
			appendStringInfoString(&out, "-1");
			if (*p == '-')
				p++;
			while (*p >= '0' && *p <= '9')
				p++;
		}
		else if (format && p[0] == '2' && (p[1] == ' ' || p[1] == '}'))
		{
			appendStringInfoChar(&out, '1');
			p++;
		}
	}
	appendStringInfoString(&out, p);
	return out.data;
}

/* A two-argument operator's arguments without relabelling, a constant on the
 * right: true when they were swapped to put it there. */
static bool
constant_on_right(List *args, Node **left, Node **right)
{
	*left = strip_relabel(linitial(args));
	*right = strip_relabel(lsecond(args));
	if (!IsA(*left, Const))
		return false;
	{
		Node	   *swap = *left;

		*left = *right;
		*right = swap;
	}
	return true;
}

/*
 * expr op const (either side; op a btree comparison of expr's type, commuted so
 * that expr is on the left), expr IN (consts) (op =, *in_list) or expr NOT IN
 * (consts) (op <>, *in_list and *all), expr an indexable expression: the
 * expression, the constant (a scalar, or the array of the list, not NULL) and op.
 */
static bool
expression_comparison(Node *node, Node **expr, Const **constant, sr_compare_op *op, bool *in_list, bool *all)
{
	Node	   *left;
	Node	   *right;
	Oid			opno;
	Oid			collation;
	Oid			other_type;
	bool		swapped = false;

	if (IsA(node, OpExpr) && list_length(((OpExpr *) node)->args) == 2)
	{
		swapped = constant_on_right(((OpExpr *) node)->args, &left, &right);
		opno = ((OpExpr *) node)->opno;
		collation = ((OpExpr *) node)->inputcollid;
		*in_list = false;
		*all = false;
	}
	else if (IsA(node, ScalarArrayOpExpr) && list_length(((ScalarArrayOpExpr *) node)->args) == 2)
	{
		left = strip_relabel(linitial(((ScalarArrayOpExpr *) node)->args));
		right = lsecond(((ScalarArrayOpExpr *) node)->args);
		opno = ((ScalarArrayOpExpr *) node)->opno;
		collation = ((ScalarArrayOpExpr *) node)->inputcollid;
		*in_list = true;
		*all = !((ScalarArrayOpExpr *) node)->useOr;
	}
	else
		return false;
	if (!IsA(right, Const) || ((Const *) right)->constisnull || !indexable_expression(left))
		return false;
	other_type = *in_list ? ARR_ELEMTYPE(DatumGetArrayTypeP(((Const *) right)->constvalue))
		: ((Const *) right)->consttype;
	if (!operand_types_compatible(exprType(left), other_type) ||
		!native_comparison(opno, collation, shape_type_tag(exprType(left)), op) ||
		(*in_list && *op != (*all ? SR_OP_NE : SR_OP_EQ)))
		return false;
	if (swapped)
		*op = commute(*op);
	*expr = left;
	*constant = (Const *) right;
	return true;
}

/* The virtual column of an indexable expression (NULL: its text is too long to keep). */
static ShapeIndexExpression *
expression_column(Node *expr)
{
	ShapeIndexExpression *indexed = palloc(sizeof(ShapeIndexExpression));

	indexed->text = expression_text(expr);
	if (strlen(indexed->text) > EXPRESSION_TEXT_MAX)
		return NULL;
	indexed->expr = stringToNode(indexed->text);
	indexed->attnum = (uint16) (SHAPE_VIRTUAL_ATTNUM_BASE +
								hash_bytes((const unsigned char *) indexed->text, (int) strlen(indexed->text)) %
								SHAPE_VIRTUAL_ATTNUM_COUNT);
	return indexed;
}

/*
 * expr < <= > >= const: a Var standing for the expression's virtual column
 * (its expression kept for the cover), the constant and op; NULL otherwise.
 */
static Var *
expression_range_column(Node *node, Const **constant, sr_compare_op *op, const char **text)
{
	Node	   *expr;
	bool		in_list;
	bool		all;
	ShapeIndexExpression *indexed;

	if (!expression_comparison(node, &expr, constant, op, &in_list, &all) || in_list ||
		(*op != SR_OP_LT && *op != SR_OP_LE && *op != SR_OP_GT && *op != SR_OP_GE) ||
		sr_tag_order((uint8) shape_type_tag(exprType(expr))) == SR_ORDER_NONE ||
		(indexed = expression_column(expr)) == NULL)
		return NULL;
	cover_expressions = lappend(cover_expressions, indexed);
	*text = indexed->text;
	return makeVar(1, (AttrNumber) indexed->attnum, exprType(expr), exprTypmod(expr), exprCollation(expr), 0);
}

/*
 * expr IS DISTINCT FROM const (either side, = of expr's type), or NOT of it
 * (*negated): the expression and the constant (NULL for a NULL constant).
 */
static bool
expression_distinct(Node *node, Node **expr, Const **constant, bool *negated)
{
	Node	   *left;
	Node	   *right;
	sr_compare_op op;

	*negated = IsA(node, BoolExpr) && ((BoolExpr *) node)->boolop == NOT_EXPR;
	if (*negated)
		node = linitial(((BoolExpr *) node)->args);
	if (!IsA(node, DistinctExpr) || list_length(((DistinctExpr *) node)->args) != 2)
		return false;
	(void) constant_on_right(((DistinctExpr *) node)->args, &left, &right);
	if (!IsA(right, Const) || !indexable_expression(left) ||
		!operand_types_compatible(exprType(left), ((Const *) right)->consttype) ||
		!native_comparison(((DistinctExpr *) node)->opno, ((DistinctExpr *) node)->inputcollid,
						   shape_type_tag(exprType(left)), &op) || op != SR_OP_EQ)
		return false;
	*expr = left;
	*constant = ((Const *) right)->constisnull ? NULL : (Const *) right;
	return true;
}

/*
 * expr IS NULL: a NULL atom on the expression's virtual column; expr IS NOT
 * NULL, expr <> c, expr NOT IN (c1, ...): a complement atom on it, as for a
 * column (complement_alternative, on a Var standing for the virtual column),
 * and exact where the column's would be; expr IS DISTINCT FROM c a complement
 * and a NULL atom, NOT of it an equality atom (IS NOT DISTINCT FROM NULL: a
 * NULL atom). NIL: not such a test.
 */
static List *
cover_of_expression_negation(Node *node, Oid relid)
{
	Node	   *expr;
	Const	   *constant = NULL;
	bool		in_list = false;
	bool		all = false;
	bool		is_null = false;
	sr_compare_op op;
	ShapeIndexExpression *indexed;
	Var		   *column;
	CoverAlternative *alternative;
	bool		distinct = false;
	bool		negated = false;

	if (IsA(node, NullTest) && !((NullTest *) node)->argisrow &&
		indexable_expression(strip_relabel((Node *) ((NullTest *) node)->arg)))
	{
		expr = strip_relabel((Node *) ((NullTest *) node)->arg);
		is_null = ((NullTest *) node)->nulltesttype == IS_NULL;
	}
	else if (expression_distinct(node, &expr, &constant, &negated))
	{
		distinct = !negated;
		is_null = negated && constant == NULL;	/* NOT (expr IS DISTINCT FROM NULL) */
	}
	else if (!expression_comparison(node, &expr, &constant, &op, &in_list, &all) || op != SR_OP_NE)
		return NIL;
	if ((indexed = expression_column(expr)) == NULL)
		return NIL;
	column = makeVar(1, (AttrNumber) indexed->attnum, exprType(expr), exprTypmod(expr), exprCollation(expr), 0);
	if (negated && constant != NULL)
	{
		sr_value	value;

		/* NOT (expr IS DISTINCT FROM c): expr = c, never NULL */
		shape_value_from_datum(constant->consttype, constant->constvalue, false, &value);
		alternative = new_alternative(1, node);
		alternative->atoms[0] = equality_atom(relid, column, &value);
		alternative->exact = sr_key_exact(alternative->atoms[0].tag);
	}
	else if (is_null)
		alternative = null_alternative(column, node);
	else if (distinct && constant != NULL)
	{
		sr_value	value;

		shape_value_from_datum(constant->consttype, constant->constvalue, false, &value);
		alternative = complement_alternative(relid, column, &value, 1, true, node);
	}
	else if (constant == NULL)
		alternative = complement_alternative(relid, column, NULL, 0, false, node);
	else if (in_list)
	{
		int			count;
		bool		has_null;
		sr_value   *items = array_values(constant, &count, &has_null);

		if (count == 0 && !has_null)
			return list_make1(always_alternative(node));	/* <> ALL('{}') is true */
		if (has_null)
		{
			alternative = new_alternative(0, node); /* a NULL in the list: never true */
			alternative->exact = true;
			return list_make1(alternative);
		}
		alternative = complement_alternative(relid, column, items, count, false, node);
	}
	else
	{
		sr_value	value;

		shape_value_from_datum(constant->consttype, constant->constvalue, false, &value);
		alternative = complement_alternative(relid, column, &value, 1, false, node);
	}
	cover_expressions = lappend(cover_expressions, indexed);
	return list_make1(alternative);
}

/*
 * expr = c, expr IN (c1, ...): one equality atom per value on the expression's
 * virtual column (SHAPE_VIRTUAL_ATTNUM_BASE + a hash of its text), keyed as a
 * column of its type would be; expr < c (<=, >, >=): a range atom on it, of
 * the order keys the comparison admits. Exact where a column's atom would be:
 * the decoder evaluates the expression on the row as the program would, and a
 * row on which it fails has no keys (every shape is offered to its program).
 * Two expressions of a table may share a virtual column number; a row holding
 * both results is not decided by the index (the router checks). NIL: not such
 * a comparison.
 */
static List *
cover_of_expression(Node *node, Oid relid)
{
	Node	   *expr;
	Const	   *constant;
	bool		in_list = false;
	bool		all = false;
	bool		range = false;
	sr_compare_op op;
	uint64		lo = 0;
	uint64		hi = 0;
	ShapeIndexExpression *indexed;
	sr_value   *items;
	sr_value	value;
	int			count;
	bool		has_null;
	uint8		tag;
	CoverAlternative *alternative;

	if (!expression_comparison(node, &expr, &constant, &op, &in_list, &all))
		return cover_of_expression_negation(node, relid);
	if (op != SR_OP_EQ)
	{
		if (op != SR_OP_LT && op != SR_OP_LE && op != SR_OP_GT && op != SR_OP_GE)
			return cover_of_expression_negation(node, relid);
		range = true;
	}
	if ((indexed = expression_column(expr)) == NULL)
		return NIL;
	tag = (uint8) shape_type_tag(exprType(expr));
	if (range)
	{
		if (!range_bounds(tag, constant, op, &lo, &hi))
			return NIL;
		alternative = new_alternative(lo <= hi ? 1 : 0, node);	/* none: never true */
		if (lo <= hi)
		{
			memset(&alternative->atoms[0], 0, sizeof(sr_index_atom));
			alternative->atoms[0].kind = SR_ATOM_RANGE;
			alternative->atoms[0].attnum = indexed->attnum;
			alternative->atoms[0].tag = tag;
			alternative->atoms[0].key = lo;
			alternative->atoms[0].upper = hi;
		}
		/* Where keys are exact, [lo, hi] holds just the values the comparison admits. */
		alternative->exact = sr_tag_order(tag) == SR_ORDER_EXACT;
		cover_expressions = lappend(cover_expressions, indexed);
		return list_make1(alternative);
	}
	if (in_list)
		items = array_values(constant, &count, &has_null);
	else
	{
		shape_value_from_datum(constant->consttype, constant->constvalue, false, &value);
		items = &value;
		count = 1;
	}
	alternative = new_alternative(count, node);
	for (int i = 0; i < count; i++)
	{
		sr_index_atom *atom = &alternative->atoms[i];

		memset(atom, 0, sizeof(*atom));
		atom->kind = SR_ATOM_EQUAL;
		atom->attnum = indexed->attnum;
		atom->tag = tag;
		atom->key = sr_index_key(relid, atom->attnum, tag, &items[i]);
	}
	/* NULLs in the list only make a non-match NULL instead of false */
	alternative->exact = sr_key_exact(tag);
	cover_expressions = lappend(cover_expressions, indexed);
	return list_make1(alternative);
}

/*
 * The cover of a (planned) boolean expression, as a list of alternatives:
 * col = c is one atom, and so is a boolean column tested for one value
 * (bool_column_test); col IN (c1, ...) one atom per non-NULL value (NULLs never
 * equal anything: no value left, no atom, the WHERE never holds); col < c and
 * the like one range atom; the negations a NULL or complement atom
 * (cover_of_negation); LIKE 'p%' a prefix atom (cover_of_like); array
 * operators element atoms (cover_of_array); no WHERE or
 * one folded to true the always atom, and one
 * folded to false or NULL no atom; an AND its conjuncts' alternatives
 * (cover_of_and); an OR the unions (cover_of_or). NIL: no cover.
 */
static List *
cover_of(Node *node, Oid relid)
{
	Var		   *column;
	Const	   *constant;
	uint64		lo;
	uint64		hi;
	bool		truth;
	List	   *negation;
	const char *text;

	if (node == NULL || (IsA(node, Const) && !((Const *) node)->constisnull &&
						 ((Const *) node)->consttype == BOOLOID && DatumGetBool(((Const *) node)->constvalue)))
		return list_make1(always_alternative(node));
	if (IsA(node, Const) && ((Const *) node)->consttype == BOOLOID)
	{
		/* false or NULL: never true, an alternative with no atom */
		CoverAlternative *never = new_alternative(0, node);

		never->exact = true;
		return list_make1(never);
	}
	if ((negation = cover_of_negation(node, relid)) != NIL)
		return negation;
	if ((negation = cover_of_like(node, relid)) != NIL)
		return negation;
	if ((negation = cover_of_array(node, relid)) != NIL)
		return negation;
	if (bool_column_test(node, &column, &truth))
	{
		CoverAlternative *alternative = new_alternative(1, node);
		sr_value	value;

		shape_value_from_datum(BOOLOID, BoolGetDatum(truth), false, &value);
		alternative->atoms[0] = equality_atom(relid, column, &value);
		alternative->exact = true;	/* bool keys are one-to-one */
		return list_make1(alternative);
	}
	if (equality_conjunct(node, &column, &constant))
	{
		CoverAlternative *alternative = new_alternative(1, node);
		sr_value	value;

		shape_value_from_datum(constant->consttype, constant->constvalue, false, &value);
		alternative->atoms[0] = equality_atom(relid, column, &value);
		alternative->exact = sr_key_exact(alternative->atoms[0].tag);
		return list_make1(alternative);
	}
	if (in_conjunct(node, &column, &constant))
	{
		int			count;
		bool		has_null;
		sr_value   *items = array_values(constant, &count, &has_null);
		CoverAlternative *alternative = new_alternative(count, node);

		for (int i = 0; i < count; i++)
			alternative->atoms[i] = equality_atom(relid, column, &items[i]);
		/* NULLs in the list only make a non-match NULL instead of false */
		alternative->exact = sr_key_exact((uint8) shape_type_tag(column->vartype));
		return list_make1(alternative);
	}
	if (range_conjunct(node, &column, &lo, &hi, &text))
		return list_make1(range_alternative(column, lo, hi, node));
	if ((negation = cover_of_expression(node, relid)) != NIL)
		return negation;
	if (IsA(node, BoolExpr) && ((BoolExpr *) node)->boolop == AND_EXPR)
		return cover_of_and((BoolExpr *) node, relid);
	if (IsA(node, BoolExpr) && ((BoolExpr *) node)->boolop == OR_EXPR)
		return cover_of_or((BoolExpr *) node, relid);
	return NIL;
}

/*
 * The cover of a WHERE (ShapeCover), from its planned form (constants folded,
 * nested ANDs and ORs flattened). Keys are sr_index_key of the constants as the
 * VM normalises them, the same function the plugin applies to rows.
 */
void
shape_cover(Node *where, Oid relid, ShapeCover *out)
{
	shape_cover_planned(shape_plan_where(where), relid, out);
}

/* shape_cover of a WHERE already planned by shape_plan_where (not modified). */
void
shape_cover_planned(Node *planned, Oid relid, ShapeCover *out)
{
	List	   *alternatives;
	ListCell   *lc;
	int			atoms = 0;

	cover_expressions = NIL;
	alternatives = cover_of(planned, relid);
	memset(out, 0, sizeof(*out));
	foreach(lc, alternatives)
		atoms += ((CoverAlternative *) lfirst(lc))->count;
	out->atoms = palloc(sizeof(sr_index_atom) * (atoms + 1));
	foreach(lc, alternatives)
	{
		CoverAlternative *alternative = lfirst(lc);

		memcpy(out->atoms + out->atom_count, alternative->atoms, sizeof(sr_index_atom) * alternative->count);
		out->atom_count += alternative->count;
		out->sizes[out->alternative_count] = (uint32) alternative->count;
		if (alternative->exact)
			out->exact_alternatives |= (uint32) 1 << out->alternative_count;
		out->sources[out->alternative_count] = alternative->source;
		out->alternative_count++;
	}
	/* The expressions the kept atoms use, each text once. */
	foreach(lc, cover_expressions)
	{
		ShapeIndexExpression *indexed = lfirst(lc);
		bool		used = false;
		ListCell   *kept;

		for (int k = 0; k < out->atom_count && !used; k++)
			used = out->atoms[k].attnum == indexed->attnum ||
				(out->atoms[k].kind == SR_ATOM_COMPOSITE && out->atoms[k].range_attnum == indexed->attnum);
		foreach(kept, out->expressions)
			used &= strcmp(((ShapeIndexExpression *) lfirst(kept))->text, indexed->text) != 0;
		if (used)
			out->expressions = lappend(out->expressions, indexed);
	}
	cover_expressions = NIL;
}

/* ---------------------------------------------------------------- fallbacks on an indexed expression */

typedef struct ReplaceExpression
{
	Node	   *expr;
	Var		   *column;
} ReplaceExpression;

static Node *
replace_expression_mutator(Node *node, ReplaceExpression *replace)
{
	if (node == NULL)
		return NULL;
	if (equal(node, replace->expr))
		return (Node *) copyObject(replace->column);
	return expression_tree_mutator(node, replace_expression_mutator, (void *) replace);
}

/*
 * A fallback that tests one indexable expression against constants (expr op c,
 * expr IN (...), expr NOT IN (...), expr IS [NOT] NULL, expr IS [NOT] DISTINCT
 * FROM c): the virtual column its expression would be indexed on, the
 * expression's text, and a program without fallbacks that decides the test
 * from the expression's value alone, read as column 1. The decoder runs that
 * program instead of the executor when it has evaluated the expression on the
 * row already. The program is allocated in context. False: another test.
 */
bool
shape_fallback_on_expression(Node *node, MemoryContext context, uint16 *attnum, char **text,
							 uint8 **program, uint32 *program_len)
{
	Node	   *expr = NULL;
	Const	   *constant;
	sr_compare_op op;
	bool		in_list;
	bool		all;
	bool		negated;
	ShapeIndexExpression *indexed;
	ReplaceExpression replace;
	MemoryContext scratch;
	MemoryContext old;
	List	   *fallbacks = NIL;
	bytea	   *compiled;
	bool		found = false;

	if (IsA(node, NullTest) && !((NullTest *) node)->argisrow &&
		indexable_expression(strip_relabel((Node *) ((NullTest *) node)->arg)))
		expr = strip_relabel((Node *) ((NullTest *) node)->arg);
	else if (!expression_distinct(node, &expr, &constant, &negated) &&
			 !expression_comparison(node, &expr, &constant, &op, &in_list, &all))
		return false;
	scratch = AllocSetContextCreate(CurrentMemoryContext, "shape_router fallback on an expression",
									ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(scratch);
	indexed = expression_column(expr);
	if (indexed != NULL)
	{
		replace.expr = expr;
		replace.column = makeVar(1, 1, exprType(expr), exprTypmod(expr), exprCollation(expr), 0);
		compiled = shape_compile_planned(replace_expression_mutator(copyObject(node), &replace), &fallbacks);
		if (fallbacks == NIL)
		{
			MemoryContextSwitchTo(context);
			*attnum = indexed->attnum;
			*text = pstrdup(indexed->text);
			*program_len = (uint32) VARSIZE_ANY_EXHDR(compiled);
			*program = palloc(*program_len);
			memcpy(*program, VARDATA_ANY(compiled), *program_len);
			found = true;
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scratch);
	return found;
}
