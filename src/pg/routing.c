/*
 * routing.c — a decoded change to its shapes' records: the index columns'
 * values read once from the raw tuples (and prefetched for the next change),
 * keyed by the router and then read by the candidates' programs, the
 * candidate shapes of the table and of a partition's ancestors, each one's
 * WHERE on the old and new row, records in ascending shape order; TRUNCATE.
 */
#include "shape_router_pg.h"

#include "access/htup_details.h"
#include "access/tupconvert.h"
#include "catalog/pg_type.h"
#include "utils/memutils.h"

#include "plugin_internal.h"

/* Copies a decoded tuple into a virtual slot so unchanged TOAST can be patched. */
static TupleTableSlot *
store_tuple(TupleTableSlot *slot, HeapTuple tuple)
{
	ExecClearTuple(slot);
	heap_deform_tuple(tuple, slot->tts_tupleDescriptor, slot->tts_values, slot->tts_isnull);
	return ExecStoreVirtualTuple(slot);
}

/*
 * An UPDATE logs unchanged TOASTed values as pointers to data decoding cannot
 * read. Take them from the old row when it has them (replica identity full);
 * otherwise they stay unknown and the record says so.
 */
static Bitmapset *
patch_unchanged_toast(TupleTableSlot *new_slot, TupleTableSlot *old_slot, bool old_full)
{
	TupleDesc	desc = new_slot->tts_tupleDescriptor;
	Bitmapset  *unknown = NULL;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (attr->attisdropped || attr->attlen != -1 || new_slot->tts_isnull[i] ||
			!VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(new_slot->tts_values[i])))
			continue;
		if (old_slot != NULL && old_full && !old_slot->tts_isnull[i])
			new_slot->tts_values[i] = old_slot->tts_values[i];
		else
		{
			new_slot->tts_isnull[i] = true;
			unknown = bms_add_member(unknown, i + 1);
		}
	}
	return unknown;
}

/* Tables up to this many columns have their indexed columns read in one pass. */
#define TUPLE_KEYS_DEFORM_MAX 64

/* The shape's program on one row version; image is NULL when the WAL has no such row. */
static sr_row_match
evaluate(RouterState *state, ShapeState *shape, RowImage *image, const RelationEvalInfo *info,
		 char **message)
{
	ShapeEvaluator *evaluator;
	sr_row_match	match;
	int			slot;

	if (!shape->form->has_where)
		return SR_ROW_YES;
	if (image == NULL)
	{
		*message = "the old row is not available; the table's replica identity no longer covers this shape's WHERE";
		return SR_ROW_ERROR;
	}
	if (image->key_only && !bms_is_subset(shape->form->where_columns, image->key_columns))
	{
		*message = "the old row carries only the replica identity, which no longer covers this shape's WHERE; set REPLICA IDENTITY FULL";
		return SR_ROW_ERROR;
	}
	evaluator = shape_evaluator(state, shape);

	/*
	 * An identical shape ran the program on this row image already. The image
	 * is the row version of one route (one relation) of this change, and the
	 * evaluator belongs to one relation: a change meets it in one route only.
	 */
	for (slot = 0; slot < 2; slot++)
		if (evaluator->memo_change[slot] == state->change_number && evaluator->memo_image[slot] == image)
		{
			state->counters->shared_evaluations++;
			if (evaluator->memo_message[slot] != NULL)
				*message = evaluator->memo_message[slot];
			return (sr_row_match) evaluator->memo_match[slot];
		}

	switch (compiled_shape_eval(&evaluator->compiled, image, info, state->econtext, state->counters, message))
	{
		case SHAPE_MATCH:
			match = SR_ROW_YES;
			break;
		case SHAPE_NO_MATCH:
		case SHAPE_UNKNOWN:
			match = SR_ROW_NO;
			break;
		case SHAPE_DISABLED:
			match = SR_ROW_DISABLED;
			break;
		case SHAPE_ERROR:
		default:
			match = SR_ROW_ERROR;
			break;
	}
	/* (kept for a lone shape too: the identical ones may build their states later) */
	slot = evaluator->memo_change[0] == state->change_number ? 1 : 0;
	evaluator->memo_change[slot] = state->change_number;
	evaluator->memo_image[slot] = image;
	evaluator->memo_match[slot] = (uint8) match;
	/* the message lives in the change's memory context, or in the evaluator */
	evaluator->memo_message[slot] = match == SR_ROW_ERROR || match == SR_ROW_DISABLED ? *message : NULL;
	return match;
}

/*
 * One row version of a candidate: decided by the index when its cover is exact
 * (exact: sr_shape_ref.exact; bit: SR_EXACT_NEW or SR_EXACT_OLD), else by its
 * program.
 */
static sr_row_match
match_row(RouterState *state, ShapeState *shape, uint8 exact, uint8 bit, RowImage *image,
		  const RelationEvalInfo *info, char **message)
{
	if ((exact & SR_EXACT_DECIDED) && image != NULL && shape->form->has_where &&
		(!image->key_only || bms_is_subset(shape->form->where_columns, image->key_columns)))
	{
		if (!form_fits(state, shape->form, info, message))
			return SR_ROW_DISABLED;
		return (exact & bit) ? SR_ROW_YES : SR_ROW_NO;
	}
	return evaluate(state, shape, image, info, message);
}

/*
 * What walking a tuple needs of each attribute, in a few bytes instead of the
 * 100-odd of pg_attribute: for the relation most recently read, made again
 * when its RelationInfo is rebuilt (generations are never reused).
 */
typedef struct TupleLayout
{
	Oid			relid;
	uint32		generation;
	int			natts;
	int			fixed;			/* attributes at a fixed offset in a tuple without NULLs: */
	uint32		offset[TUPLE_KEYS_DEFORM_MAX];	/* those up to the first of variable width */
	int16		attlen[TUPLE_KEYS_DEFORM_MAX];
	uint8		alignmask[TUPLE_KEYS_DEFORM_MAX];	/* alignment - 1 */
	bool		byval[TUPLE_KEYS_DEFORM_MAX];
	Oid			typid[TUPLE_KEYS_DEFORM_MAX];
} TupleLayout;

static TupleLayout tuple_layout;

/* The layout of rel, which has at most TUPLE_KEYS_DEFORM_MAX attributes. */
static const TupleLayout *
tuple_layout_of(const RelationInfo *rel)
{
	TupleLayout *layout = &tuple_layout;
	uint32		off = 0;

	if (layout->generation == rel->generation && layout->relid == rel->relid && layout->natts == rel->desc->natts)
		return layout;
	layout->generation = 0;
	layout->fixed = 0;
	for (int i = 0; i < rel->desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(rel->desc, i);

		layout->attlen[i] = att->attlen;
		/* as att_align_nominal */
		layout->alignmask[i] = att->attalign == TYPALIGN_DOUBLE ? ALIGNOF_DOUBLE - 1
			: att->attalign == TYPALIGN_INT ? ALIGNOF_INT - 1
			: att->attalign == TYPALIGN_SHORT ? ALIGNOF_SHORT - 1 : 0;
		layout->byval[i] = att->attbyval;
		layout->typid[i] = att->atttypid;
		if (layout->fixed == i)
		{
			/* A varlena starts unpadded only when it has a 1-byte header; at an
			 * aligned offset either kind starts there. */
			if (att->attlen == -1 && (off & layout->alignmask[i]) != 0)
				continue;
			off = (off + layout->alignmask[i]) & ~(uint32) layout->alignmask[i];
			layout->offset[i] = off;
			layout->fixed = i + 1;
			if (att->attlen <= 0)
				layout->fixed = i + 1 + TUPLE_KEYS_DEFORM_MAX;	/* it, but nothing after it */
			else
				off += att->attlen;
		}
	}
	if (layout->fixed > TUPLE_KEYS_DEFORM_MAX)
		layout->fixed -= TUPLE_KEYS_DEFORM_MAX;
	layout->relid = rel->relid;
	layout->natts = rel->desc->natts;
	layout->generation = rel->generation;
	return layout;
}

/* A column's sr_value from its datum (false: an unchanged TOASTed value the WAL lacks). */
static inline bool
value_from_datum(Oid typid, int16 attlen, Datum datum, sr_value *value)
{
	value->len = 0;
	value->is_null = false;
	value->has_null_element = 0;
	/* The common fixed-width types here, as shape_value_from_datum reads them. */
	switch (typid)
	{
		case INT2OID:
			value->v.i = DatumGetInt16(datum);
			return true;
		case INT4OID:
			value->v.i = DatumGetInt32(datum);
			return true;
		case INT8OID:
			value->v.i = DatumGetInt64(datum);
			return true;
		case FLOAT8OID:
			value->v.f = DatumGetFloat8(datum);
			return true;
		default:
			if (attlen == -1 && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(datum)))
				return false;
			shape_value_from_datum(typid, datum, false, value);
			return true;
	}
}

/*
 * Room for the elements of a row's arrays, taken in turn and given back all at
 * once when the values they belong to are read again: a change's few tags
 * cost no palloc, and the memory context they would be in no reset.
 */
#define ITEM_ROOM 64
typedef struct ItemRoom
{
	sr_value	items[ITEM_ROOM];
	uint32		used;
} ItemRoom;

/* Room for count elements: in room while it has it, else palloc'd. */
static inline sr_value *
take_items(ItemRoom *room, int count)
{
	if (room != NULL && (uint32) count <= ITEM_ROOM - room->used)
	{
		sr_value   *items = room->items + room->used;

		room->used += (uint32) count;
		return items;
	}
	return palloc(sizeof(sr_value) * count);
}

/*
 * The elements of a one-dimensional array of int2, int4, int8, text or varchar
 * read where the tuple holds it, as shape_array_values reads them. A WAL
 * tuple's array usually has a 1-byte header, so it is not aligned: reading it
 * through ArrayType would copy it first (its elements are aligned from the
 * array's own start, as it was built: here by offset from that start). False
 * for any other array (compressed, other types, more dimensions).
 */
static bool
array_values_in_place(Datum datum, sr_value *value, ItemRoom *room)
{
	struct varlena *array = (struct varlena *) DatumGetPointer(datum);
	const char *start;			/* where the array's 4-byte header would be */
	size_t		size;
	int			ndim;
	int32		dataoffset;
	Oid			elemtype;
	int			nitems;
	int			elmlen;
	char		elmalign;
	size_t		off;
	const bits8 *nulls;
	sr_value   *items;
	int			count = 0;

	/* inline only: not compressed, not a TOAST pointer (1-byte headers of their own) */
	if (VARATT_IS_EXTERNAL(array) || (VARATT_IS_EXTENDED(array) && !VARATT_IS_SHORT(array)))
		return false;
	start = VARDATA_ANY(array) - VARHDRSZ;
	size = VARSIZE_ANY_EXHDR(array) + VARHDRSZ;
	if (size < ARR_OVERHEAD_NONULLS(1))
		return false;
	memcpy(&ndim, start + offsetof(ArrayType, ndim), sizeof(ndim));
	memcpy(&dataoffset, start + offsetof(ArrayType, dataoffset), sizeof(dataoffset));
	memcpy(&elemtype, start + offsetof(ArrayType, elemtype), sizeof(elemtype));
	if (ndim != 1)
		return false;
	memcpy(&nitems, start + sizeof(ArrayType), sizeof(nitems));
	switch (elemtype)
	{
		case INT2OID: elmlen = 2; elmalign = TYPALIGN_SHORT; break;
		case INT4OID: elmlen = 4; elmalign = TYPALIGN_INT; break;
		case INT8OID: elmlen = 8; elmalign = TYPALIGN_DOUBLE; break;
		case TEXTOID:
		case VARCHAROID: elmlen = -1; elmalign = TYPALIGN_INT; break;
		default:
			return false;
	}
	if (nitems < 0 || nitems > (int) size || (dataoffset != 0 && (dataoffset < 0 || (size_t) dataoffset > size)))
		return false;
	/* ARR_NULLBITMAP and ARR_DATA_OFFSET of one dimension */
	nulls = dataoffset != 0 ? (const bits8 *) (start + sizeof(ArrayType) + 2 * sizeof(int)) : NULL;
	off = dataoffset != 0 ? (size_t) dataoffset : ARR_OVERHEAD_NONULLS(1);
	if (nulls != NULL && (size_t) ((const char *) nulls - start) + (nitems + 7) / 8 > off)
		return false;
	items = take_items(room, nitems + 1);
	memset(value, 0, sizeof(sr_value));
	for (int i = 0; i < nitems; i++)
	{
		sr_value   *item = &items[count];
		const char *p;

		if (nulls != NULL && (nulls[i / 8] & (1 << (i % 8))) == 0)
		{
			value->has_null_element = 1;
			continue;
		}
		if (i > 0)
			off = att_align_nominal(off, elmalign);
		p = start + off;
		memset(item, 0, sizeof(sr_value));
		if (elmlen > 0)
		{
			if (off + elmlen > size)
				return false;
			if (elmlen == 2)
			{
				int16		v;

				memcpy(&v, p, sizeof(v));
				item->v.i = v;
			}
			else if (elmlen == 4)
			{
				int32		v;

				memcpy(&v, p, sizeof(v));
				item->v.i = v;
			}
			else
				memcpy(&item->v.i, p, sizeof(int64));
			off += elmlen;
		}
		else
		{
			/* the element's header, copied when of 4 bytes: p need not be aligned */
			size_t		header;
			size_t		element_size;

			if (off + 1 > size || VARATT_IS_1B_E(p))
				return false;
			if (VARATT_IS_1B(p))
			{
				header = VARHDRSZ_SHORT;
				element_size = VARSIZE_1B(p);
			}
			else
			{
				union
				{
					uint32		word;
					char		bytes[4];
				}			head;

				if (off + VARHDRSZ > size)
					return false;
				memcpy(head.bytes, p, VARHDRSZ);
				if (!VARATT_IS_4B_U(head.bytes))
					return false;	/* compressed */
				header = VARHDRSZ;
				element_size = VARSIZE_4B(head.bytes);
			}
			if (off + element_size > size || element_size < header)
				return false;
			item->v.bytes = (const uint8_t *) p + header;
			item->len = (uint32) (element_size - header);
			off += element_size;
		}
		count++;
	}
	value->v.bytes = (const uint8_t *) items;
	value->len = (uint32) count;
	return true;
}

/* An array column's value as its elements (false: unchanged TOAST the WAL lacks). */
static bool
array_from_datum(Datum datum, sr_value *value, ItemRoom *room)
{
	int			count;
	bool		has_null;

	if (VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(datum)))
		return false;
	if (array_values_in_place(datum, value, room))
		return true;
	memset(value, 0, sizeof(sr_value));
	value->v.bytes = (const uint8_t *) shape_array_values(datum, &count, &has_null);
	value->len = (uint32) count;
	value->has_null_element = has_null ? 1 : 0;
	return true;
}

/* How a read step takes its attribute's value */
typedef enum ReadKind
{
	READ_SKIP,					/* walked past, not read */
	READ_INT4,
	READ_WORD,					/* int8 or float8: its 8 bytes, as sr_value holds either */
	READ_TEXT,					/* text or varchar: in place when not compressed */
	READ_DATUM,					/* through value_from_datum */
	READ_ARRAY					/* through array_from_datum */
} ReadKind;

/* One attribute of a lean read: where it is and how its value is taken. */
typedef struct ReadStep
{
	uint32		offset;			/* in a fixed-offset step */
	Oid			typid;
	int16		attlen;
	int16		attnum;
	uint8		alignmask;
	uint8		kind;			/* ReadKind */
	bool		byval;
} ReadStep;

/*
 * A run of fixed-width attributes in a lean walk. Their offsets from where the
 * run starts depend only on that start modulo 8 (the widest alignment): kept
 * for each, so that a run is read without aligning or adding attribute by
 * attribute.
 */
typedef struct RunRead
{
	ReadStep	step;
	uint32		offset[8];		/* from the run's start, by the start's offset % 8 */
} RunRead;

/* One part of a lean walk: a variable-width attribute, or a run of fixed-width ones. */
typedef struct WalkPart
{
	ReadStep	step;			/* the variable-width attribute */
	bool		run;
	uint8		read_from;		/* a run's wanted attributes: lean_run_reads[read_from ...] */
	uint8		read_count;
	uint32		advance[8];		/* a run's length, by its start's offset % 8 */
} WalkPart;

/*
 * What row_values_all makes of a relation's index columns alone: whether the
 * relation still has the types the keys were made with, the last column and
 * the attributes to read. Kept for each reader (the route and the next change's
 * prefetch: a partition's route may read its ancestors' rows in between)
 * while the relation's generation and the router's columns epoch are the same.
 */
typedef struct ReadPlan
{
	Oid			relid;			/* InvalidOid: none */
	uint32		generation;
	uint64		epoch;
	const sr_index_column *columns;
	size_t		column_count;
	bool		readable;
	int			last;
	uint64		wanted;			/* bit attnum - 1, while natts <= TUPLE_KEYS_DEFORM_MAX */
	uint64		arrays;			/* of those, the ones read as their elements */
	uint32		expressions_version;	/* of the relation's expressions it was made with */
	uint64		extra;			/* bit attnum - 1: not an index column, read for native expressions */
	uint64		integers;		/* bit attnum - 1: an integer value read (extra, or an index column) */
	/* The same read as steps (make_lean_read) */
	bool		lean;
	int			lean_fixed_count;	/* the wanted attributes at fixed offsets */
	int			lean_walk_from;	/* then the walk: lean_all from this attribute to the last wanted one */
	uint32		lean_walk_off;	/* where the walk starts; or where the varlena before it does: */
	int16		lean_walk_after;	/* that varlena's attlen (-1, -2), or 0 */
	ReadStep	lean_fixed[TUPLE_KEYS_DEFORM_MAX];
	ReadStep	lean_all[TUPLE_KEYS_DEFORM_MAX];	/* every attribute up to the last (NULLs: all walked) */
	int			lean_part_count;	/* the walk without NULLs, from lean_walk_from to the last */
	WalkPart	lean_parts[TUPLE_KEYS_DEFORM_MAX];
	RunRead		lean_run_reads[TUPLE_KEYS_DEFORM_MAX];
} ReadPlan;

static ReadPlan read_plans[2];	/* by reader: 0 the route, 1 the prefetch */

static ReadStep
read_step_of(const TupleLayout *layout, int a, uint64 wanted, uint64 arrays)
{
	ReadStep	step;

	step.offset = a < layout->fixed ? layout->offset[a] : 0;
	step.typid = layout->typid[a];
	step.attlen = layout->attlen[a];
	step.attnum = (int16) (a + 1);
	step.alignmask = layout->alignmask[a];
	step.byval = layout->byval[a];
	/* the common fixed-width types straight from the tuple */
	step.kind = !((wanted >> a) & 1) ? READ_SKIP
		: step.typid == INT4OID ? READ_INT4
		: step.typid == INT8OID || step.typid == FLOAT8OID ? READ_WORD
		: ((arrays >> a) & 1) ? READ_ARRAY
		: (step.typid == TEXTOID || step.typid == VARCHAROID) && step.attlen == -1 ? READ_TEXT : READ_DATUM;
	return step;
}

/* The parts of a lean walk without NULLs: its variable-width attributes and the runs between them. */
static void
make_walk_parts(ReadPlan *plan, const TupleLayout *layout)
{
	WalkPart   *run = NULL;
	uint32		at[8] = {0};	/* in the open run: the offset reached, by the run's start */
	int			reads = 0;

	plan->lean_part_count = 0;
	for (int a = plan->lean_walk_from; a <= plan->last; a++)
	{
		bool		fixed = a < plan->last && layout->attlen[a] > 0;

		if (run != NULL && !fixed)
		{
			for (int r = 0; r < 8; r++)
				run->advance[r] = at[r] - r;
			run = NULL;
		}
		if (a == plan->last)
			break;
		if (!fixed)
		{
			WalkPart   *part = &plan->lean_parts[plan->lean_part_count++];

			part->step = plan->lean_all[a];
			part->run = false;
			continue;
		}
		if (run == NULL)
		{
			run = &plan->lean_parts[plan->lean_part_count++];
			run->run = true;
			run->read_from = (uint8) reads;
			run->read_count = 0;
			for (int r = 0; r < 8; r++)
				at[r] = r;
		}
		for (int r = 0; r < 8; r++)
			at[r] = (at[r] + layout->alignmask[a]) & ~(uint32) layout->alignmask[a];
		if (plan->lean_all[a].kind != READ_SKIP)
		{
			RunRead    *read = &plan->lean_run_reads[reads++];

			read->step = plan->lean_all[a];
			for (int r = 0; r < 8; r++)
				read->offset[r] = at[r] - r;
			run->read_count++;
		}
		for (int r = 0; r < 8; r++)
			at[r] += layout->attlen[a];
	}
}

/*
 * The read of a relation's wanted attributes (bit a - 1: attnum a; arrays:
 * those read as their elements) as lists of steps, so that the read of each
 * row tests and looks up no more than it must: heap_deform_tuple's walk with
 * the layout in a few bytes an attribute, reading each wanted value where the
 * walk finds it and stopping after the last. Without NULLs, the wanted
 * attributes at fixed offsets are read there and the walk starts after them;
 * with NULLs, it starts at the first attribute.
 */
static void
make_lean_read(ReadPlan *plan, const RelationInfo *rel, size_t column_count)
{
	const TupleLayout *layout;
	int			fixed;

	plan->lean = false;
	if (column_count <= 1 || rel->desc->natts > TUPLE_KEYS_DEFORM_MAX)
		return;
	layout = tuple_layout_of(rel);
	fixed = Min(layout->fixed, plan->last);
	plan->lean_fixed_count = 0;
	plan->lean_walk_from = fixed;
	for (int a = 0; a < fixed; a++)
		if ((plan->wanted >> a) & 1)
			plan->lean_fixed[plan->lean_fixed_count++] = read_step_of(layout, a, plan->wanted, plan->arrays);
	plan->lean_walk_off = 0;
	plan->lean_walk_after = 0;
	if (plan->last > layout->fixed && layout->fixed > 0)
	{
		int			before = layout->fixed - 1;

		plan->lean_walk_off = layout->offset[before];
		if (layout->attlen[before] > 0)
			plan->lean_walk_off += layout->attlen[before];
		else
			plan->lean_walk_after = layout->attlen[before];
	}
	for (int a = 0; a < plan->last; a++)
		plan->lean_all[a] = read_step_of(layout, a, plan->wanted, plan->arrays);
	make_walk_parts(plan, layout);
	plan->lean = true;
}

/* A lean read's value of step s at p (false: as value_from_datum). */
static inline bool
read_step(const ReadStep *s, const char *p, sr_value *values, ItemRoom *items)
{
	sr_value   *value = &values[s->attnum];
	Datum		datum;

	if (likely(s->kind == READ_INT4))
	{
		*value = (sr_value) {.v.i = *(const int32 *) p};
		return true;
	}
	if (likely(s->kind == READ_WORD))
	{
		*value = (sr_value) {.v.i = *(const int64 *) p};
		return true;
	}
	if (s->kind == READ_TEXT)
	{
		/* as shape_value_from_datum reads text, without its call when in place */
		if (VARATT_IS_1B(p) && !VARATT_IS_1B_E(p))
		{
			*value = (sr_value) {.v.bytes = (const uint8_t *) p + VARHDRSZ_SHORT,.len = VARSIZE_1B(p) - VARHDRSZ_SHORT};
			return true;
		}
		if (VARATT_IS_4B_U(p))
		{
			*value = (sr_value) {.v.bytes = (const uint8_t *) p + VARHDRSZ,.len = VARSIZE_4B(p) - VARHDRSZ};
			return true;
		}
	}
	value->is_null = false;
	value->len = 0;
	value->has_null_element = 0;
	datum = fetch_att(p, s->byval, s->attlen);
	return s->kind == READ_ARRAY ? array_from_datum(datum, value, items)
		: value_from_datum(s->typid, s->attlen, datum, value);
}

/* One attribute of a walk at *off (not NULL): aligned, read when wanted, passed. */
static inline bool
walk_step(const ReadStep *s, const char *tp, uintptr_t *off, sr_value *values, ItemRoom *items)
{
	/* A varlena with a 1-byte header is never padded (att_align_pointer). */
	if (s->attlen != -1 || !VARATT_NOT_PAD_BYTE(tp + *off))
		*off = (*off + s->alignmask) & ~(uintptr_t) s->alignmask;
	if (s->kind != READ_SKIP && !read_step(s, tp + *off, values, items))
		return false;
	*off = s->attlen > 0 ? *off + s->attlen : att_addlength_pointer(*off, s->attlen, tp + *off);
	return true;
}

/* The lean read of a tuple with NULLs that has every attribute up to the plan's last. */
static pg_noinline bool
read_lean_nulls(HeapTuple tuple, const ReadPlan *plan, sr_value *values, ItemRoom *items)
{
	const char *tp = (char *) tuple->t_data + tuple->t_data->t_hoff;
	const bits8 *bp = tuple->t_data->t_bits;
	uintptr_t	off = 0;

	for (int a = 0; a < plan->last; a++)
	{
		const ReadStep *s = &plan->lean_all[a];

		if (att_isnull(a, bp))
		{
			if (s->kind != READ_SKIP)
				values[s->attnum].is_null = true;
			continue;
		}
		if (!walk_step(s, tp, &off, values, items))
			return false;
	}
	return true;
}

/* The lean read of a tuple that has every attribute up to the plan's last. */
static inline bool
read_lean(HeapTuple tuple, const ReadPlan *plan, sr_value *values, ItemRoom *items)
{
	const char *tp = (char *) tuple->t_data + tuple->t_data->t_hoff;
	uintptr_t	off = plan->lean_walk_off;

	if (HeapTupleHasNulls(tuple))
		return read_lean_nulls(tuple, plan, values, items);

	for (const ReadStep *s = plan->lean_fixed, *end = s + plan->lean_fixed_count; s < end; s++)
		if (!read_step(s, tp + s->offset, values, items))
			return false;
	if (plan->lean_walk_after != 0)
		off = att_addlength_pointer(off, plan->lean_walk_after, tp + off);
	for (const WalkPart *part = plan->lean_parts, *end = part + plan->lean_part_count; part < end; part++)
	{
		if (part->run)
		{
			const int	r = (int) (off & 7);
			const char *start = tp + off;

			for (const RunRead *read = plan->lean_run_reads + part->read_from, *last = read + part->read_count;
				 read < last; read++)
				if (!read_step(&read->step, start + read->offset[r], values, items))
					return false;
			off += part->advance[r];
		}
		else if (!walk_step(&part->step, tp, &off, values, items))
			return false;
	}
	return true;
}

static void
make_read_plan(ReadPlan *plan, const RelationInfo *rel, const sr_index_column *columns, size_t column_count)
{
	plan->readable = false;
	plan->lean = false;
	plan->last = 0;
	plan->wanted = plan->arrays = plan->integers = 0;
	for (size_t c = 0; c < column_count; c++)
	{
		int			attnum = columns[c].attnum;
		bool		array = (columns[c].tag & SR_TAG_ELEMENT_FLAG) != 0;

		if (SHAPE_ATTNUM_IS_VIRTUAL(attnum))
			continue;
		if (attnum > rel->desc->natts || rel->tags[attnum] != columns[c].tag)
			return;
		plan->last = Max(plan->last, attnum);
		if (attnum > TUPLE_KEYS_DEFORM_MAX)
			continue;
		plan->wanted |= (uint64) 1 << (attnum - 1);
		if (array)
			plan->arrays |= (uint64) 1 << (attnum - 1);
		else if (columns[c].tag == SR_TAG_INT)
			plan->integers |= (uint64) 1 << (attnum - 1);
	}
	/* the integer columns native expressions read (native_arith.c), when not index columns */
	plan->extra = 0;
	for (int e = 0; rel->expressions_native && e < rel->expression_count; e++)
	{
		const IndexExpressionState *indexed = &rel->expressions[e];
		bool		used = false;
		int			attnum = -1;

		for (size_t c = 0; c < column_count && !used; c++)
			used = columns[c].attnum == indexed->attnum;
		while (used && (attnum = bms_next_member(indexed->columns, attnum)) >= 0)
		{
			if (attnum > TUPLE_KEYS_DEFORM_MAX || attnum > rel->desc->natts ||
				((plan->wanted >> (attnum - 1)) & 1))
				continue;
			plan->extra |= (uint64) 1 << (attnum - 1);
			plan->wanted |= (uint64) 1 << (attnum - 1);
			plan->last = Max(plan->last, attnum);
		}
	}
	plan->integers |= plan->extra;
	plan->readable = true;
	make_lean_read(plan, rel, column_count);
}

/* row_values for any number of columns (apart: its room for them costs the one-column case). */
static pg_noinline bool
row_values_all(HeapTuple tuple, const Bitmapset *key_only, const RelationInfo *rel, const sr_index_column *columns,
			   size_t column_count, uint64 columns_epoch, int reader, sr_value *values, ItemRoom *items,
			   uint64 *extra_read)
{
	Datum		deformed_values[TUPLE_KEYS_DEFORM_MAX];
	bool		nulls[TUPLE_KEYS_DEFORM_MAX];
	int			natts = rel->desc->natts;
	bool		deformed = false;
	ReadPlan   *plan = &read_plans[reader];

	StaticAssertStmt(TUPLE_KEYS_DEFORM_MAX <= 64, "wanted has a bit an attribute");
	if (plan->relid != rel->relid || plan->generation != rel->generation || plan->epoch != columns_epoch ||
		plan->columns != columns || plan->column_count != column_count || columns_epoch == 0 ||
		plan->expressions_version != rel->expressions_version)
	{
		plan->relid = InvalidOid;
		make_read_plan(plan, rel, columns, column_count);
		plan->relid = rel->relid;
		plan->generation = rel->generation;
		plan->epoch = columns_epoch;
		plan->columns = columns;
		plan->column_count = column_count;
		plan->expressions_version = rel->expressions_version;
	}
	if (!plan->readable)
		return false;
	/* a key-only old row: every column must be one of its key's */
	for (size_t c = 0; c < column_count && key_only != NULL; c++)
		if (!SHAPE_ATTNUM_IS_VIRTUAL(columns[c].attnum) && !bms_is_member(columns[c].attnum, key_only))
			return false;
	/* Several columns: one pass over the tuple (heap_getattr walks it from the
	 * start for every column behind a variable-width one). */
	if (plan->lean && plan->last <= HeapTupleHeaderGetNatts(tuple->t_data))
	{
		*extra_read = plan->integers;
		return read_lean(tuple, plan, values, items);
	}
	if (column_count > 1 && natts <= TUPLE_KEYS_DEFORM_MAX)
	{
		/* A tuple older than an added column lacks it: heap_deform_tuple reads
		 * its default (attmissingval). */
		heap_deform_tuple(tuple, rel->desc, deformed_values, nulls);
		deformed = true;
	}
	for (size_t c = 0; c < column_count; c++)
	{
		int			attnum = columns[c].attnum;
		bool		array = (columns[c].tag & SR_TAG_ELEMENT_FLAG) != 0;
		sr_value   *value = &values[attnum];
		Form_pg_attribute attr;
		bool		isnull;
		Datum		datum;

		if (SHAPE_ATTNUM_IS_VIRTUAL(attnum))
			continue;
		attr = TupleDescAttr(rel->desc, attnum - 1);
		if (deformed)
		{
			datum = deformed_values[attnum - 1];
			isnull = nulls[attnum - 1];
		}
		else
			datum = heap_getattr(tuple, attnum, rel->desc, &isnull);
		value->is_null = isnull;
		if (!isnull && !(array ? array_from_datum(datum, value, items)
						 : value_from_datum(attr->atttypid, attr->attlen, datum, value)))
			return false;
	}
	*extra_read = plan->integers;
	for (uint64 extra = plan->extra; extra != 0; extra &= extra - 1)
	{
		int			attnum = pg_rightmost_one_pos64(extra) + 1;
		Form_pg_attribute attr = TupleDescAttr(rel->desc, attnum - 1);
		bool		isnull;
		Datum		datum = deformed ? deformed_values[attnum - 1] : heap_getattr(tuple, attnum, rel->desc, &isnull);

		if (deformed)
			isnull = nulls[attnum - 1];
		values[attnum].is_null = isnull;
		if (!isnull && !value_from_datum(attr->atttypid, attr->attlen, datum, &values[attnum]))
			return false;
	}
	return true;
}

/*
 * row_values for one plain column: what most relations are keyed on, read
 * with heap_getattr (its cached offset), without the general case's setup.
 */
static bool
row_value_one(HeapTuple tuple, const Bitmapset *key_only, const RelationInfo *rel, const sr_index_column *column,
			  sr_value *values, ItemRoom *items)
{
	int			attnum = column->attnum;
	bool		array = (column->tag & SR_TAG_ELEMENT_FLAG) != 0;
	sr_value   *value = &values[attnum];
	Form_pg_attribute attr;
	int32		offset;
	bool		isnull;
	Datum		datum;

	if (attnum > rel->desc->natts || rel->tags[attnum] != column->tag ||
		(key_only != NULL && !bms_is_member(attnum, key_only)))
		return false;
	attr = TupleDescAttr(rel->desc, attnum - 1);
	offset = sr_attcacheoff(rel->desc, attnum - 1);
	/* fastgetattr's common case, inline (the compiler calls heap_getattr) */
	if (HeapTupleNoNulls(tuple) && offset >= 0 && attnum <= HeapTupleHeaderGetNatts(tuple->t_data))
	{
		datum = fetch_att((char *) tuple->t_data + tuple->t_data->t_hoff + offset, attr->attbyval, attr->attlen);
		isnull = false;
	}
	else
		datum = heap_getattr(tuple, attnum, rel->desc, &isnull);
	value->is_null = isnull;
	return isnull || (array ? array_from_datum(datum, value, items)
					  : value_from_datum(attr->atttypid, attr->attlen, datum, value));
}

/*
 * A row version's values of the relation's index columns, read straight from
 * the decoded tuple (no deform of the whole row) into values[attnum], as the
 * VM reads them: the per-change view the router keys (sr_router_route) and the
 * candidates' programs then read. Virtual columns are the expressions'
 * (row_expressions). reader: which read plan to keep (0: the route's, 1: the
 * next change's prefetch). Array elements go to items while it has room
 * (NULL: none), else to palloc'd memory. *extra_read: the integer columns
 * whose values were read, for native expressions (ReadPlan.integers), 0 when
 * none.
 * Returns false when the index cannot be trusted for this row: a column's
 * type no longer matches the one its keys were made with (a bypassed DDL
 * guard), its value is an unchanged TOASTed one the WAL does not carry, or
 * the tuple is a key-only old row that lacks the column.
 */
static inline bool
row_values(HeapTuple tuple, const Bitmapset *key_only, const RelationInfo *rel, const sr_index_column *columns,
		   size_t column_count, uint64 columns_epoch, int reader, sr_value *values, ItemRoom *items,
		   uint64 *extra_read)
{
	const ReadPlan *plan = &read_plans[reader];

	*extra_read = 0;
	if (column_count == 1 && !SHAPE_ATTNUM_IS_VIRTUAL(columns[0].attnum))
		return row_value_one(tuple, key_only, rel, &columns[0], values, items);
	/* the common case inline: a full row without NULLs, the plan made */
	if (plan->generation == rel->generation && plan->relid == rel->relid && plan->epoch == columns_epoch &&
		plan->columns == columns && plan->column_count == column_count && columns_epoch != 0 &&
		plan->expressions_version == rel->expressions_version && plan->lean && key_only == NULL &&
		plan->last <= HeapTupleHeaderGetNatts(tuple->t_data))
	{
		*extra_read = plan->integers;
		return read_lean(tuple, plan, values, items);
	}
	return row_values_all(tuple, key_only, rel, columns, column_count, columns_epoch, reader, values, items,
						  extra_read);
}

/* Room for a row's values by attnum: buffer when it is large enough. */
static sr_value *
values_by_attnum(const RelationInfo *rel, sr_value *buffer, int buffer_len)
{
	if (rel->desc->natts < buffer_len)
		return buffer;
	return palloc(sizeof(sr_value) * (rel->desc->natts + 1));
}

/*
 * The change that will be decoded right after this one, when that is certain:
 * PostgreSQL replays the changes of a transaction without subtransactions,
 * none of them spilled to disk, in the order of txn->changes, and frees none
 * before the transaction ends. NULL otherwise.
 */
static ReorderBufferChange *
next_change(ReorderBufferTXN *txn, ReorderBufferChange *change)
{
	if (change->txn != txn || txn->nsubtxns > 0 || txn->nentries != txn->nentries_mem ||
		rbtxn_is_serialized(txn) || rbtxn_is_serialized_clear(txn) || rbtxn_is_streamed(txn) ||
		!dlist_has_next(&txn->changes, &change->node))
		return NULL;
	return dlist_container(ReorderBufferChange, node, dlist_next_node(&txn->changes, &change->node));
}

/*
 * What route_prepare asks of a relation's index columns on every change: the
 * columns with lowered substring atoms (ILIKE: the rows' text is then lowered
 * for their keys) and the expressions' columns, apart, so that those steps
 * read only theirs. Kept while the router's columns epoch stays.
 */
#define COLUMNS_TRAITS_MAX 16
typedef struct ColumnsTraits
{
	bool		lower;
	bool		virtual;
	/* those columns, or all of them when more than COLUMNS_TRAITS_MAX */
	const sr_index_column *lowered;
	size_t		lowered_count;
	const sr_index_column *virtuals;
	size_t		virtual_count;
	sr_index_column lowered_room[COLUMNS_TRAITS_MAX];
	sr_index_column virtual_room[COLUMNS_TRAITS_MAX];
} ColumnsTraits;

static uint64 known_epoch;
static const sr_index_column *known_columns;
static size_t known_count;
static ColumnsTraits known;

static pg_noinline void
columns_traits_make(const sr_index_column *columns, size_t column_count, uint64 epoch)
{
	ColumnsTraits *t = &known;

	t->lowered_count = t->virtual_count = 0;
	for (size_t c = 0; c < column_count; c++)
	{
		bool		virtual = SHAPE_ATTNUM_IS_VIRTUAL(columns[c].attnum);

		if (virtual && t->virtual_count < COLUMNS_TRAITS_MAX)
			t->virtual_room[t->virtual_count] = columns[c];
		t->virtual_count += virtual;
		if (!virtual && (columns[c].substring_grams >> 8) != 0 && t->lowered_count < COLUMNS_TRAITS_MAX)
			t->lowered_room[t->lowered_count] = columns[c];
		t->lowered_count += !virtual && (columns[c].substring_grams >> 8) != 0;
	}
	t->lower = t->lowered_count > 0;
	t->virtual = t->virtual_count > 0;
	t->lowered = t->lowered_count <= COLUMNS_TRAITS_MAX ? t->lowered_room : columns;
	t->virtuals = t->virtual_count <= COLUMNS_TRAITS_MAX ? t->virtual_room : columns;
	if (t->lowered_count > COLUMNS_TRAITS_MAX)
		t->lowered_count = column_count;
	if (t->virtual_count > COLUMNS_TRAITS_MAX)
		t->virtual_count = column_count;
	known_epoch = epoch;
	known_columns = columns;
	known_count = column_count;
}

static inline const ColumnsTraits *
columns_traits(const sr_index_column *columns, size_t column_count, uint64 epoch)
{
	if (epoch != known_epoch || columns != known_columns || column_count != known_count || epoch == 0)
		columns_traits_make(columns, column_count, epoch);
	return &known;
}

/*
 * The values prefetch_next_change read for a change, kept so that
 * route_prepare need not read them again when that change comes: valid only
 * while what they were read from is the same (the router, the relation's
 * build, the router's index columns (its columns epoch), the change's record
 * and tuples). Two: the change being routed was prefetched one call before
 * the next one is. Each has its own memory context and room for array
 * elements (values may point into either), reset when it is reused.
 */

typedef struct NextRows
{
	const sr_router *router;	/* NULL: empty */
	MemoryContext context;
	XLogRecPtr	lsn;
	HeapTupleHeader newdata;	/* the tuples' data and lengths */
	HeapTupleHeader olddata;
	uint32		newlen;
	uint32		oldlen;
	Oid			relid;
	uint32		generation;
	uint64		epoch;			/* sr_router_columns_epoch */
	const sr_index_column *columns;
	size_t		column_count;
	bool		trusted;
	uint64		token;			/* the router keeps the keys it made under it (0: it did not) */
	uint64		extra;			/* the integer columns read, for native expressions (ReadPlan.integers) */
	sr_value   *new_values;		/* by attnum, or NULL: no such row */
	sr_value   *old_values;
	sr_value   *buffers[2];		/* their room, kept across changes */
	sr_value   *lowered_buffers[2];	/* room for the rows' lowered text */
	int			buffer_len;		/* entries in each */
	/* complete: what route_prepare would make of the values too, and every
	 * key was made from them; by row (new, old), while expressions_version
	 * is the relation's */
	bool		complete;
	uint32		expressions_version;
	sr_value   *lowered[2];
	const sr_expression_value *expressions[2];
	const int  *sources[2];
	size_t		expression_counts[2];
	ExpressionRoom rooms[2];
	ItemRoom	items;			/* the rows' array elements */
} NextRows;

static NextRows next_rows[2];
static int	next_rows_written;
static uint64 next_rows_tokens;

/* At a session's end: what was read for a change that will not come. */
void
forget_next_rows(void)
{
	for (int i = 0; i < 2; i++)
	{
		next_rows[i].router = NULL;
		if (next_rows[i].context != NULL)
			MemoryContextReset(next_rows[i].context);
	}
}

/* The kept values of these rows, or NULL; old rows only in full (as prefetched). */
static NextRows *
next_rows_for(const sr_router *router, const RelationInfo *rel, XLogRecPtr lsn, HeapTuple newtuple,
			  HeapTuple oldtuple, const sr_index_column *columns, size_t column_count, uint64 epoch)
{
	for (int i = 0; i < 2; i++)
	{
		NextRows   *k = &next_rows[i];

		if (k->router == router && k->lsn == lsn && k->relid == rel->relid && k->generation == rel->generation &&
			k->newdata == (newtuple != NULL ? newtuple->t_data : NULL) &&
			k->olddata == (oldtuple != NULL ? oldtuple->t_data : NULL) &&
			k->newlen == (newtuple != NULL ? newtuple->t_len : 0) &&
			k->oldlen == (oldtuple != NULL ? oldtuple->t_len : 0) &&
			k->epoch == epoch && k->columns == columns && k->column_count == column_count)
			return k;
	}
	return NULL;
}

/*
 * The rest of what route_prepare makes of a prefetched change's values, into
 * its views: the rows' lowered text and their native expressions' results.
 * False when route_prepare would decide otherwise (an expression left to the
 * executor, or untrusted): it then makes them itself.
 */
static bool
complete_views(RouterState *state, RelationInfo *rel, NextRows *k, HeapTuple newtuple, HeapTuple oldtuple,
			   const ColumnsTraits *traits, sr_row_view *new_view, sr_row_view *old_view)
{
	static sr_counters uncounted;	/* route_prepare counts the results it takes */
	sr_row_view *views[2] = {new_view, old_view};
	const sr_value *values[2] = {k->new_values, k->old_values};
	HeapTuple	tuples[2] = {newtuple, oldtuple};

	if (traits->virtual)
	{
		relation_expressions(state, rel);
		if (!rel->expressions_native)
			return false;
		k->expressions_version = rel->expressions_version;
	}
	for (int i = 0; i < 2; i++)
	{
		bool		trusted = true;

		k->lowered[i] = NULL;
		k->expressions[i] = NULL;
		k->sources[i] = NULL;
		k->expression_counts[i] = 0;
		if (values[i] == NULL)
			continue;
		if (traits->lower)
			views[i]->lowered = k->lowered[i] =
				shape_lowered_values(rel, traits->lowered, traits->lowered_count, values[i], k->lowered_buffers[i],
									 k->buffer_len);
		if (!traits->virtual)
			continue;
		/* (an old row here is in full: no key-only columns) */
		if (!shape_native_expression_values(rel, tuples[i], values[i], k->extra, NULL, traits->virtuals,
											traits->virtual_count, &k->expressions[i], &k->sources[i],
											&k->expression_counts[i], &trusted, &uncounted, &k->rooms[i]) ||
			!trusted)
			return false;
		views[i]->expressions = k->expressions[i];
		views[i]->expression_count = k->expression_counts[i];
	}
	return true;
}

/*
 * With a large index, the filter lines a change's lookup reads are rarely in
 * cache: start loading those of the next change of the same table now, so that
 * they arrive while PostgreSQL decodes it. Only a hint: what the next change
 * routes to is decided when it comes, from its own rows (with the values read
 * here, when nothing they came from changed).
 */
void
prefetch_next_change(RouterState *state, ReorderBufferTXN *txn, ReorderBufferChange *change,
					 Relation relation, RelationInfo *rel,
					 const sr_index_column *columns, size_t column_count)
{
	ReorderBufferChange *next = next_change(txn, change);
	HeapTuple	newtuple;
	HeapTuple	oldtuple;
	NextRows   *k;
	MemoryContext old;
	sr_row_view new_view = {0};
	sr_row_view old_view = {0};
	bool		keep = false;
	uint64		epoch = sr_router_columns_epoch(state->router);
	const ColumnsTraits *traits;

	if (next == NULL ||
		(next->action != REORDER_BUFFER_CHANGE_INSERT && next->action != REORDER_BUFFER_CHANGE_UPDATE &&
		 next->action != REORDER_BUFFER_CHANGE_DELETE) ||
		!sr_change_on_relation(next, relation))
		return;
	newtuple = sr_change_new_tuple(next);
	oldtuple = sr_change_old_tuple(next);
	k = &next_rows[next_rows_written];
	next_rows_written ^= 1;
	k->router = NULL;
	if (k->context == NULL)
		k->context = AllocSetContextCreate(TopMemoryContext, "shape_router next change", ALLOCSET_SMALL_SIZES);
	if (k->buffer_len <= rel->desc->natts)
	{
		k->buffer_len = 0;
		for (int i = 0; i < 2; i++)
		{
			if (k->buffers[i] != NULL)
				pfree(k->buffers[i]);
			if (k->lowered_buffers[i] != NULL)
				pfree(k->lowered_buffers[i]);
			/* an allocation error must not leave them freed twice */
			k->buffers[i] = k->lowered_buffers[i] = NULL;
			k->buffers[i] = MemoryContextAlloc(TopMemoryContext, sizeof(sr_value) * (rel->desc->natts + 1));
			k->lowered_buffers[i] = MemoryContextAlloc(TopMemoryContext, sizeof(sr_value) * (rel->desc->natts + 1));
		}
		k->buffer_len = rel->desc->natts + 1;
	}
	/* What the values point into (detoasted text, numerics, long arrays);
	 * nothing to free when they were all read in place. */
	reset_if_used(k->context);
	k->items.used = 0;
	old = MemoryContextSwitchTo(k->context);
	k->new_values = k->old_values = NULL;
	k->extra = 0;
	k->trusted = true;
	/* Every value route_prepare reads (arrays and the columns of native
	 * expressions too), so that it reads none again. */
	if (newtuple != NULL)
	{
		k->new_values = k->buffers[0];
		k->trusted = row_values(newtuple, NULL, rel, columns, column_count, epoch, 1, k->new_values, &k->items,
								&k->extra);
		new_view.values = k->new_values;
	}
	if (oldtuple != NULL && rel->identity_full && k->trusted)
	{
		k->old_values = k->buffers[1];
		k->trusted = row_values(oldtuple, NULL, rel, columns, column_count, epoch, 1, k->old_values, &k->items,
								&k->extra);
		old_view.values = k->old_values;
	}
	/* The lowered text and native expression results route_prepare would make
	 * of these values: with them, the router makes every key now (else the
	 * plain columns' keys, and the rest when the change is routed). */
	traits = columns_traits(columns, column_count, epoch);
	k->complete = k->trusted &&
		(!(traits->lower || traits->virtual) ||
		 complete_views(state, rel, k, newtuple, oldtuple, traits, &new_view, &old_view));
	MemoryContextSwitchTo(old);
	k->token = 0;
	if (k->trusted &&
		sr_router_prefetch_rows(state->router, rel->relid, newtuple != NULL ? &new_view : NULL,
								k->old_values != NULL ? &old_view : NULL, next_rows_tokens + 1,
								k->complete ? 1 : 0) != 0)
		k->token = ++next_rows_tokens;
	k->complete = k->complete && k->token != 0;
	keep = k->trusted;
	state->counters->prefetches++;
	/* Kept when route_prepare would read the same: an old row only in full. */
	if (keep && (oldtuple == NULL || rel->identity_full))
	{
		k->lsn = next->lsn;
		k->newdata = newtuple != NULL ? newtuple->t_data : NULL;
		k->olddata = oldtuple != NULL ? oldtuple->t_data : NULL;
		k->newlen = newtuple != NULL ? newtuple->t_len : 0;
		k->oldlen = oldtuple != NULL ? oldtuple->t_len : 0;
		k->relid = rel->relid;
		k->generation = rel->generation;
		k->epoch = epoch;
		k->columns = columns;
		k->column_count = column_count;
		k->router = state->router;
	}
}

/* The VM reads the values the router was given: no second conversion. */
static void
image_take_values(RowImage *image, const sr_value *values, const sr_index_column *columns, size_t column_count)
{
	for (size_t c = 0; c < column_count; c++)
	{
		int			attnum = columns[c].attnum;

		if (SHAPE_ATTNUM_IS_VIRTUAL(attnum))
			continue;
		image->values[attnum] = values[attnum];
		image->converted[attnum] = true;
	}
}

/* The programs read the expressions' results the router was given (fallbacks
 * on them need no executor call: shape_eval.c). */
static void
image_take_expressions(RowImage *image, const RelationInfo *rel, const sr_row_view *view, const int *sources)
{
	if (view->expressions == NULL || sources == NULL)
		return;
	image->expressions = view->expressions;
	image->expression_sources = sources;
	image->expression_count = view->expression_count;
	image->expression_states = rel->expressions;
	image->expression_state_count = rel->expression_count;
	image->expressions_version = rel->expressions_version;
}

/*
 * The change's rows in the relation's slots, for the executor to evaluate
 * expressions on (once: made already when *new_slot or *old_slot is set), and
 * the new row's unchanged TOAST columns.
 */
static void
expression_slots(RelationInfo *rel, const ChangeRows *change, TupleTableSlot **old_slot, TupleTableSlot **new_slot,
				 Bitmapset **unchanged_toast)
{
	if (*old_slot != NULL || *new_slot != NULL)
		return;
	if (change->oldtuple != NULL)
		*old_slot = store_tuple(rel->old_slot, change->oldtuple);
	if (change->newtuple != NULL)
	{
		*new_slot = store_tuple(rel->new_slot, change->newtuple);
		*unchanged_toast = patch_unchanged_toast(*new_slot, *old_slot, change->identity_full);
	}
}

/*
 * Row `row` (0 new, 1 old) of a prefetch that made its views' rest: its values,
 * and the lowered text and expression results route_prepare would have made
 * (what the relation's columns ask for), into view; returns the results' sources.
 */
static const int *
take_made_view(RouterState *state, const NextRows *made, int row, bool lowers, bool virtual, sr_value *values,
			   sr_row_view *view)
{
	view->values = values;
	if (lowers)
		view->lowered = made->lowered[row];
	if (!virtual)
		return NULL;
	view->expressions = made->expressions[row];
	view->expression_count = made->expression_counts[row];
	state->counters->native_expressions += made->expression_counts[row];
	return made->sources[row];
}

/*
 * The routing index first, from the raw tuples: most changes match no shape and
 * stop here, before the rows are deformed. Returns false when no shape of rel
 * is a candidate.
 */
bool
route_prepare(RouterState *state, RelationInfo *rel, const ChangeRows *change,
			  const sr_index_column *columns, size_t column_count, bool keep_candidates, Route *route)
{
	sr_value	new_buffer[32];
	sr_value	old_buffer[32];
	sr_value	new_lowered[32];
	sr_value	old_lowered[32];
	sr_row_view new_view = {0};
	sr_row_view old_view = {0};
	const int  *new_sources = NULL;
	const int  *old_sources = NULL;
	sr_value   *new_values = NULL;
	sr_value   *old_values = NULL;
	bool		trusted = true;
	const sr_shape_ref *shapes;
	size_t		shape_count;
	HeapTuple	newtuple = change->newtuple;
	HeapTuple	oldtuple = change->oldtuple;
	const Bitmapset *old_key_only = change->identity_full ? NULL
		: change->identity_key != NULL ? change->identity_key : bms_make_singleton(0);
	NextRows   *kept;
	const NextRows *made = NULL;	/* a prefetch that made the views' rest too */
	uint64		prefetched = 0;
	uint64		extra = 0;		/* ReadPlan.integers of the values' read */
	uint64		epoch = sr_router_columns_epoch(state->router);
	const ColumnsTraits *traits = columns_traits(columns, column_count, epoch);
	bool		virtual = traits->virtual;
	bool		lowers = traits->lower;
	const sr_index_column *lowered_columns = traits->lowered;
	size_t		lowered_count = traits->lowered_count;
	const sr_index_column *virtual_columns = traits->virtuals;
	size_t		virtual_count = traits->virtual_count;
	/* The rows' expression results, read until the change is routed: kept
	 * here unless another relation's route follows (a partition's ancestors). */
	static ExpressionRoom rooms[2];
	ExpressionRoom *new_room = keep_candidates ? NULL : &rooms[0];
	ExpressionRoom *old_room = keep_candidates ? NULL : &rooms[1];
	static ItemRoom item_room;	/* (the rows' array elements: the same) */
	ItemRoom   *items = keep_candidates ? NULL : &item_room;
	TupleTableSlot *old_slot = NULL;
	TupleTableSlot *new_slot = NULL;
	Bitmapset  *unchanged_toast = NULL;

	if (items != NULL)
		items->used = 0;
	if (virtual)
	{
		relation_expressions(state, rel);
		/* The executor evaluates expressions on the deformed rows, which the shapes then read. */
		if (!rel->expressions_native)
			expression_slots(rel, change, &old_slot, &new_slot, &unchanged_toast);
	}

	if (state->prefetch && (oldtuple == NULL || change->identity_full) &&
		(kept = next_rows_for(state->router, rel, change->lsn, newtuple, oldtuple, columns, column_count, epoch)) != NULL)
	{
		/* read when this change was prefetched */
		new_values = kept->new_values;
		old_values = kept->old_values;
		trusted = kept->trusted;
		prefetched = kept->token;
		extra = kept->extra;
		kept->router = NULL;
		/* and the rest made then, from expressions the relation still has */
		if (kept->complete && (!virtual || kept->expressions_version == rel->expressions_version))
			made = kept;
		else if (kept->complete)
			prefetched = 0;		/* its keys are of other expressions */
	}
	else
	{
		if (newtuple != NULL)
		{
			new_values = values_by_attnum(rel, new_buffer, lengthof(new_buffer));
			trusted = row_values(newtuple, NULL, rel, columns, column_count, epoch, 0, new_values, items, &extra);
		}
		if (oldtuple != NULL && trusted)
		{
			old_values = values_by_attnum(rel, old_buffer, lengthof(old_buffer));
			trusted = row_values(oldtuple, old_key_only, rel, columns, column_count, epoch, 0, old_values, items,
								 &extra);
		}
	}
	if (trusted && new_values != NULL && made != NULL)
		new_sources = take_made_view(state, made, 0, lowers, virtual, new_values, &new_view);
	else if (trusted && new_values != NULL)
	{
		new_view.values = new_values;
		if (lowers)
			new_view.lowered = shape_lowered_values(rel, lowered_columns, lowered_count, new_values, new_lowered,
													lengthof(new_lowered));
		if (virtual &&
			!(rel->expressions_native &&
			  shape_native_expression_values(rel, newtuple, new_values, extra,
											 NULL, virtual_columns, virtual_count,
											 &new_view.expressions, &new_sources, &new_view.expression_count,
											 &trusted, state->counters, new_room)))
		{
			expression_slots(rel, change, &old_slot, &new_slot, &unchanged_toast);
			trusted = shape_expression_values(rel, new_slot, unchanged_toast, NULL, state->econtext, virtual_columns,
											  virtual_count, &new_view.expressions, &new_sources,
											  &new_view.expression_count, new_room);
		}
	}
	if (trusted && old_values != NULL && made != NULL)
		old_sources = take_made_view(state, made, 1, lowers, virtual, old_values, &old_view);
	else if (trusted && old_values != NULL)
	{
		old_view.values = old_values;
		if (lowers)
			old_view.lowered = shape_lowered_values(rel, lowered_columns, lowered_count, old_values, old_lowered,
													lengthof(old_lowered));
		if (virtual &&
			!(rel->expressions_native &&
			  shape_native_expression_values(rel, oldtuple, old_values, extra,
											 old_key_only, virtual_columns, virtual_count,
											 &old_view.expressions, &old_sources, &old_view.expression_count,
											 &trusted, state->counters, old_room)))
		{
			expression_slots(rel, change, &old_slot, &new_slot, &unchanged_toast);
			trusted = shape_expression_values(rel, old_slot, NULL, old_key_only, state->econtext, virtual_columns,
											  virtual_count, &old_view.expressions, &old_sources,
											  &old_view.expression_count, old_room);
		}
	}
	if (oldtuple == NULL && change->action == REORDER_BUFFER_CHANGE_UPDATE && !change->identity_full)
	{
		/* No old row logged: the key did not change; unless a shape's index
		 * column lies outside the key, the new row's keys are the old row's. */
		for (size_t c = 0; c < column_count && trusted; c++)
			trusted = SHAPE_ATTNUM_IS_VIRTUAL(columns[c].attnum)
				? shape_expression_columns_within(rel, columns[c].attnum, change->identity_key)
				: bms_is_member(columns[c].attnum, change->identity_key);
	}
	else if (oldtuple == NULL && change->action != REORDER_BUFFER_CHANGE_INSERT)
		trusted = false;
	shape_router_check_status(sr_router_route(state->router, rel->relid, newtuple != NULL ? &new_view : NULL,
											  oldtuple != NULL ? &old_view : NULL, trusted ? 1 : 0,
											  prefetched, &shapes, &shape_count),
							  "find candidate shapes");
	if (shape_count == 0)
		return false;

	memset(route, 0, sizeof(Route));
	route->rel = rel;
	route->change = *change;
	/* The router's result is overwritten by the next relation's query: a copy
	 * when one may follow (a partition's ancestors). */
	if (keep_candidates)
	{
		sr_shape_ref *copy = palloc(sizeof(sr_shape_ref) * shape_count);

		memcpy(copy, shapes, sizeof(sr_shape_ref) * shape_count);
		shapes = copy;
	}
	route->shapes = shapes;
	route->shape_count = shape_count;
	route->info.desc = rel->desc;
	route->info.tags = rel->tags;
	route->info.generation = rel->generation;
	route->info.context = state->context;
	if (oldtuple != NULL)
	{
		route->rows.old_row = old_slot != NULL ? old_slot : store_tuple(rel->old_slot, oldtuple);
		route->rows.old_key_only = !change->identity_full;
		route->rows.old_key_columns = change->identity_key;
		row_image_init(&route->old_image, route->rows.old_row, NULL);
		route->old_image.key_only = route->rows.old_key_only;
		route->old_image.key_columns = change->identity_key;
		if (trusted && old_values != NULL)
			image_take_values(&route->old_image, old_values, columns, column_count);
		if (trusted)
			image_take_expressions(&route->old_image, rel, &old_view, old_sources);
	}
	if (newtuple != NULL)
	{
		if (new_slot != NULL)
		{
			route->rows.new_row = new_slot;
			route->rows.unchanged_toast = unchanged_toast;
		}
		else
		{
			route->rows.new_row = store_tuple(rel->new_slot, newtuple);
			route->rows.unchanged_toast = patch_unchanged_toast(route->rows.new_row, route->rows.old_row,
																change->identity_full);
		}
		row_image_init(&route->new_image, route->rows.new_row, route->rows.unchanged_toast);
		if (trusted && new_values != NULL)
			image_take_values(&route->new_image, new_values, columns, column_count);
		if (trusted)
			image_take_expressions(&route->new_image, rel, &new_view, new_sources);
	}
	return true;
}


/* Evaluates one candidate shape on the change's rows and emits its record, if any. */
static void
route_shape(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn, Route *route,
			ShapeState *shape, uint8 exact)
{
	const ChangeRows *change = &route->change;
	RelationInfo *rel = route->rel;
	RecordRows *rows_ptr = &route->rows;
	RelationEvalInfo *info_ptr = &route->info;
	char	   *message = NULL;
	sr_row_match	old_match = SR_ROW_NO;
	sr_row_match	new_match = SR_ROW_NO;
	RecordOp	op;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			new_match = match_row(state, shape, exact, SR_EXACT_NEW, &route->new_image, info_ptr, &message);
			op = RECORD_INSERT;
			if (new_match == SR_ROW_NO)
				return;
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			new_match = match_row(state, shape, exact, SR_EXACT_NEW, &route->new_image, info_ptr, &message);
			if (new_match == SR_ROW_ERROR || new_match == SR_ROW_DISABLED)
				old_match = new_match;
			else if (rows_ptr->old_row != NULL && (exact & SR_EXACT_DECIDED))
				old_match = match_row(state, shape, exact, SR_EXACT_OLD, &route->old_image, info_ptr, &message);
			else if (rows_ptr->old_row == NULL)
			{
				/* Key unchanged: if the WHERE reads only key columns, old = new. */
				if (change->identity_full ||
					bms_is_subset(shape->form->where_columns, change->identity_key))
					old_match = new_match;
				else
					old_match = evaluate(state, shape, NULL, info_ptr, &message);
			}
			else if (!bms_overlap(rows_ptr->unchanged_toast, shape->form->where_columns) &&
					 rows_agree_on(rows_ptr->old_row, rows_ptr->new_row, shape->form->where_columns))
				old_match = new_match;	/* nothing the WHERE reads changed: evaluate once */
			else
				old_match = evaluate(state, shape, &route->old_image, info_ptr, &message);
			switch (sr_decide_update(old_match, new_match))
			{
				case SR_UPDATE_NONE:
					return;
				case SR_UPDATE_UPDATE:
					op = RECORD_UPDATE;
					break;
				case SR_UPDATE_MOVE_IN:
					op = RECORD_MOVE_IN;
					break;
				case SR_UPDATE_MOVE_OUT:
					op = RECORD_MOVE_OUT;
					break;
				case SR_UPDATE_ERROR:
				case SR_UPDATE_DISABLED:
				default:
					op = RECORD_ERROR;	/* (disabled: below) */
					break;
			}
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			old_match = match_row(state, shape, exact, SR_EXACT_OLD,
								  rows_ptr->old_row != NULL ? &route->old_image : NULL, info_ptr, &message);
			op = RECORD_DELETE;
			if (old_match == SR_ROW_NO)
				return;
			break;
		default:
			return;
	}
	if (new_match == SR_ROW_DISABLED || old_match == SR_ROW_DISABLED)
	{
		/* One error record says the shape stopped; then it is skipped. */
		if (shape->disabled_reported)
			return;
		shape->disabled_reported = true;
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("shape_router disabled shape " INT64_FORMAT ": %s",
						shape->shape_id, message)));
		message = psprintf("shape disabled: %s", message);
		op = RECORD_ERROR;
	}
	else if (new_match == SR_ROW_ERROR || old_match == SR_ROW_ERROR)
		op = RECORD_ERROR;
	emit_row_record(ctx, state, txn, shape, op, rel, rows_ptr, change->lsn,
					op == RECORD_ERROR ? message : NULL);
}

/*
 * Routes one change through the shapes of each table that sees it (the table,
 * and for a partition its ancestors), records in ascending shape order.
 */
void
route_all(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn,
		  Route *routes, int route_count)
{
	state->change_number++;		/* a new change: evaluator memos are stale */
	for (;;)
	{
		Route	   *best = NULL;
		const sr_shape_ref *ref;

		for (int r = 0; r < route_count; r++)
			if (routes[r].next < routes[r].shape_count &&
				(best == NULL || routes[r].shapes[routes[r].next].shape_id < best->shapes[best->next].shape_id))
				best = &routes[r];
		if (best == NULL)
			return;
		ref = &best->shapes[best->next++];
		route_shape(ctx, state, txn, best, shape_state(state, ref, best->rel->relid), ref->exact);
	}
}

/*
 * A change to a partition also goes to the shapes of its ancestors (each level
 * of a multi-level tree), with the row converted to the ancestor's layout.
 * Appends their routes; returns the new count.
 */
int
ancestor_routes(RouterState *state, Relation partition, const ChangeRows *rows, Route *routes, int route_count)
{
	RelationInfo *info = relation_info(state, partition);

	for (int i = 0; i < info->ancestor_count; i++)
	{
		const AncestorRoute *ancestor = &info->ancestors[i];
		const sr_index_column *columns;
		size_t		column_count;
		RelationInfo *rel;
		ChangeRows	converted = *rows;

		if (sr_router_relation(state->router, ancestor->relid, &columns, &column_count) == 0)
			continue;
		rel = relation_info_by_id(state, ancestor->relid);
		if (rel == NULL)
			continue;
		if (ancestor->map != NULL)
		{
			if (rows->newtuple != NULL)
				converted.newtuple = execute_attr_map_tuple(rows->newtuple, ancestor->map);
			if (rows->oldtuple != NULL)
				converted.oldtuple = execute_attr_map_tuple(rows->oldtuple, ancestor->map);
		}
		converted.identity_full = info->identity_full;
		converted.identity_key = ancestor->identity_key;
		state->counters->relation_gate_passes++;
		if (route_prepare(state, rel, &converted, columns, column_count, true, &routes[route_count]))
			route_count++;
	}
	return route_count;
}

/* A truncate record for each shape of relid (of one of its partitions, when partition is set). */
void
truncate_for(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn, Oid relid,
			 Relation relation, Relation partition, XLogRecPtr lsn)
{
	const sr_index_column *columns;
	size_t		column_count;
	const sr_shape_ref *shapes;
	size_t		shape_count;
	RelationInfo *rel;
	const RelationInfo *partition_rel = NULL;

	if (sr_router_relation(state->router, relid, &columns, &column_count) == 0)
		return;
	rel = relation != NULL ? relation_info(state, relation) : relation_info_by_id(state, relid);
	if (rel == NULL)
		return;
	if (partition != NULL)
		partition_rel = relation_info(state, partition);
	shape_router_check_status(sr_router_route(state->router, relid, NULL, NULL, 0, 0, &shapes, &shape_count),
							  "list the shapes of a relation");
	state->counters->relation_gate_passes++;
	for (size_t i = 0; i < shape_count; i++)
	{
		RecordRows	rows = {0};

		rows.partition = partition_rel;
		emit_row_record(ctx, state, txn, shape_state(state, &shapes[i], relid), RECORD_TRUNCATE,
						rel, &rows, lsn, NULL);
	}
}
