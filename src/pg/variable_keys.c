/*
 * variable_keys.c — the index keys of a row whose number depends on its values:
 * an array column's element keys, a text column's substring gram keys (raw,
 * or lowered as ILIKE lowers them), and the keys of indexed expressions
 * (virtual columns). The fixed keys (one a column) come from sr_row_keys;
 * these are appended after them.
 */
#include "shape_router_pg.h"

#include "access/htup_details.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"

#include "shape_router/program.h"

/* Past this many gram keys for one value, the change is routed to every shape
 * (untrusted) instead: keeps a huge text from asking for a huge allocation. */
#define GRAM_KEYS_MAX (16 * 1024 * 1024)

bool
shape_has_variable_keys(const sr_index_column *columns, size_t column_count)
{
	for (size_t c = 0; c < column_count; c++)
		if ((columns[c].tag & SR_TAG_ELEMENT_FLAG) || columns[c].substring_grams != 0 ||
			SHAPE_ATTNUM_IS_VIRTUAL(columns[c].attnum))
			return true;
	return false;
}

bool
shape_has_virtual_columns(const sr_index_column *columns, size_t column_count)
{
	for (size_t c = 0; c < column_count; c++)
		if (SHAPE_ATTNUM_IS_VIRTUAL(columns[c].attnum))
			return true;
	return false;
}

/* Room for n more keys, and after them for another row's fixed_keys keys (the old
 * row's sr_row_keys writes up to fixed_keys = sr_row_key_capacity without asking). */
static void
reserve_keys(size_t n, size_t fixed_keys, uint64 **keys, uint16 **key_attnums, size_t key_count, size_t *room)
{
	size_t		needed = key_count + n + fixed_keys;
	size_t		grown;
	uint64	   *k;
	uint16	   *a;

	if (needed <= *room)
		return;
	grown = Max(*room * 2, needed);
	k = palloc(sizeof(uint64) * grown);
	a = palloc(sizeof(uint16) * grown);
	memcpy(k, *keys, sizeof(uint64) * key_count);
	memcpy(a, *key_attnums, sizeof(uint16) * key_count);
	*keys = k;
	*key_attnums = a;
	*room = grown;
}

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

/* The bytes of a text value as lower() under collation makes them (as ILIKE
 * lowers the value it matches). */
static const char *
lowered_bytes(Oid collation, text *value, int *len)
{
	const char *s = VARDATA_ANY(value);
	int			n = VARSIZE_ANY_EXHDR(value);
	bool		ascii = true;
	text	   *lowered;

	for (int i = 0; i < n && ascii; i++)
		ascii = !IS_HIGHBIT_SET(s[i]);
	if (ascii && ascii_lowering_is_plain(collation))
	{
		char	   *out = palloc(n + 1);

		for (int i = 0; i < n; i++)
			out[i] = pg_ascii_tolower(s[i]);
		*len = n;
		return out;
	}
	lowered = DatumGetTextPP(DirectFunctionCall1Coll(lower, collation, PointerGetDatum(value)));
	*len = VARSIZE_ANY_EXHDR(lowered);
	return VARDATA_ANY(lowered);
}

/* Appends the gram keys of bytes[0..len) for the q-byte lengths in lengths. */
static bool
append_gram_keys(Oid relid, const sr_index_column *column, int lower, unsigned lengths, const char *bytes,
				 int len, size_t fixed_keys, uint64 **keys, uint16 **key_attnums, size_t *key_count, size_t *room)
{
	size_t		n = sr_substring_keys(relid, column->attnum, lower, lengths, (const uint8 *) bytes, len,
									  NULL, NULL, 0);

	if (n > GRAM_KEYS_MAX)
		return false;
	reserve_keys(n, fixed_keys, keys, key_attnums, *key_count, room);
	sr_substring_keys(relid, column->attnum, lower, lengths, (const uint8 *) bytes, len,
					  *keys + *key_count, *key_attnums + *key_count, n);
	*key_count += n;
	return true;
}

/*
 * Appends to *keys the keys of a tuple's array columns (tag with
 * SR_TAG_ELEMENT_FLAG: one per non-NULL element) and of its text columns with
 * substring atoms (their grams), growing *keys and *key_attnums (*room
 * entries; palloc'd anew, never freed in place: they may be a caller's local
 * arrays), always with room left for fixed_keys more (sr_row_key_capacity of
 * the columns, which the caller computes once a change). A NULL value has none.
 * keyed (an UPDATE's new row, when tuple is its old one): a row whose keys are
 * already made; a column whose value is the same there adds none again (none
 * of these keys is exact: each candidate's program reads both rows). False when a value is an unchanged TOASTed
 * one the WAL does not carry, or too long to key (tuple_keys has checked the
 * types and a key-only row's columns).
 */
/* A row's attributes, deformed in one pass at the first one asked for (heap_getattr
 * walks the tuple from its start for each attribute behind a variable-width one). */
#define DEFORMED_ROW_MAX 64

typedef struct DeformedRow
{
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		deformed;
	Datum		values[DEFORMED_ROW_MAX];
	bool		nulls[DEFORMED_ROW_MAX];
} DeformedRow;

static Datum
row_attribute(DeformedRow *row, int attnum, bool *isnull)
{
	if (row->desc->natts > DEFORMED_ROW_MAX)
		return heap_getattr(row->tuple, attnum, row->desc, isnull);
	if (!row->deformed)
	{
		heap_deform_tuple(row->tuple, row->desc, row->values, row->nulls);
		row->deformed = true;
	}
	*isnull = row->nulls[attnum - 1];
	return row->values[attnum - 1];
}

bool
shape_variable_keys(HeapTuple tuple, HeapTuple keyed, Oid relid, TupleDesc desc, const sr_index_column *columns,
					size_t column_count, uint64 **keys, uint16 **key_attnums, size_t *key_count, size_t *room,
					size_t fixed_keys)
{
	DeformedRow row;
	DeformedRow keyed_row;

	row.tuple = tuple;
	row.desc = desc;
	row.deformed = false;
	keyed_row.tuple = keyed;
	keyed_row.desc = desc;
	keyed_row.deformed = false;
	for (size_t c = 0; c < column_count; c++)
	{
		const sr_index_column *column = &columns[c];
		bool		isnull;
		Datum		datum;

		if ((!(column->tag & SR_TAG_ELEMENT_FLAG) && column->substring_grams == 0) ||
			SHAPE_ATTNUM_IS_VIRTUAL(column->attnum))
			continue;
		datum = row_attribute(&row, column->attnum, &isnull);
		if (isnull)
			continue;
		if (VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(datum)))
			return false;
		if (keyed != NULL)
		{
			/* the same value in the row already keyed: the same keys */
			bool		keyed_isnull;
			Datum		keyed_datum = row_attribute(&keyed_row, column->attnum, &keyed_isnull);

			if (!keyed_isnull && datumIsEqual(datum, keyed_datum, false, -1))
				continue;
		}
		if (column->tag & SR_TAG_ELEMENT_FLAG)
		{
			uint8		tag = column->tag & ~SR_TAG_ELEMENT_FLAG;
			bool		has_null;
			int			n;
			sr_value   *elements = shape_array_values(datum, &n, &has_null);

			reserve_keys(n, fixed_keys, keys, key_attnums, *key_count, room);
			for (int i = 0; i < n; i++)
			{
				(*key_attnums)[*key_count] = column->attnum;
				(*keys)[(*key_count)++] = sr_index_key(relid, column->attnum, tag, &elements[i]);
			}
			continue;
		}
		{
			text	   *value = DatumGetTextPP(datum);

			if ((column->substring_grams & 0xff) != 0 &&
				!append_gram_keys(relid, column, 0, column->substring_grams & 0xff, VARDATA_ANY(value),
								  VARSIZE_ANY_EXHDR(value), fixed_keys, keys, key_attnums, key_count, room))
				return false;
			if ((column->substring_grams >> 8) != 0)
			{
				int			len;
				const char *lowered = lowered_bytes(TupleDescAttr(desc, column->attnum - 1)->attcollation,
													value, &len);

				if (!append_gram_keys(relid, column, 1, column->substring_grams >> 8, lowered, len, fixed_keys,
									  keys, key_attnums, key_count, room))
					return false;
			}
		}
	}
	return true;
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

/*
 * Appends the keys of a row version's indexed expressions: for each virtual
 * column, each expression known under its number evaluated on slot (the row,
 * deformed), keyed with its own type's tag (where the column has equality or
 * complement atoms), and, where it has range atoms, its order key to probes
 * (one a virtual column and expression: the caller's room); a NULL result has
 * only a NULL probe, where the column has NULL atoms. False
 * (untrusted: every shape becomes a candidate, and the programs say what
 * failed) when a virtual column has no expression known here, an expression
 * no longer fits the table, reads a column the row lacks (unknown: unchanged
 * TOAST the WAL does not carry; key_only: the columns a key-only old row
 * carries) or fails.
 */
bool
shape_expression_keys(const RelationInfo *rel, TupleTableSlot *slot, const Bitmapset *unknown,
					  const Bitmapset *key_only, ExprContext *econtext, const sr_index_column *columns,
					  size_t column_count, uint64 **keys, uint16 **key_attnums, size_t *key_count, size_t *room,
					  size_t fixed_keys, sr_range_probe *probes, size_t *probe_count)
{
	for (size_t c = 0; c < column_count; c++)
	{
		bool		any = false;

		if (!SHAPE_ATTNUM_IS_VIRTUAL(columns[c].attnum))
			continue;
		for (int e = 0; e < rel->expression_count; e++)
		{
			const IndexExpressionState *indexed = &rel->expressions[e];
			int			attnum = -1;
			Datum		value;
			bool		isnull;
			char	   *message;
			sr_value	item;

			if (indexed->attnum != columns[c].attnum)
				continue;
			any = true;
			if (!indexed->fits || indexed->tag == SR_TAG_NONE || bms_overlap(indexed->columns, unknown) ||
				(key_only != NULL && !bms_is_subset(indexed->columns, key_only)))
				return false;
			while ((attnum = bms_next_member(indexed->columns, attnum)) >= 0)
			{
				Form_pg_attribute attr = TupleDescAttr(slot->tts_tupleDescriptor, attnum - 1);

				if (attr->attlen == -1 && !slot->tts_isnull[attnum - 1] &&
					VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(slot->tts_values[attnum - 1])))
					return false;
			}
			if (shape_expression_eval(indexed->expression, slot, econtext, &value, &isnull,
									  &message) != PREDICATE_TRUE)
				return false;
			if (isnull)
			{
				/* only NULL atoms hold for a NULL */
				if (columns[c].null_shapes > 0)
				{
					probes[*probe_count].key = 0;
					probes[*probe_count].attnum = columns[c].attnum;
					probes[(*probe_count)++].is_null = 1;
				}
				continue;
			}
			shape_value_from_datum(indexed->type, value, false, &item);
			if (columns[c].range_shapes > 0)
			{
				probes[*probe_count].key = sr_order_key(indexed->tag, &item);
				probes[*probe_count].attnum = columns[c].attnum;
				probes[(*probe_count)++].is_null = 0;
			}
			if (columns[c].shapes == 0 && columns[c].complement_shapes == 0)
				continue;
			reserve_keys(1, fixed_keys, keys, key_attnums, *key_count, room);
			(*key_attnums)[*key_count] = columns[c].attnum;
			(*keys)[(*key_count)++] = sr_index_key(rel->relid, columns[c].attnum, indexed->tag, &item);
		}
		if (!any)
			return false;
	}
	return true;
}
