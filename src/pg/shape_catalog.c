/*
 * shape_catalog.c — reading rows of shape_router.shape_catalog, shared by the
 * SQL functions (normal snapshot) and the plugin (historic snapshot).
 */
#include "shape_router_pg.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "utils/fmgroids.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "storage/lmgr.h"
#include "utils/snapmgr.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "miscadmin.h"

/*
 * A table of the installed extension's schema, by name, or InvalidOid. A table
 * that merely has the same name (anyone with CREATE can make one when the
 * extension is absent) is never trusted: its node trees would be executed by
 * the decoding process.
 */
static Oid
extension_table_relid(const char *name)
{
	Oid			extension = get_extension_oid(SHAPE_ROUTER_EXTENSION, true);
	Oid			namespace_oid = OidIsValid(extension) ? get_namespace_oid(SHAPE_ROUTER_SCHEMA, true) : InvalidOid;
	Oid			relid = OidIsValid(namespace_oid) ? get_relname_relid(name, namespace_oid) : InvalidOid;

	if (OidIsValid(relid) && getExtensionOfObject(RelationRelationId, relid) != extension)
		relid = InvalidOid;
	return relid;
}

/* The catalog table of the installed extension. */
Oid
shape_catalog_relid(bool missing_ok)
{
	Oid			relid = extension_table_relid(SHAPE_CATALOG_NAME);

	if (!OidIsValid(relid) && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("shape_router catalog not found"),
				 errhint("Run CREATE EXTENSION shape_router in this database.")));
	return relid;
}

/* shape_router.index_expressions of the installed extension, or InvalidOid. */
Oid
shape_index_expressions_relid(void)
{
	return extension_table_relid(INDEX_EXPRESSIONS_NAME);
}

/*
 * Whether index_expressions has the row (relid, attnum, text) of this major,
 * committed or written by a transaction still running (a dirty snapshot:
 * *running is then that transaction, to wait for), or by this one.
 */
static bool
index_expression_known(Relation table, Oid index, Oid relid, uint16 attnum, const char *expr_text,
					   TransactionId *running)
{
	ScanKeyData keys[2];
	SnapshotData dirty;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	*running = InvalidTransactionId;
	InitDirtySnapshot(dirty);
	ScanKeyInit(&keys[0], Anum_index_expression_relid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	ScanKeyInit(&keys[1], Anum_index_expression_attnum, BTEqualStrategyNumber, F_INT2EQ,
				Int16GetDatum((int16) attnum));
	scan = systable_beginscan(table, index, true, &dirty, 2, keys);
	while (!found && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		expr = heap_getattr(tuple, Anum_index_expression_expr, RelationGetDescr(table), &isnull);
		Datum		major = heap_getattr(tuple, Anum_index_expression_server_major, RelationGetDescr(table), &isnull);

		if (isnull || DatumGetInt32(major) != SHAPE_SERVER_MAJOR)
			continue;
		found = strcmp(TextDatumGetCString(expr), expr_text) == 0;
		if (found && TransactionIdIsValid(dirty.xmin))
			*running = dirty.xmin;
	}
	systable_endscan(scan);
	return found;
}

/*
 * Registration: the decoder learns which expressions to evaluate on a table's
 * rows from index_expressions (decoded in WAL order, before the shape's own
 * row). Each (relid, attnum, text) is written once; *seen (a list of texts in
 * the caller's memory) skips those this call has written or found already.
 * False when the table is missing (an extension installed by an older script
 * of this version): the caller does without the expressions' atoms.
 * Writers of a new row serialize on a lock of (relid, attnum) kept until
 * commit, and look again once they hold it, so that two registrations never
 * insert the same row.
 */
bool
shape_store_index_expressions(Oid relid, List *expressions, List **seen, MemoryContext seen_context)
{
	Oid			table_relid = InvalidOid;
	Relation	table = NULL;
	Oid			index = InvalidOid;
	ListCell   *lc;

	foreach(lc, expressions)
	{
		ShapeIndexExpression *indexed = lfirst(lc);
		char	   *key = psprintf("%u %u %s", relid, indexed->attnum, indexed->text);
		ListCell   *s;
		bool		known = false;
		TransactionId running;

		foreach(s, *seen)
			known |= strcmp((char *) lfirst(s), key) == 0;
		if (known)
			continue;
		if (table == NULL)
		{
			table_relid = shape_index_expressions_relid();
			if (!OidIsValid(table_relid))
				return false;
			table = table_open(table_relid, RowExclusiveLock);
			index = shape_catalog_index_relid(INDEX_EXPRESSIONS_PKEY_NAME);
		}
		if (!index_expression_known(table, index, relid, indexed->attnum, indexed->text, &running) ||
			TransactionIdIsValid(running))
		{
			/* per table and virtual column (above any real column's number) */
			LockDatabaseObject(RelationRelationId, relid, indexed->attnum, ExclusiveLock);
			if (!index_expression_known(table, index, relid, indexed->attnum, indexed->text, &running))
			{
				Datum		values[Natts_index_expressions];
				bool		nulls[Natts_index_expressions] = {0};
				HeapTuple	tuple;

				values[Anum_index_expression_relid - 1] = ObjectIdGetDatum(relid);
				values[Anum_index_expression_attnum - 1] = Int16GetDatum((int16) indexed->attnum);
				values[Anum_index_expression_expr - 1] = CStringGetTextDatum(indexed->text);
				values[Anum_index_expression_server_major - 1] = Int32GetDatum(SHAPE_SERVER_MAJOR);
				tuple = heap_form_tuple(RelationGetDescr(table), values, nulls);
				CatalogTupleInsert(table, tuple);
				heap_freetuple(tuple);
			}
		}
		{
			MemoryContext old = MemoryContextSwitchTo(seen_context);

			*seen = lappend(*seen, pstrdup(key));
			MemoryContextSwitchTo(old);
		}
	}
	if (table != NULL)
		table_close(table, RowExclusiveLock);
	return true;
}

Oid
shape_catalog_index_relid(const char *index_name)
{
	Oid			relid = get_relname_relid(index_name, get_namespace_oid(SHAPE_ROUTER_SCHEMA, false));

	if (!OidIsValid(relid))
		elog(ERROR, "shape_router index \"%s\" not found", index_name);
	return relid;
}

/*
 * A catalog row's array without NULLs, read where it lies. Small arrays are
 * stored with a 1-byte header, which DatumGetArrayTypeP would copy into a
 * palloc'd one with a 4-byte header; read in place, their elements may be
 * unaligned (copy them out with memcpy). Other arrays (toasted, of a lower
 * bound other than 1, of several dimensions) go through DatumGetArrayTypeP.
 */
typedef struct StoredArray
{
	const char *elements;
	int			count;
	int			ndim;
	Oid			element_type;
} StoredArray;

static bool
stored_array(Datum datum, int element_size, StoredArray *array)
{
	struct varlena *stored = (struct varlena *) DatumGetPointer(datum);
	const size_t header = ARR_OVERHEAD_NONULLS(1) - VARHDRSZ;
	int32		fields[5];		/* ndim, dataoffset, elemtype, dims[0], lbound[0] */
	const char *body;
	size_t		body_len;
	ArrayType  *general;

	if (!VARATT_IS_EXTENDED(stored) || VARATT_IS_SHORT(stored))
	{
		body = VARATT_IS_SHORT(stored) ? VARDATA_SHORT(stored) : VARDATA(stored);
		body_len = VARATT_IS_SHORT(stored) ? VARSIZE_SHORT(stored) - VARHDRSZ_SHORT : VARSIZE(stored) - VARHDRSZ;
		if (body_len >= 3 * sizeof(int32))
		{
			memcpy(fields, body, 3 * sizeof(int32));
			if (fields[0] == 0 && fields[1] == 0)
			{
				array->elements = NULL;
				array->count = 0;
				array->ndim = 0;
				array->element_type = (Oid) fields[2];
				return true;
			}
			if (fields[0] == 1 && fields[1] == 0 && body_len >= header)
			{
				memcpy(fields + 3, body + 3 * sizeof(int32), 2 * sizeof(int32));
				if (fields[3] >= 0 && fields[4] == 1 && (size_t) fields[3] * element_size == body_len - header)
				{
					array->elements = body + header;
					array->count = fields[3];
					array->ndim = 1;
					array->element_type = (Oid) fields[2];
					return true;
				}
			}
		}
	}
	general = DatumGetArrayTypeP(datum);
	if (ARR_HASNULL(general))
		return false;
	array->elements = ARR_DATA_PTR(general);
	array->count = ArrayGetNItems(ARR_NDIM(general), ARR_DIMS(general));
	array->ndim = ARR_NDIM(general);
	array->element_type = ARR_ELEMTYPE(general);
	return true;
}

static int
compare_int16(const void *a, const void *b)
{
	return (int) *(const int16 *) a - (int) *(const int16 *) b;
}

/*
 * The attnums of an int2[] catalog column, ascending and without duplicates as
 * int2_array_from_bitmapset writes them (a row written otherwise is sorted
 * here), in space when they fit.
 */
static int
attnums_of_int2_array(Datum datum, const int16 **attnums, int16 *space, int space_len)
{
	StoredArray array;
	int16	   *values;
	int			count;
	bool		ascending = true;

	if (!stored_array(datum, sizeof(int16), &array) || array.element_type != INT2OID)
		elog(ERROR, "shape_router catalog holds a malformed attnum array");
	count = array.count;
	values = count <= space_len ? space : palloc(sizeof(int16) * count);
	if (count > 0)
		memcpy(values, array.elements, sizeof(int16) * count);
	for (int i = 0; i < count; i++)
	{
		if (values[i] <= 0)
			elog(ERROR, "shape_router catalog holds an invalid attnum %d", values[i]);
		if (i > 0 && values[i] <= values[i - 1])
			ascending = false;
	}
	if (!ascending)
	{
		int			unique = 0;

		qsort(values, count, sizeof(int16), compare_int16);
		for (int i = 0; i < count; i++)
			if (unique == 0 || values[i] != values[unique - 1])
				values[unique++] = values[i];
		count = unique;
	}
	*attnums = values;
	return count;
}

Bitmapset *
attnums_bitmapset(const int16 *attnums, int count)
{
	Bitmapset  *result = NULL;

	for (int i = 0; i < count; i++)
		result = bms_add_member(result, attnums[i]);
	return result;
}

int64
shape_id_of_tuple(HeapTuple tuple, TupleDesc desc)
{
	HeapTupleHeader header = tuple->t_data;
	bool		isnull;
	Datum		id;

	StaticAssertStmt(Anum_shape_shape_id == 1, "the id is the first column");
	/* At the data's start (heap_getattr calls nocachegetattr for every row with a NULL column). */
	if (HeapTupleHeaderGetNatts(header) >= 1 && desc->natts >= 1 &&
		TupleDescAttr(desc, 0)->atttypid == INT8OID && !TupleDescAttr(desc, 0)->attisdropped)
	{
		int64		value;

		if (HeapTupleHasNulls(tuple) && att_isnull(0, header->t_bits))
			return 0;
		memcpy(&value, (char *) header + header->t_hoff, sizeof(value));
		return value;
	}
	id = heap_getattr(tuple, Anum_shape_shape_id, desc, &isnull);
	return isnull ? 0 : DatumGetInt64(id);
}

Datum
int2_array_from_bitmapset(const Bitmapset *attnums)
{
	int			count = 0;
	Datum	   *items = palloc(sizeof(Datum) * (bms_num_members(attnums) + 1));
	int			attnum = -1;

	while ((attnum = bms_next_member(attnums, attnum)) >= 0)
		if (attnum > 0)			/* 0 only marks an empty, non-NULL list */
			items[count++] = Int16GetDatum((int16) attnum);
	return PointerGetDatum(construct_array(items, count, INT2OID, sizeof(int16), true, TYPALIGN_SHORT));
}

/* A catalog row, all of it (shape_def_from_tuple_or_reason). */
void
shape_def_from_tuple(ShapeDef *def, HeapTuple tuple, TupleDesc desc)
{
	shape_def_from_tuple_or_reason(def, tuple, desc, SHAPE_DEF_FULL, NULL);
}

/*
 * The catalog's form of a cover (index_cover, int8[]): the number of
 * alternatives plus 256 * the exact ones' bits (sr_cover.exact_alternatives),
 * the atoms in each, then per atom its key, kind * 2^24 + attnum * 256 + type
 * tag, for a range atom its upper bound, for a prefix atom its length in
 * bytes, for a substring atom its gram's length + 256 if lowered, for a
 * complement atom the number of
 * excluded keys after it, and for a composite atom its range's lower and upper
 * bound and range_attnum * 256 + range_tag.
 */
#define COVER_RANGE_META(atom) ((int64) (atom).range_attnum << 8 | (atom).range_tag)
#define COVER_META(atom) ((int64) (atom).kind << 24 | (int64) (atom).attnum << 8 | (atom).tag)

Datum
shape_cover_datum(const ShapeCover *cover)
{
	int			n = 1 + cover->alternative_count + 5 * cover->atom_count;
	Datum	   *items = palloc(sizeof(Datum) * n);
	int			i = 0;

	items[i++] = Int64GetDatum(cover->alternative_count | (int64) cover->exact_alternatives << 8);
	for (int a = 0; a < cover->alternative_count; a++)
		items[i++] = Int64GetDatum(cover->sizes[a]);
	for (int k = 0; k < cover->atom_count; k++)
	{
		items[i++] = Int64GetDatum((int64) cover->atoms[k].key);
		items[i++] = Int64GetDatum(COVER_META(cover->atoms[k]));
		if (cover->atoms[k].kind == SR_ATOM_RANGE || cover->atoms[k].kind == SR_ATOM_COMPLEMENT ||
			cover->atoms[k].kind == SR_ATOM_PREFIX)
			items[i++] = Int64GetDatum((int64) cover->atoms[k].upper);
		if (cover->atoms[k].kind == SR_ATOM_SUBSTRING)
			items[i++] = Int64GetDatum((int64) (cover->atoms[k].upper | cover->atoms[k].lower << 8));
		if (cover->atoms[k].kind == SR_ATOM_COMPOSITE)
		{
			items[i++] = Int64GetDatum((int64) cover->atoms[k].lower);
			items[i++] = Int64GetDatum((int64) cover->atoms[k].upper);
			items[i++] = Int64GetDatum(COVER_RANGE_META(cover->atoms[k]));
		}
	}
	return PointerGetDatum(construct_array(items, i, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE));
}

void
shape_cover_from_datum(ShapeDef *def, Datum datum)
{
	StoredArray array;
	int64		item_space[64];
	int64	   *items;
	int			n;
	int			pos;
	int64		atoms = 0;

	if (!stored_array(datum, sizeof(int64), &array) || array.element_type != INT8OID || array.ndim != 1)
		goto malformed;
	n = array.count;
	items = n <= lengthof(item_space) ? item_space : palloc(sizeof(int64) * n);
	memcpy(items, array.elements, sizeof(int64) * n);
	if (n < 1 || (items[0] & 0xff) < 1 || (items[0] & 0xff) > SR_COVER_MAX_ALTERNATIVES ||
		(items[0] >> 8) >= ((int64) 1 << (items[0] & 0xff)) || n < 1 + (items[0] & 0xff))
		goto malformed;
	def->cover_alternatives = (int) (items[0] & 0xff);
	def->cover_exact = (uint32) (items[0] >> 8);
	def->cover_sizes = def->cover_alternatives <= lengthof(def->size_space) ? def->size_space
		: palloc(sizeof(uint32) * def->cover_alternatives);
	for (int a = 0; a < def->cover_alternatives; a++)
	{
		if (items[1 + a] < 0 || items[1 + a] > n)
			goto malformed;
		def->cover_sizes[a] = (uint32) items[1 + a];
		atoms += items[1 + a];
	}
	if (atoms > n)
		goto malformed;
	if (atoms + 1 <= lengthof(def->atom_space))
	{
		def->cover_atoms = def->atom_space;
		memset(def->atom_space, 0, sizeof(sr_index_atom) * (atoms + 1));
	}
	else
		def->cover_atoms = palloc0(sizeof(sr_index_atom) * (atoms + 1));
	pos = 1 + def->cover_alternatives;
	for (int64 k = 0; k < atoms; k++)
	{
		sr_index_atom *atom = &def->cover_atoms[k];
		int64		meta;

		if (pos + 2 > n)
			goto malformed;
		atom->key = (uint64) items[pos++];
		meta = items[pos++];
		atom->kind = (uint8) (meta >> 24);
		atom->attnum = (uint16) ((meta >> 8) & 0xffff);
		atom->tag = (uint8) (meta & 0xff);
		if (meta < 0 || meta != COVER_META(*atom) || atom->kind > SR_ATOM_SUBSTRING ||
			(atom->kind == SR_ATOM_ELEMENT) != ((atom->tag & SR_TAG_ELEMENT_FLAG) != 0))
			goto malformed;
		if (atom->kind == SR_ATOM_ALWAYS ? atom->attnum != 0 || atom->tag != SR_TAG_NONE || atom->key != 0
			: atom->attnum < 1 ||
			(atom->attnum >= MaxAttrNumber && !(SHAPE_ATTNUM_IS_VIRTUAL(atom->attnum) &&
											(atom->kind == SR_ATOM_EQUAL || atom->kind == SR_ATOM_RANGE ||
											 atom->kind == SR_ATOM_NULL || atom->kind == SR_ATOM_COMPLEMENT ||
											 atom->kind == SR_ATOM_EXCLUDED))) ||
			(atom->tag & ~SR_TAG_ELEMENT_FLAG) == SR_TAG_NONE ||
			(atom->tag & ~SR_TAG_ELEMENT_FLAG) >= SR_TAG_COUNT)
			goto malformed;
		if (atom->kind == SR_ATOM_PREFIX)
		{
			if (pos + 1 > n || items[pos] < 1 || items[pos] > SR_PREFIX_MAX || atom->tag != SR_TAG_TEXT)
				goto malformed;
			atom->upper = (uint64) items[pos++];
		}
		if (atom->kind == SR_ATOM_SUBSTRING)
		{
			if (pos + 1 > n || (items[pos] & 0xff) < 1 || (items[pos] & 0xff) > SR_SUBSTRING_GRAM ||
				(items[pos] >> 8) > 1 || atom->tag != SR_TAG_TEXT)
				goto malformed;
			atom->upper = (uint64) (items[pos] & 0xff);
			atom->lower = (uint64) (items[pos++] >> 8);
		}
		if (atom->kind == SR_ATOM_COMPLEMENT)
		{
			/* its excluded keys follow it (the router checks that they do) */
			if (pos + 1 > n || items[pos] < 0 || items[pos] > SR_COVER_MAX_ATOMS)
				goto malformed;
			atom->upper = (uint64) items[pos++];
		}
		if (atom->kind == SR_ATOM_COMPOSITE)
		{
			int64		range_meta;

			if (pos + 3 > n)
				goto malformed;
			atom->lower = (uint64) items[pos++];
			atom->upper = (uint64) items[pos++];
			range_meta = items[pos++];
			atom->range_attnum = (uint16) ((range_meta >> 8) & 0xffff);
			atom->range_tag = (uint8) (range_meta & 0xff);
			if (range_meta < 0 || range_meta != COVER_RANGE_META(*atom) || atom->range_attnum < 1 ||
				atom->range_attnum >= MaxAttrNumber || atom->range_attnum == atom->attnum ||
				atom->range_tag >= SR_TAG_COUNT || sr_tag_order(atom->range_tag) == SR_ORDER_NONE ||
				atom->lower > atom->upper)
				goto malformed;
		}
		if (atom->kind == SR_ATOM_RANGE)
		{
			if (pos + 1 > n || sr_tag_order(atom->tag) == SR_ORDER_NONE)
				goto malformed;
			atom->upper = (uint64) items[pos++];
			if (atom->key > atom->upper)
				goto malformed;
		}
	}
	if (pos != n)
		goto malformed;
	return;

malformed:
	elog(ERROR, "shape_router catalog row for shape " INT64_FORMAT " has a malformed index cover",
		 def->shape_id);
}

/*
 * Re-analysis of a row made under another major (text_only: only its
 * where_text, for a row of this major). The table is opened by
 * reference, without a lock, as decoding reads tables. With unusable, a data
 * error (the new major refuses the text) is returned there instead of raised:
 * the parser and analyser hold no locks, pins or other resources when they fail
 * (the table reference is released here either way), so, as for a predicate's
 * error, no subtransaction is needed; interrupts, system and internal errors
 * propagate.
 */
static bool
reanalyse(ShapeDef *def, Datum where_source, Datum where_names, bool want_where_text, bool text_only,
		  char **unusable)
{
	MemoryContext caller_context = CurrentMemoryContext;
	volatile uint32 holdoff = InterruptHoldoffCount;
	volatile bool ok = true;
	Relation	rel;
	int			guc_level;

	/*
	 * SQL callers lock the table as the parser expects; decoding reads tables
	 * unlocked. A lock taken only to show the WHERE (text_only) is released
	 * after it, as pg_get_expr takes none: a reader of the shapes view left open
	 * must not hold up DDL on every shaped table.
	 */
	bool		release = text_only && !HistoricSnapshotActive();

	if (!HistoricSnapshotActive())
		LockRelationOid(def->relid, AccessShareLock);
	rel = RelationIdGetRelation(def->relid);
	if (!RelationIsValid(rel))
	{
		char	   *reason = psprintf("its table %u does not exist", def->relid);

		if (release)
			UnlockRelationOid(def->relid, AccessShareLock);
		if (unusable == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table %u of shape " INT64_FORMAT " does not exist", def->relid, def->shape_id)));
		*unusable = reason;
		return false;
	}
	/* A shape reads only built-ins, and its text names them as pg_catalog's (or
	 * qualified), with constants as shape_where_source wrote them: read it back the
	 * same in every session, whatever its settings. */
	guc_level = shape_text_settings_begin(NULL, true);
	PG_TRY();
	{
		if (text_only)
			shape_def_where_text(def, rel, where_source, where_names);
		else
			shape_def_reanalyse(def, rel, where_source, where_names, want_where_text);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			category;

		MemoryContextSwitchTo(caller_context);
		shape_text_settings_end(guc_level, false);
		RelationClose(rel);
		if (unusable == NULL)
			PG_RE_THROW();
		edata = CopyErrorData();
		category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
		/* what the new major refuses in the text; anything else (out of memory,
		 * interrupts, internal errors) propagates */
		if (category != ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION && category != ERRCODE_DATA_EXCEPTION &&
			category != ERRCODE_FEATURE_NOT_SUPPORTED)
			PG_RE_THROW();
		FlushErrorState();
		InterruptHoldoffCount = holdoff;
		*unusable = edata->message;
		ok = false;
	}
	PG_END_TRY();
	if (ok)
	{
		shape_text_settings_end(guc_level, true);
		RelationClose(rel);
	}
	if (release)
		UnlockRelationOid(def->relid, AccessShareLock);
	return ok;
}

/*
 * Refuses a catalog whose columns are not the ones shape_router_pg.h numbers:
 * one made by another build's script (an extension updated by replacing its
 * files, not by CREATE EXTENSION) may have as many columns in other places.
 */
void
shape_catalog_check_layout(TupleDesc desc)
{
	if (desc->natts != Natts_shape_catalog ||
		TupleDescAttr(desc, Anum_shape_where_columns - 1)->atttypid != INT2ARRAYOID ||
		TupleDescAttr(desc, Anum_shape_program - 1)->atttypid != BYTEAOID ||
		TupleDescAttr(desc, Anum_shape_where_types - 1)->atttypid != OIDARRAYOID)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shape_router.shape_catalog does not have the columns this build of shape_router reads"),
				 errdetail("The extension's tables were created by another build of shape_router."),
				 errhint("Install the build that created them, or drop the extension and create it again (its shapes are lost).")));
}

/* The row's where_types, checked against its where_columns; a copy. */
static const Oid *
where_types_of_row(const ShapeDef *def, Datum datum, bool isnull)
{
	ArrayType  *array;
	Oid		   *types;

	array = isnull ? NULL : DatumGetArrayTypeP(datum);
	/* The DDL guard reads them: refusing is safer than skipping the shape. */
	if (array == NULL || ARR_NDIM(array) > 1 || ARR_HASNULL(array) || ARR_ELEMTYPE(array) != OIDOID ||
		ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array)) != 2 * def->where_count)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the catalog row of shape " INT64_FORMAT " does not list a type and a collation for each column its WHERE reads",
						def->shape_id),
				 errhint("Drop the shape and register it again.")));
	types = palloc(sizeof(Oid) * (2 * def->where_count + 1));
	if (def->where_count > 0)
		memcpy(types, ARR_DATA_PTR(array), sizeof(Oid) * 2 * def->where_count);
	return types;
}

/*
 * The first natts attributes of a catalog row: heap_deform_tuple's walk,
 * stopping there. A decoder's start reads every row and needs none of the last
 * three (the WHERE's text, names and types), all of variable width; past the
 * first NULL heap_deform_tuple has no cached offsets, so each attribute walked
 * costs it dozens of instructions. False when the tuple has fewer attributes
 * (heap_deform_tuple reads the missing ones' defaults).
 */
static bool
deform_leading(HeapTuple tuple, TupleDesc desc, int natts, Datum *values, bool *nulls)
{
	HeapTupleHeader header = tuple->t_data;
	char	   *tp = (char *) header + header->t_hoff;
	uint32		present = UINT32_MAX;	/* bit i: attribute i + 1 is not NULL */
	uintptr_t	off = 0;

	Assert(natts <= 16);
	if (HeapTupleHeaderGetNatts(header) < natts)
		return false;
	if (HeapTupleHasNulls(tuple))
		present = header->t_bits[0] | (natts > 8 ? (uint32) header->t_bits[1] << 8 : 0);
	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (((present >> i) & 1) == 0)
		{
			values[i] = (Datum) 0;
			nulls[i] = true;
			continue;
		}
		nulls[i] = false;
		off = att->attlen == -1 ? att_align_pointer(off, att->attalign, -1, tp + off)
			: att_align_nominal(off, att->attalign);
		values[i] = fetchatt(att, tp + off);
		off = att_addlength_pointer(off, att->attlen, tp + off);
	}
	return true;
}

/*
 * A catalog row; one made under another major is re-analysed from its WHERE text
 * (shape_upgrade.c). parts (SHAPE_DEF_*) says what beyond the router's needs to
 * fill: the plugin runs programs and never needs the WHERE's tree (analysed
 * again from its text), nor sets of columns, nor a program outliving the row. With unusable, a re-analysis that fails with a data error
 * (the new major refuses the text) returns false with the reason there, so that
 * decoding can skip the shape and go on; without, the error propagates.
 */
bool
shape_def_from_tuple_or_reason(ShapeDef *def, HeapTuple tuple, TupleDesc desc, int parts,
							   char **unusable)
{
	Datum		values[Natts_shape_catalog];
	bool		nulls[Natts_shape_catalog];
	bool		leading;
	bool		no_where;

	shape_catalog_check_layout(desc);
	/* The WHERE's text, names and types: read when asked for, or to re-analyse
	 * a row of another major; otherwise only whether the row has a WHERE. */
	leading = parts == 0 && deform_leading(tuple, desc, Anum_shape_server_major, values, nulls);
	no_where = leading && heap_attisnull(tuple, Anum_shape_where_source, desc);
	if (leading && (no_where || (!nulls[Anum_shape_server_major - 1] &&
								 DatumGetInt32(values[Anum_shape_server_major - 1]) == SHAPE_SERVER_MAJOR)))
	{
		StaticAssertStmt(Anum_shape_where_source == Anum_shape_server_major + 1 &&
						 Natts_shape_catalog == Anum_shape_where_types, "the WHERE's columns come last");
		for (int a = Anum_shape_where_source; a <= Natts_shape_catalog; a++)
		{
			values[a - 1] = (Datum) 0;
			nulls[a - 1] = true;	/* not read */
		}
		nulls[Anum_shape_where_source - 1] = no_where;
	}
	else
		heap_deform_tuple(tuple, desc, values, nulls);
	if (nulls[Anum_shape_shape_id - 1] || nulls[Anum_shape_relid - 1] ||
		nulls[Anum_shape_where_columns - 1])
		elog(ERROR, "shape_router catalog row has NULL in a NOT NULL column");

	def->shape_id = DatumGetInt64(values[Anum_shape_shape_id - 1]);
	def->relid = DatumGetObjectId(values[Anum_shape_relid - 1]);
	def->has_where = !nulls[Anum_shape_where_source - 1];
	def->registered_major = nulls[Anum_shape_server_major - 1] ? 0
		: DatumGetInt32(values[Anum_shape_server_major - 1]);
	def->reanalysed = false;
	def->where_count = attnums_of_int2_array(values[Anum_shape_where_columns - 1], &def->where_attnums,
											 def->attnum_space[0], lengthof(def->attnum_space[0]));
	if (nulls[Anum_shape_columns - 1])
	{
		def->column_attnums = NULL;
		def->column_count = -1;
	}
	else
	{
		static const int16 primary_key_only = 0;

		def->column_count = attnums_of_int2_array(values[Anum_shape_columns - 1], &def->column_attnums,
												  def->attnum_space[1], lengthof(def->attnum_space[1]));
		if (def->column_count == 0)
		{
			def->column_attnums = &primary_key_only;	/* empty list: primary key only */
			def->column_count = 1;
		}
	}
	def->where_columns = NULL;
	def->columns = NULL;
	/* re-analysis compares the columns it finds with the row's */
	if ((parts & SHAPE_DEF_SETS) ||
		(def->has_where && (def->registered_major != SHAPE_SERVER_MAJOR || (parts & SHAPE_DEF_WHERE_TEXT))))
	{
		def->where_columns = attnums_bitmapset(def->where_attnums, def->where_count);
		if (def->column_count >= 0)
			def->columns = attnums_bitmapset(def->column_attnums, def->column_count);
	}
	def->where_text = NULL;
	def->where_types = NULL;
	def->program = NULL;
	def->fallback_text = NULL;
	def->cover_alternatives = 0;
	def->cover_sizes = NULL;
	def->cover_atoms = NULL;
	def->cover_exact = 0;

	if (def->has_where && nulls[Anum_shape_where_names - 1] &&
		(def->registered_major != SHAPE_SERVER_MAJOR || (parts & SHAPE_DEF_WHERE_TEXT)))
	{
		char	   *reason = psprintf("the catalog row of shape " INT64_FORMAT " has a WHERE text without its column names",
									  def->shape_id);

		if (unusable == NULL)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("%s", reason)));
		*unusable = reason;
		return false;
	}
	if (def->has_where && def->registered_major != SHAPE_SERVER_MAJOR)
	{
		/* Another major's programs and covers are never read. */
		if (!reanalyse(def, values[Anum_shape_where_source - 1], values[Anum_shape_where_names - 1],
					   (parts & SHAPE_DEF_WHERE_TEXT) != 0, false, unusable))
			return false;
	}
	else
	{
		if (def->has_where && (parts & SHAPE_DEF_WHERE_TEXT) &&
			!reanalyse(def, values[Anum_shape_where_source - 1], values[Anum_shape_where_names - 1],
					   true, true, unusable))
			return false;
		if (def->has_where && (parts & SHAPE_DEF_SETS))
			def->where_types = where_types_of_row(def, values[Anum_shape_where_types - 1],
												  nulls[Anum_shape_where_types - 1]);
		if (!nulls[Anum_shape_program - 1])
			def->program = (parts & SHAPE_DEF_SETS) ? DatumGetByteaPCopy(values[Anum_shape_program - 1])
				: DatumGetByteaPP(values[Anum_shape_program - 1]);
		if (!nulls[Anum_shape_fallback_exprs - 1])
			def->fallback_text = TextDatumGetCString(values[Anum_shape_fallback_exprs - 1]);
		if (!nulls[Anum_shape_index_cover - 1])
			shape_cover_from_datum(def, values[Anum_shape_index_cover - 1]);
	}
	if ((def->program == NULL) == def->has_where)
		elog(ERROR, "shape_router catalog row for shape " INT64_FORMAT " has a WHERE without a program or the reverse",
			 def->shape_id);
	return true;
}
