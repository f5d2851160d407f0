/*
 * record.c — writing routed records (DESIGN.md §4) and the per-relation output
 * information they need. JSON strings go through PostgreSQL's escape_json;
 * values through each type's own output function.
 */
#include "shape_router_pg.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "utils/fmgroids.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

static ValueKind
value_kind(Oid type)
{
	switch (getBaseType(type))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
			return VALUE_NUMBER;
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			return VALUE_MAYBE_NUMBER;
		case BOOLOID:
			return VALUE_BOOL;
		case JSONOID:
		case JSONBOID:
			return VALUE_JSON;
		default:
			return VALUE_STRING;
	}
}

char *
json_string(const char *text)
{
	StringInfoData buf;

	initStringInfo(&buf);
	escape_json(&buf, text);
	return buf.data;
}

/* The attnums of a RelationGetIndexAttrBitmap() set (its members are offset). */
Bitmapset *
attnums_from_index_bitmap(Bitmapset *offset_attnums)
{
	Bitmapset  *result = NULL;
	int			member = -1;

	while ((member = bms_next_member(offset_attnums, member)) >= 0)
		result = bms_add_member(result, member + FirstLowInvalidHeapAttributeNumber);
	return result;
}

/* A catalog row by OID as the given snapshot sees it (no cache: the snapshot may be an older one). */
static char *
name_by_oid(Oid catalog_relid, Oid index_relid, AttrNumber oid_attnum, Oid oid, Snapshot snapshot,
			AttrNumber name_attnum, Oid *namespace_out, AttrNumber namespace_attnum)
{
	Relation	catalog = table_open(catalog_relid, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *name = NULL;

	ScanKeyInit(&key, oid_attnum, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(oid));
	scan = systable_beginscan(catalog, index_relid, true, snapshot, 1, &key);
	if (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;

		name = pstrdup(NameStr(*DatumGetName(heap_getattr(tuple, name_attnum, RelationGetDescr(catalog), &isnull))));
		if (namespace_out != NULL)
			*namespace_out = DatumGetObjectId(heap_getattr(tuple, namespace_attnum,
														   RelationGetDescr(catalog), &isnull));
	}
	systable_endscan(scan);
	table_close(catalog, AccessShareLock);
	return name;
}

/*
 * The schema-qualified name of a relation, as JSON and as text; false when it
 * is gone. When the catalogs no longer have it at this point of the stream
 * (dropped by the transaction being decoded), snapshot, if given, is asked.
 */
bool
relation_qualified_names(Oid relid, Snapshot snapshot, MemoryContext context, char **json, char **text)
{
	char	   *name = get_rel_name(relid);
	char	   *schema = name != NULL ? get_namespace_name(get_rel_namespace(relid)) : NULL;
	MemoryContext old;

	if ((name == NULL || schema == NULL) && snapshot != NULL)
	{
		Oid			namespace = InvalidOid;

		name = name_by_oid(RelationRelationId, ClassOidIndexId, Anum_pg_class_oid, relid, snapshot,
						   Anum_pg_class_relname, &namespace, Anum_pg_class_relnamespace);
		schema = name == NULL ? NULL
			: name_by_oid(NamespaceRelationId, NamespaceOidIndexId, Anum_pg_namespace_oid, namespace,
						  snapshot, Anum_pg_namespace_nspname, NULL, 0);
	}
	if (name == NULL || schema == NULL)
		return false;
	old = MemoryContextSwitchTo(context);
	*text = quote_qualified_identifier(schema, name);
	*json = json_string(*text);
	MemoryContextSwitchTo(old);
	return true;
}

/*
 * What writing a relation's rows needs, in the current memory context: each
 * column's output function, kind and labels (info->desc is set), the table's
 * names and its primary key.
 */
void
record_relation_build(RelationInfo *info, Relation rel)
{
	TupleDesc	desc = info->desc;
	char	   *qualified;

	info->columns = palloc0(sizeof(ColumnOutput) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		ColumnOutput *column = &info->columns[i];
		bool		varlena;

		if (attr->attisdropped)
			continue;
		getTypeOutputInfo(attr->atttypid, &column->output_function, &varlena);
		column->kind = value_kind(attr->atttypid);
		column->base_type = getBaseType(attr->atttypid);
		column->json_key = json_string(NameStr(attr->attname));
		column->json_key_len = strlen(column->json_key);
		column->text_label = psprintf("%s[%s]", quote_identifier(NameStr(attr->attname)),
									  format_type_be(attr->atttypid));
	}
	qualified = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										   RelationGetRelationName(rel));
	info->table_text = qualified;
	info->table_json = json_string(qualified);
	info->table_json_len = strlen(info->table_json);
	info->primary_key = attnums_from_index_bitmap(RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY));
}

/*
 * Raw appends for the JSON hot path: the caller has made room with
 * reserve (enlargeStringInfo, without the call when there is room already), and
 * ends its run with finish_raw (StringInfo keeps a NUL after the data).
 */
static inline void
reserve(StringInfo out, int needed)
{
	if (needed >= out->maxlen - out->len)
		enlargeStringInfo(out, needed);
}

static inline void
put_char(StringInfo out, char c)
{
	out->data[out->len++] = c;
}

static inline void
put_bytes(StringInfo out, const char *bytes, int len)
{
	memcpy(out->data + out->len, bytes, len);
	out->len += len;
}

static inline void
finish_raw(StringInfo out)
{
	out->data[out->len] = '\0';
}

static bool
value_is_special_float(const char *text)
{
	/* NaN, Infinity, -Infinity: valid float/numeric output, not JSON numbers */
	return text[0] == 'N' || text[0] == 'I' || (text[0] == '-' && text[1] == 'I');
}

static inline bool
json_byte_needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

/*
 * How many bytes from the start need no JSON escape. Eight bytes at a time:
 * a byte's high bit is set in "special" when it is below 0x20, '"' or '\\'.
 * A borrow can only mark bytes above a truly special one, so the lowest mark
 * is exact.
 */
static inline int
json_plain_run(const char *bytes, int len)
{
	int			i = 0;

#ifndef WORDS_BIGENDIAN
	const uint64 ones = UINT64CONST(0x0101010101010101);
	const uint64 highs = UINT64CONST(0x8080808080808080);

	for (; i + 8 <= len; i += 8)
	{
		uint64		word;
		uint64		quote;
		uint64		backslash;
		uint64		special;

		memcpy(&word, bytes + i, 8);
		quote = word ^ (ones * '"');
		backslash = word ^ (ones * '\\');
		special = (((word - ones * 0x20) & ~word) |
				   ((quote - ones) & ~quote) |
				   ((backslash - ones) & ~backslash)) & highs;
		if (special != 0)
			return i + pg_rightmost_one_pos64(special) / 8;
	}
#endif
	while (i < len && !json_byte_needs_escape((unsigned char) bytes[i]))
		i++;
	return i;
}

/*
 * A JSON string from bytes that need not end in NUL, escaped exactly as
 * PostgreSQL's escape_json does.
 */
static void
append_json_string_bytes(StringInfo out, const char *bytes, int len)
{
	int			i = 0;

	reserve(out, len + 2);
	put_char(out, '"');
	while (i < len)
	{
		/* runs of plain bytes are copied at once */
		int			plain = json_plain_run(bytes + i, len - i);

		put_bytes(out, bytes + i, plain);
		i += plain;
		if (i == len)
			break;
		finish_raw(out);
		switch (bytes[i])
		{
			case '\b':
				appendStringInfoString(out, "\\b");
				break;
			case '\f':
				appendStringInfoString(out, "\\f");
				break;
			case '\n':
				appendStringInfoString(out, "\\n");
				break;
			case '\r':
				appendStringInfoString(out, "\\r");
				break;
			case '\t':
				appendStringInfoString(out, "\\t");
				break;
			case '"':
				appendStringInfoString(out, "\\\"");
				break;
			case '\\':
				appendStringInfoString(out, "\\\\");
				break;
			default:
				appendStringInfo(out, "\\u%04x", (unsigned char) bytes[i]);
				break;
		}
		i++;
		reserve(out, len - i + 1);	/* the rest, and the closing quote */
	}
	put_char(out, '"');
	finish_raw(out);
}

/*
 * The text of the last timestamptz written, with what its text depends on: the
 * rows of one transaction often share one (a column defaulting to now()), and
 * its formatting costs more than the rest of a row.
 */
static struct
{
	bool		valid;
	TimestampTz value;
	int			date_style;
	int			date_order;
	pg_tz	   *zone;
	int			length;
	char		text[MAXDATELEN + 1];
}			last_timestamptz;

/* timestamptz_out's text of ts (session DateStyle and TimeZone), memoized: rows of one change often share one. */
static const char *
timestamptz_text(TimestampTz ts, int *len)
{
	if (!last_timestamptz.valid || last_timestamptz.value != ts ||
		last_timestamptz.date_style != DateStyle || last_timestamptz.date_order != DateOrder ||
		last_timestamptz.zone != session_timezone)
	{
		/* timestamptz_out's steps, into the memo (session DateStyle and TimeZone) */
		struct pg_tm tm;
		fsec_t		fsec;
		int			tz;
		const char *tzn;

		last_timestamptz.valid = false;
		if (TIMESTAMP_NOT_FINITE(ts))
			EncodeSpecialTimestamp(ts, last_timestamptz.text);
		else if (timestamp2tm(ts, &tz, &tm, &fsec, &tzn, NULL) == 0)
			EncodeDateTime(&tm, fsec, true, tz, tzn, DateStyle, last_timestamptz.text);
		else
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("timestamp out of range")));
		last_timestamptz.value = ts;
		last_timestamptz.date_style = DateStyle;
		last_timestamptz.date_order = DateOrder;
		last_timestamptz.zone = session_timezone;
		last_timestamptz.length = strlen(last_timestamptz.text);
		last_timestamptz.valid = true;
	}
	*len = last_timestamptz.length;
	return last_timestamptz.text;
}

/*
 * A text, varchar or timestamptz value written by append (a JSON string or a
 * SQL literal) from the text its output function would give, without the
 * call. False for the other types.
 */
static bool
append_direct_string(StringInfo out, const ColumnOutput *column, Datum value,
					 void (*append) (StringInfo out, const char *bytes, int len))
{
	switch (column->base_type)
	{
		case TEXTOID:
		case VARCHAROID:
			{
				text	   *t = DatumGetTextPP(value);

				append(out, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				if ((Pointer) t != DatumGetPointer(value))
					pfree(t);
				return true;
			}
		case TIMESTAMPTZOID:
			{
				int			len;
				const char *text = timestamptz_text(DatumGetTimestampTz(value), &len);

				append(out, text, len);
				return true;
			}
		default:
			return false;
	}
}

/*
 * The most common column types are written directly, without a call through
 * the type's output function and the palloc'd string it returns; the output is
 * the same (the values test compares both paths' types against PostgreSQL).
 */
static bool
append_json_value_direct(StringInfo out, const ColumnOutput *column, Datum value)
{
	switch (column->base_type)
	{
		case INT2OID:
			reserve(out, MAXINT8LEN);
			out->len += pg_itoa(DatumGetInt16(value), out->data + out->len);
			return true;
		case INT4OID:
			reserve(out, MAXINT8LEN);
			out->len += pg_ltoa(DatumGetInt32(value), out->data + out->len);
			return true;
		case INT8OID:
			reserve(out, MAXINT8LEN);
			out->len += pg_lltoa(DatumGetInt64(value), out->data + out->len);
			return true;
		case BOOLOID:
			appendStringInfoString(out, DatumGetBool(value) ? "true" : "false");
			return true;
		default:
			return append_direct_string(out, column, value, append_json_string_bytes);
	}
}

static void
append_json_value(StringInfo out, const ColumnOutput *column, Datum value)
{
	char	   *text;

	if (append_json_value_direct(out, column, value))
		return;
	text = OidOutputFunctionCall(column->output_function, value);

	switch (column->kind)
	{
		case VALUE_NUMBER:
			appendStringInfoString(out, text);
			break;
		case VALUE_MAYBE_NUMBER:
			if (value_is_special_float(text))
				escape_json(out, text);
			else
				appendStringInfoString(out, text);
			break;
		case VALUE_BOOL:
			appendStringInfoString(out, text[0] == 't' ? "true" : "false");
			break;
		case VALUE_JSON:
			appendStringInfoString(out, text);
			break;
		case VALUE_STRING:
			escape_json(out, text);
			break;
	}
	pfree(text);
}

/*
 * A SQL string literal of bytes[0..len): 'text', or E'...' with escapes when
 * the value holds a backslash or a control character, so that no value can
 * break or forge a line. Runs of plain bytes are copied at once.
 */
static void
append_text_literal_bytes(StringInfo out, const char *bytes, int len)
{
	bool		escape = false;
	int			run = 0;

	for (int i = 0; i < len && !escape; i++)
		escape = bytes[i] == '\\' || (unsigned char) bytes[i] < 0x20;
	if (escape)
		appendStringInfoChar(out, 'E');
	appendStringInfoChar(out, '\'');
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) bytes[i];

		if (c != '\'' && c != '\\' && c >= 0x20)
			continue;
		appendBinaryStringInfo(out, bytes + run, i - run);
		run = i + 1;
		if (c == '\'')
			appendStringInfoString(out, "''");
		else if (c == '\\')
			appendStringInfoString(out, "\\\\");
		else if (c == '\n')
			appendStringInfoString(out, "\\n");
		else if (c == '\r')
			appendStringInfoString(out, "\\r");
		else if (c == '\t')
			appendStringInfoString(out, "\\t");
		else
			appendStringInfo(out, "\\x%02x", c);
	}
	appendBinaryStringInfo(out, bytes + run, len - run);
	appendStringInfoChar(out, '\'');
}

static void
append_text_literal(StringInfo out, const char *text)
{
	append_text_literal_bytes(out, text, (int) strlen(text));
}

/* As append_json_value_direct: the common types without their output function. */
static bool
append_text_value_direct(StringInfo out, const ColumnOutput *column, Datum value)
{
	switch (column->base_type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case BOOLOID:
			return append_json_value_direct(out, column, value);	/* the same text */
		default:
			return append_direct_string(out, column, value, append_text_literal_bytes);
	}
}

static void
append_text_value(StringInfo out, const ColumnOutput *column, Datum value)
{
	char	   *text;

	if (append_text_value_direct(out, column, value))
		return;
	text = OidOutputFunctionCall(column->output_function, value);
	switch (column->kind)
	{
		case VALUE_NUMBER:
		case VALUE_MAYBE_NUMBER:
			appendStringInfoString(out, text);
			break;
		case VALUE_BOOL:
			appendStringInfoString(out, text[0] == 't' ? "true" : "false");
			break;
		case VALUE_JSON:
		case VALUE_STRING:
			append_text_literal(out, text);
			break;
	}
	pfree(text);
}

/* Is attnum part of what this record shows of this row? */
static bool
column_shown(const RelationInfo *rel, const Bitmapset *projection, const Bitmapset *key_only, int attnum)
{
	if (TupleDescAttr(rel->desc, attnum - 1)->attisdropped)
		return false;
	if (key_only != NULL && !bms_is_member(attnum, key_only))
		return false;
	return projection == NULL || bms_is_member(attnum, projection) ||
		bms_is_member(attnum, rel->primary_key);
}

/* A row as a JSON object of the columns this record shows. */
static void
append_row_json(StringInfo out, const RelationInfo *rel, const Bitmapset *projection,
				TupleTableSlot *slot, const Bitmapset *key_only, const Bitmapset *unchanged_toast)
{
	/* the common record shows every column: no per-column set lookups */
	bool		every_column = projection == NULL && key_only == NULL && unchanged_toast == NULL;
	char		separator = '{';

	slot_getallattrs(slot);
	for (int attnum = 1; attnum <= rel->desc->natts; attnum++)
	{
		const ColumnOutput *column = &rel->columns[attnum - 1];

		if (column->json_key == NULL)
			continue;			/* dropped */
		if (!every_column &&
			(!column_shown(rel, projection, key_only, attnum) ||
			 bms_is_member(attnum, unchanged_toast)))
			continue;			/* not shown, or listed under "unchanged_toast" instead */
		reserve(out, column->json_key_len + 6);
		put_char(out, separator);
		separator = ',';
		put_bytes(out, column->json_key, column->json_key_len);
		put_char(out, ':');
		if (slot->tts_isnull[attnum - 1])
		{
			put_bytes(out, "null", 4);
			finish_raw(out);
		}
		else
		{
			finish_raw(out);
			append_json_value(out, column, slot->tts_values[attnum - 1]);
		}
	}
	reserve(out, 2);
	if (separator == '{')
		put_char(out, '{');
	put_char(out, '}');
	finish_raw(out);
}

/* A row as name[type]:value pairs for format=text. */
static void
append_row_text(StringInfo out, const RelationInfo *rel, const Bitmapset *projection,
				TupleTableSlot *slot, const Bitmapset *key_only, const Bitmapset *unchanged_toast)
{
	bool		first = true;

	slot_getallattrs(slot);
	for (int attnum = 1; attnum <= rel->desc->natts; attnum++)
	{
		const ColumnOutput *column = &rel->columns[attnum - 1];

		if (!column_shown(rel, projection, key_only, attnum))
			continue;
		if (!first)
			appendStringInfoChar(out, ' ');
		appendStringInfoString(out, column->text_label);
		appendStringInfoChar(out, ':');
		if (bms_is_member(attnum, unchanged_toast))
			appendStringInfoString(out, "unchanged-toast-datum");
		else if (slot->tts_isnull[attnum - 1])
			appendStringInfoString(out, "null");
		else
			append_text_value(out, column, slot->tts_values[attnum - 1]);
		first = false;
	}
}

static void
append_row(StringInfo out, OutputFormat format, const RelationInfo *rel, const Bitmapset *projection,
		   TupleTableSlot *slot, const Bitmapset *key_only, const Bitmapset *unchanged_toast)
{
	if (format == OUTPUT_FORMAT_JSON)
		append_row_json(out, rel, projection, slot, key_only, unchanged_toast);
	else
		append_row_text(out, rel, projection, slot, key_only, unchanged_toast);
}

static const char *
op_json(RecordOp op)
{
	switch (op)
	{
		case RECORD_INSERT:
			return "\"op\":\"insert\"";
		case RECORD_UPDATE:
			return "\"op\":\"update\"";
		case RECORD_DELETE:
			return "\"op\":\"delete\"";
		case RECORD_MOVE_IN:
			return "\"op\":\"insert\",\"move\":\"in\"";
		case RECORD_MOVE_OUT:
			return "\"op\":\"delete\",\"move\":\"out\"";
		case RECORD_TRUNCATE:
			return "\"op\":\"truncate\"";
		case RECORD_ERROR:
			return "\"op\":\"error\"";
	}
	return NULL;
}

static const char *
op_text(RecordOp op)
{
	switch (op)
	{
		case RECORD_INSERT:
			return "INSERT";
		case RECORD_UPDATE:
			return "UPDATE";
		case RECORD_DELETE:
			return "DELETE";
		case RECORD_MOVE_IN:
			return "INSERT (move in)";
		case RECORD_MOVE_OUT:
			return "DELETE (move out)";
		case RECORD_TRUNCATE:
			return "TRUNCATE";
		case RECORD_ERROR:
			return "ERROR";
	}
	return NULL;
}

static void
append_unchanged_toast_json(StringInfo out, const RelationInfo *rel, const Bitmapset *projection,
							const Bitmapset *unchanged_toast)
{
	bool		first = true;
	int			attnum = -1;

	while ((attnum = bms_next_member(unchanged_toast, attnum)) >= 0)
	{
		if (!column_shown(rel, projection, false, attnum))
			continue;
		appendStringInfoString(out, first ? ",\"unchanged_toast\":[" : ",");
		appendStringInfoString(out, rel->columns[attnum - 1].json_key);
		first = false;
	}
	if (!first)
		appendStringInfoChar(out, ']');
}

void
record_append_row_change(StringInfo out, OutputFormat format, int64 shape_id, RecordOp op,
						 const RelationInfo *rel, const Bitmapset *projection,
						 const RecordRows *rows, const char *lsn, const char *message)
{
	bool		show_new = rows->new_row != NULL &&
		(op == RECORD_INSERT || op == RECORD_UPDATE || op == RECORD_MOVE_IN);
	bool		show_old = rows->old_row != NULL &&
		(op == RECORD_UPDATE || op == RECORD_DELETE || op == RECORD_MOVE_OUT);
	/* A key-only old row shows its key columns; an empty key still means key-only. */
	const Bitmapset *old_key_only = !rows->old_key_only ? NULL
		: rows->old_key_columns != NULL ? rows->old_key_columns : bms_make_singleton(0);

	if (format == OUTPUT_FORMAT_JSON)
	{
		const char *op_text = op_json(op);
		int			op_len = strlen(op_text);

		reserve(out, 16 + MAXINT8LEN + op_len + rel->table_json_len);
		put_bytes(out, "{\"shape\":", 9);
		out->len += pg_lltoa(shape_id, out->data + out->len);
		put_char(out, ',');
		put_bytes(out, op_text, op_len);
		finish_raw(out);
		if (lsn != NULL)
			appendStringInfo(out, ",\"lsn\":\"%s\"", lsn);
		appendBinaryStringInfo(out, ",\"table\":", 9);
		appendBinaryStringInfo(out, rel->table_json, rel->table_json_len);
		if (rows->partition != NULL)
		{
			appendStringInfoString(out, ",\"partition\":");
			appendStringInfoString(out, rows->partition->table_json);
		}
		if (show_new)
		{
			appendStringInfoString(out, ",\"new\":");
			append_row(out, format, rel, projection, rows->new_row, NULL, rows->unchanged_toast);
			append_unchanged_toast_json(out, rel, projection, rows->unchanged_toast);
		}
		if (show_old)
		{
			appendStringInfoString(out, ",\"old\":");
			append_row(out, format, rel, projection, rows->old_row, old_key_only, NULL);
		}
		if (message != NULL)
		{
			appendStringInfoString(out, ",\"message\":");
			escape_json(out, message);
		}
		appendStringInfoChar(out, '}');
		return;
	}

	appendStringInfo(out, "shape " INT64_FORMAT ": %s: %s", shape_id, rel->table_text, op_text(op));
	if (rows->partition != NULL)
		appendStringInfo(out, ": partition %s", rows->partition->table_text);
	if (message != NULL)
		appendStringInfo(out, ": %s", message);
	if (show_old && show_new)
	{
		appendStringInfoString(out, ": old: ");
		append_row(out, format, rel, projection, rows->old_row, old_key_only, NULL);
		appendStringInfoString(out, " new: ");
		append_row(out, format, rel, projection, rows->new_row, NULL, rows->unchanged_toast);
	}
	else if (show_new)
	{
		appendStringInfoString(out, ": ");
		append_row(out, format, rel, projection, rows->new_row, NULL, rows->unchanged_toast);
	}
	else if (show_old)
	{
		appendStringInfoString(out, ": ");
		append_row(out, format, rel, projection, rows->old_row, old_key_only, NULL);
	}
	else if (op == RECORD_DELETE)
		appendStringInfoString(out, ": (no old row)");
	if (lsn != NULL)
		appendStringInfo(out, " (lsn %s)", lsn);
}

/* The shape was dropped (drop_shape() or DROP TABLE): nothing more comes for it. */
void
record_append_drop(StringInfo out, OutputFormat format, int64 shape_id,
				   const char *table_json, const char *table_text, const char *lsn)
{
	if (format == OUTPUT_FORMAT_JSON)
	{
		appendStringInfo(out, "{\"shape\":" INT64_FORMAT ",\"op\":\"drop\"", shape_id);
		if (lsn != NULL)
			appendStringInfo(out, ",\"lsn\":\"%s\"", lsn);
		appendStringInfo(out, ",\"table\":%s}", table_json != NULL ? table_json : "null");
		return;
	}
	appendStringInfo(out, "shape " INT64_FORMAT ": %s: DROP", shape_id,
					 table_text != NULL ? table_text : "(unknown table)");
	if (lsn != NULL)
		appendStringInfo(out, " (lsn %s)", lsn);
}

void
record_append_begin(StringInfo out, OutputFormat format, const char *xid, const char *lsn)
{
	if (format == OUTPUT_FORMAT_JSON)
	{
		appendStringInfoString(out, "{\"op\":\"begin\"");
		if (xid != NULL)
			appendStringInfo(out, ",\"xid\":%s", xid);
		if (lsn != NULL)
			appendStringInfo(out, ",\"lsn\":\"%s\"", lsn);
		appendStringInfoChar(out, '}');
		return;
	}
	appendStringInfoString(out, "BEGIN");
	if (xid != NULL)
		appendStringInfo(out, " %s", xid);
	if (lsn != NULL)
		appendStringInfo(out, " (lsn %s)", lsn);
}

void
record_append_commit(StringInfo out, OutputFormat format, const char *xid, const char *lsn,
					 const char *timestamp)
{
	if (format == OUTPUT_FORMAT_JSON)
	{
		appendStringInfoString(out, "{\"op\":\"commit\"");
		if (xid != NULL)
			appendStringInfo(out, ",\"xid\":%s", xid);
		if (lsn != NULL)
			appendStringInfo(out, ",\"lsn\":\"%s\"", lsn);
		if (timestamp != NULL)
		{
			appendStringInfoString(out, ",\"timestamp\":");
			escape_json(out, timestamp);
		}
		appendStringInfoChar(out, '}');
		return;
	}
	appendStringInfoString(out, "COMMIT");
	if (xid != NULL)
		appendStringInfo(out, " %s", xid);
	if (timestamp != NULL)
		appendStringInfo(out, " (at %s)", timestamp);
	if (lsn != NULL)
		appendStringInfo(out, " (lsn %s)", lsn);
}

/* Appends a record to a batch of them: newline-separated (batch-bytes). */
void
record_batch_append(StringInfo batch, const char *record, int len)
{
	if (batch->len > 0)
		appendStringInfoChar(batch, '\n');
	appendBinaryStringInfoNT(batch, record, len);
}
