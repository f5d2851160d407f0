/*
 * variable_keys.c — the parts of a row's view (sr_row_view) that need
 * PostgreSQL beyond reading the tuple: a text column's bytes lowered as ILIKE
 * lowers them (under its collation), and the results of indexed expressions
 * (virtual columns). The core makes their keys, as it does the columns'.
 */
#include "shape_router_pg.h"

#include "access/htup_details.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"

#include "shape_router/program.h"

/*
 * Whether lower() under collation maps each ASCII byte as pg_ascii_tolower
 * does, so that an ASCII value lowers here without a call (under a Turkish
 * locale, for one, 'I' does not lower to 'i'). Kept per collation.
 */
static bool
ascii_lowering_is_plain(Oid collation)
{
	static Oid	known[8];
	static bool plain[8];
	static int	next;
	char		ascii[127];
	text	   *lowered;
	bool		same;

	for (int i = 0; i < lengthof(known); i++)
		if (known[i] == collation && OidIsValid(collation))
			return plain[i];
	for (int i = 0; i < 127; i++)
		ascii[i] = (char) (i + 1);
	lowered = DatumGetTextPP(DirectFunctionCall1Coll(lower, collation,
													 PointerGetDatum(cstring_to_text_with_len(ascii, 127))));
	same = VARSIZE_ANY_EXHDR(lowered) == 127;
	for (int i = 0; same && i < 127; i++)
		same = VARDATA_ANY(lowered)[i] == pg_ascii_tolower(ascii[i]);
	known[next] = collation;
	plain[next] = same;
	next = (next + 1) % lengthof(known);
	return same;
}

#define BYTES_EACH(b) (UINT64CONST(0x0101010101010101) * (b))

/* Whether the n bytes at s are all ASCII, 8 at a time. */
static inline bool
all_ascii(const char *s, int n)
{
	uint64		seen = 0;
	int			i = 0;

	for (; i + 8 <= n; i += 8)
	{
		uint64		w;

		memcpy(&w, s + i, 8);
		seen |= w;
	}
	for (; i < n; i++)
		seen |= (unsigned char) s[i];
	return (seen & BYTES_EACH(0x80)) == 0;
}

/* The bytes of a text value as lower() under collation makes them (as ILIKE
 * lowers the value it matches): ASCII text that the collation lowers as
 * pg_ascii_tolower does is passed as it is, for the core to lower. */
static void
lowered_value(Oid collation, const sr_value *value, sr_value *out)
{
	const char *s = (const char *) value->v.bytes;
	int			n = (int) value->len;
	text	   *lowered;

	memset(out, 0, sizeof(sr_value));
	if (all_ascii(s, n) && ascii_lowering_is_plain(collation))
	{
		out->v.bytes = value->v.bytes;
		out->len = (uint32) n;
		out->ascii_fold = 1;
		return;
	}
	lowered = DatumGetTextPP(DirectFunctionCall1Coll(lower, collation,
													 PointerGetDatum(cstring_to_text_with_len(s, n))));
	out->v.bytes = (const uint8_t *) VARDATA_ANY(lowered);
	out->len = VARSIZE_ANY_EXHDR(lowered);
}

/*
 * For a row version's values (by attnum), the lowered bytes of the text
 * columns with lowered substring atoms (ILIKE), by attnum: the core makes their
 * gram keys from them. NULL when no column has such atoms. In buffer when it
 * holds natts + 1 values; only the entries of columns with lowered atoms are
 * set, the only ones the core reads (zero for a column that is not text).
 */
sr_value *
shape_lowered_values(const RelationInfo *rel, const sr_index_column *columns, size_t column_count,
					 const sr_value *values, sr_value *buffer, int buffer_len)
{
	sr_value   *lowered = NULL;
	bool		any_text = false;

	for (size_t c = 0; c < column_count; c++)
	{
		int			attnum = columns[c].attnum;

		if ((columns[c].substring_grams >> 8) == 0 || SHAPE_ATTNUM_IS_VIRTUAL(attnum))
			continue;
		if (lowered == NULL)
			lowered = rel->desc->natts < buffer_len ? buffer : palloc(sizeof(sr_value) * (rel->desc->natts + 1));
		memset(&lowered[attnum], 0, sizeof(sr_value));
		if (columns[c].tag != SR_TAG_TEXT)
			continue;
		any_text = true;
		if (values[attnum].is_null)
			lowered[attnum].is_null = 1;
		else
			lowered_value(TupleDescAttr(rel->desc, attnum - 1)->attcollation, &values[attnum], &lowered[attnum]);
	}
	return any_text ? lowered : NULL;
}

/* Whether every expression of virtual column attnum reads only columns (false: none known). */
bool
shape_expression_columns_within(const RelationInfo *rel, uint16 attnum, const Bitmapset *columns)
{
	bool		any = false;

	for (int e = 0; e < rel->expression_count; e++)
	{
		if (rel->expressions[e].attnum != attnum)
			continue;
		if (!bms_is_subset(rel->expressions[e].columns, columns))
			return false;
		any = true;
	}
	return any;
}

/* Where a native program reads a row version's columns. */
typedef struct NativeRow
{
	HeapTuple	tuple;
	TupleDesc	desc;
	const sr_value *values;		/* by attnum */
	uint64		read_columns;	/* bit attnum - 1: an integer column's value read into values */
} NativeRow;

/* A column's integer value from the tuple (native_arith_eval reads those in
 * read_columns from the values itself). */
static bool
native_read(void *arg, AttrNumber attnum, int64 *value, bool *isnull)
{
	const NativeRow *row = arg;
	Form_pg_attribute attr;
	Datum		datum;

	if (attnum < 1 || attnum > row->desc->natts)
		return false;
	attr = TupleDescAttr(row->desc, attnum - 1);
	datum = heap_getattr(row->tuple, attnum, row->desc, isnull);
	if (*isnull)
		return true;
	switch (attr->atttypid)
	{
		case INT2OID:
			*value = DatumGetInt16(datum);
			return true;
		case INT4OID:
			*value = DatumGetInt32(datum);
			return true;
		case INT8OID:
			*value = DatumGetInt64(datum);
			return true;
		default:
			return false;
	}
}

/* What expression_values made of a row version's expressions. */
typedef enum ExpressionOutcome
{
	EXPRESSIONS_DONE,
	EXPRESSIONS_UNTRUSTED,		/* every shape becomes a candidate */
	EXPRESSIONS_TO_EXECUTOR		/* a native program left this row to the executor */
} ExpressionOutcome;

/*
 * A row version's indexed expressions: for each virtual column, each
 * expression known under its number, its result converted with its own
 * type's tag, for the core to key (sources: each result's index into
 * rel->expressions). Evaluated by their native programs on native (the row's
 * values), else by the executor on slot (the row, deformed). Untrusted when a
 * virtual column has no expression known here, an expression no longer fits
 * the table, reads a column the row lacks (unknown: unchanged TOAST the WAL
 * does not carry; key_only: the columns a key-only old row carries) or fails.
 * The results go in room when it has enough, else in memory of their own.
 */
static pg_attribute_always_inline ExpressionOutcome
expression_values(const RelationInfo *rel, TupleTableSlot *slot, ExprContext *econtext, NativeRow *native,
				  const Bitmapset *unknown, const Bitmapset *key_only, const sr_index_column *columns,
				  size_t column_count, const sr_expression_value **out, const int **sources_out, size_t *out_count,
				  ExpressionRoom *room)
{
	int			n = Max(rel->expression_count, 1);
	sr_expression_value *results;
	int		   *sources;
	size_t		count = 0;

	if (room != NULL && n <= EXPRESSION_ROOM)
	{
		results = room->results;
		sources = room->sources;
	}
	else
	{
		/* one allocation a row version: the results, then their sources */
		results = palloc((sizeof(sr_expression_value) + sizeof(int)) * n);
		sources = (int *) (results + n);
	}

	*out = results;
	*sources_out = sources;
	*out_count = 0;
	for (size_t c = 0; c < column_count; c++)
	{
		bool		any = false;

		if (!SHAPE_ATTNUM_IS_VIRTUAL(columns[c].attnum))
			continue;
		for (int e = 0; e < rel->expression_count; e++)
		{
			const IndexExpressionState *indexed = &rel->expressions[e];
			sr_expression_value *result = &results[count];

			if (indexed->attnum != columns[c].attnum)
				continue;
			any = true;
			/* (a native program fits, has a tag and reads no TOASTed column) */
			if ((native == NULL &&
				 (!indexed->fits || indexed->tag == SR_TAG_NONE || bms_overlap(indexed->columns, unknown))) ||
				(key_only != NULL && !bms_is_subset(indexed->columns, key_only)))
				return EXPRESSIONS_UNTRUSTED;
			if (native != NULL)
			{
				int64		value = 0;

				memset(result, 0, sizeof(sr_expression_value));
				switch (native_arith_eval(indexed->native, native->values, native->read_columns, native_read, native,
										  &value))
				{
					case NATIVE_VALUE:
						result->value.v.i = value;
						break;
					case NATIVE_NULL:
						result->value.is_null = 1;
						break;
					case NATIVE_EXECUTOR:
						return EXPRESSIONS_TO_EXECUTOR;
				}
			}
			else
			{
				int			attnum = -1;
				Datum		value;
				bool		isnull;
				char	   *message;

				while ((attnum = bms_next_member(indexed->columns, attnum)) >= 0)
				{
					Form_pg_attribute attr = TupleDescAttr(slot->tts_tupleDescriptor, attnum - 1);

					if (attr->attlen == -1 && !slot->tts_isnull[attnum - 1] &&
						VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(slot->tts_values[attnum - 1])))
						return EXPRESSIONS_UNTRUSTED;
				}
				if (shape_expression_eval(indexed->expression, slot, econtext, &value, &isnull,
										  &message) != PREDICATE_TRUE)
					return EXPRESSIONS_UNTRUSTED;
				shape_value_from_datum(indexed->type, value, isnull, &result->value);
			}
			result->attnum = columns[c].attnum;
			result->tag = indexed->tag;
			sources[count++] = e;
		}
		if (!any)
			return EXPRESSIONS_UNTRUSTED;
	}
	*out_count = count;
	return EXPRESSIONS_DONE;
}

/* expression_values by the executor, on slot: false when untrusted. */
bool
shape_expression_values(const RelationInfo *rel, TupleTableSlot *slot, const Bitmapset *unknown,
						const Bitmapset *key_only, ExprContext *econtext, const sr_index_column *columns,
						size_t column_count, const sr_expression_value **out, const int **sources_out,
						size_t *out_count, ExpressionRoom *room)
{
	return expression_values(rel, slot, econtext, NULL, unknown, key_only, columns, column_count, out,
							 sources_out, out_count, room) == EXPRESSIONS_DONE;
}

/*
 * expression_values by native programs, for a relation whose expressions all
 * have them (rel->expressions_native), from the row's values and tuple, with
 * no slot: *trusted is what shape_expression_values would return. False when
 * some expression is left to the executor on this row (it would raise an
 * error there): shape_expression_values decides, on the row's slot.
 */
bool
shape_native_expression_values(const RelationInfo *rel, HeapTuple tuple, const sr_value *values,
							   uint64 read_columns, const Bitmapset *key_only, const sr_index_column *columns,
							   size_t column_count, const sr_expression_value **out, const int **sources_out,
							   size_t *out_count, bool *trusted, sr_counters *counters, ExpressionRoom *room)
{
	NativeRow	row = {tuple, rel->desc, values, read_columns};
	ExpressionOutcome outcome = expression_values(rel, NULL, NULL, &row, NULL, key_only, columns, column_count,
												  out, sources_out, out_count, room);

	*trusted = outcome == EXPRESSIONS_DONE;
	if (*trusted)
		counters->native_expressions += *out_count;
	return outcome != EXPRESSIONS_TO_EXECUTOR;
}
