/*
 * shape_cache.c — this slot's shapes in the router: each one's definition kept
 * there (the router decides how), the shell's state of a shape (ShapeState, with a
 * ShapeEvaluator shared by identical shapes) built from it at first use, the
 * names of the tables with shapes, and adding and dropping shapes.
 */
#include "shape_router_pg.h"

#include "common/hashfn.h"

#include "plugin_internal.h"


uint32
evaluator_hash(const void *key, Size keysize)
{
	const EvaluatorKey *k = (const EvaluatorKey *) key;
	uint32		hash = hash_bytes_uint32((uint32) k->relid);

	if (k->program_len > 0)
		hash = hash_combine(hash, hash_bytes(k->program, (int) k->program_len));
	hash = hash_combine(hash, bms_hash_value(k->where_columns));
	if (k->fallback_text != NULL)
		hash = hash_combine(hash, hash_bytes((const unsigned char *) k->fallback_text,
											 (int) strlen(k->fallback_text)));
	return hash;
}

int
evaluator_match(const void *key1, const void *key2, Size keysize)
{
	const EvaluatorKey *a = (const EvaluatorKey *) key1;
	const EvaluatorKey *b = (const EvaluatorKey *) key2;

	if (a->relid != b->relid || a->program_len != b->program_len ||
		(a->program_len > 0 && memcmp(a->program, b->program, a->program_len) != 0) ||
		!bms_equal(a->where_columns, b->where_columns))
		return 1;
	if (a->fallback_text == NULL || b->fallback_text == NULL)
		return a->fallback_text != b->fallback_text;
	return strcmp(a->fallback_text, b->fallback_text) != 0;
}

uint32
form_hash(const void *key, Size keysize)
{
	const FormKey *k = (const FormKey *) key;

	return hash_combine(hash_bytes_uint32((uint32) k->relid), hash_bytes(k->bytes, (int) k->len));
}

int
form_match(const void *key1, const void *key2, Size keysize)
{
	const FormKey *a = (const FormKey *) key1;
	const FormKey *b = (const FormKey *) key2;

	return a->relid != b->relid || a->len != b->len || memcmp(a->bytes, b->bytes, a->len) != 0;
}

/*
 * The form of a shape of relid with this program, WHERE attnums (where_count
 * int16s) and executor-evaluated parts (NULL: none), shared with the shapes of
 * that form that have one already.
 */
static ShapeForm *
form_for(RouterState *state, Oid relid, const uint8 *program, uint32 program_len, const int16 *where_attnums,
		 uint32 where_count, const char *fallback_text)
{
	size_t		fallback_len = fallback_text != NULL ? strlen(fallback_text) + 1 : 0;
	size_t		len = program_len + 2 * (size_t) where_count + fallback_len;
	uint8	   *bytes;
	size_t		constants = 0;
	size_t		constants_len = 0;
	FormKey		key;
	ShapeForm  *form;
	bool		found;

	/* the key is put together in a buffer kept for it: no allocation a shape */
	resetStringInfo(&state->form_key);
	enlargeStringInfo(&state->form_key, (int) len);
	bytes = (uint8 *) state->form_key.data;
	memcpy(bytes, program, program_len);
	if (program_len > 0 && sr_program_constants(program, program_len, &constants, &constants_len) == SR_OK)
		memset(bytes + constants, 0, constants_len);
	memcpy(bytes + program_len, where_attnums, 2 * (size_t) where_count);
	if (fallback_len > 0)
		memcpy(bytes + program_len + 2 * (size_t) where_count, fallback_text, fallback_len);
	key.relid = relid;
	key.len = (uint32) len;
	key.bytes = bytes;
	form = hash_search(state->forms, &key, HASH_ENTER, &found);
	if (!found)
	{
		MemoryContext old = MemoryContextSwitchTo(state->context);

		/* (an ERROR here frees the whole state, hash table included) */
		form->key.bytes = memcpy(palloc(Max(len, 1)), bytes, len);
		form->refcount = 0;
		form->has_where = program_len > 0;
		form->where_columns = attnums_bitmapset(where_attnums, (int) where_count);
		form->program = program_len > 0 ? memcpy(palloc(program_len), program, program_len) : NULL;
		form->program_len = program_len;
		form->fallback_text = fallback_text != NULL ? pstrdup(fallback_text) : NULL;
		form->checked_generation = 0;
		form->unfit_reason = NULL;
		MemoryContextSwitchTo(old);
	}
	form->refcount++;
	return form;
}

static void
release_form(RouterState *state, ShapeForm *form)
{
	FormKey		key;

	if (form == NULL || --form->refcount > 0)
		return;
	bms_free(form->where_columns);
	if (form->program != NULL)
		pfree(form->program);
	if (form->fallback_text != NULL)
		pfree(form->fallback_text);
	if (form->unfit_reason != NULL)
		pfree(form->unfit_reason);
	key = form->key;			/* the entry is not to be read once removed */
	hash_search(state->forms, &key, HASH_REMOVE, NULL);
	pfree(unconstify(uint8 *, key.bytes));
}

/*
 * Whether the shape's program still fits the relation (info), checked once a
 * form and relation generation; false with the reason (kept with the form)
 * when it does not.
 */
bool
form_fits(RouterState *state, ShapeForm *form, const RelationEvalInfo *info, char **message)
{
	if (form->checked_generation != info->generation)
	{
		char		reason[256];
		MemoryContext old = MemoryContextSwitchTo(state->change_context);
		bool		fits = !form->has_where ||
			program_fits_relation(form->program, form->program_len, form->fallback_text, info->tags, info->desc,
								  NULL, reason, sizeof(reason));

		MemoryContextSwitchTo(old);
		if (form->unfit_reason != NULL)
			pfree(form->unfit_reason);
		form->unfit_reason = fits ? NULL : MemoryContextStrdup(state->context, reason);
		form->checked_generation = info->generation;
	}
	if (form->unfit_reason != NULL)
	{
		*message = form->unfit_reason;
		return false;
	}
	return true;
}

/* The evaluator of def, shared with the identical shapes that have one already. */
static ShapeEvaluator *
evaluator_for(RouterState *state, const ShapeDef *def)
{
	EvaluatorKey key;
	ShapeEvaluator *evaluator;
	bool		found;

	key.relid = def->relid;
	key.program_len = def->program != NULL ? VARSIZE_ANY_EXHDR(def->program) : 0;
	key.program = def->program != NULL ? (const uint8 *) VARDATA_ANY(def->program) : NULL;
	key.where_columns = def->where_columns;
	key.fallback_text = def->fallback_text;
	evaluator = hash_search(state->evaluators, &key, HASH_ENTER, &found);
	if (!found)
	{
		evaluator->refcount = 0;
		memset(evaluator->memo_change, 0, sizeof(evaluator->memo_change));
		/* (an ERROR here frees the whole state, hash table included) */
		compiled_shape_init(&evaluator->compiled, state->context, def);
		evaluator->key.program = evaluator->compiled.program;
		evaluator->key.where_columns = evaluator->compiled.where_columns;
		evaluator->key.fallback_text = evaluator->compiled.fallback_text;
	}
	evaluator->refcount++;
	return evaluator;
}

static void
free_shape(RouterState *state, ShapeState *shape)
{
	ShapeEvaluator *evaluator;

	if (shape == NULL)
		return;
	evaluator = shape->evaluator;
	if (evaluator != NULL && --evaluator->refcount == 0)
	{
		CompiledShape compiled = evaluator->compiled;

		hash_search(state->evaluators, &evaluator->key, HASH_REMOVE, NULL);
		compiled_shape_release(&compiled);
	}
	release_form(state, shape->form);
	bms_free(shape->columns);
	/* back to the free list (its first word links it) */
	*(ShapeState **) shape = state->free_shape_states;
	state->free_shape_states = shape;
}

static void
remember_relation_name(RouterState *state, Oid relid)
{
	if (relid == state->last_named_relid)
		return;
	relation_name_refresh(state, relation_entry(state, relid));
	state->last_named_relid = relid;
}

/* A definition as the router takes it (pointing into def). */
static void
shape_spec_of(const ShapeDef *def, sr_shape_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	if (def->program != NULL)
	{
		spec->program = (const uint8 *) VARDATA_ANY(def->program);
		spec->program_len = VARSIZE_ANY_EXHDR(def->program);
	}
	spec->where_attnums = def->where_attnums;
	spec->where_count = (uint32) def->where_count;
	spec->column_attnums = def->column_attnums;
	spec->column_count = def->column_count;
	spec->fallback_text = def->fallback_text;
}

/* The definition of the shape in slot (its arrays valid until the next call into the router). */
static void
read_shape_spec(RouterState *state, uint32 slot, uint64 shape_id, sr_shape_spec *spec)
{
	sr_status	status = sr_router_shape_spec(state->router, slot, spec);

	if (status == SR_INVALID_ARGUMENT)
		elog(ERROR, "shape_router has no definition for shape " UINT64_FORMAT, shape_id);
	shape_router_check_status(status, "read a shape's definition");
}

/*
 * A zeroed ShapeState, from the free list or a block of them: a shape's first
 * use allocates nothing of its own (a projection aside).
 */
#define SHAPE_STATES_PER_BLOCK 1024

pg_noinline static ShapeState *
new_shape_state(RouterState *state)
{
	ShapeState *shape = state->free_shape_states;

	if (shape == NULL)
	{
		ShapeState *block = MemoryContextAlloc(state->context, sizeof(ShapeState) * SHAPE_STATES_PER_BLOCK);

		for (int i = 0; i < SHAPE_STATES_PER_BLOCK; i++)
			*(ShapeState **) &block[i] = i + 1 < SHAPE_STATES_PER_BLOCK ? &block[i + 1] : NULL;
		shape = block;
	}
	state->free_shape_states = *(ShapeState **) shape;
	memset(shape, 0, sizeof(ShapeState));
	return shape;
}

/*
 * The shell's state of a candidate shape of relid, built from its definition at first
 * use: its form and projection. Its evaluator waits for its program's first run
 * (shape_evaluator): a shape the index decides never needs one.
 */
ShapeState *
shape_state(RouterState *state, const sr_shape_ref *ref, Oid relid)
{
	sr_shape_spec spec;
	ShapeState *shape;
	MemoryContext old;

	if (ref->payload != NULL)
		return (ShapeState *) ref->payload;
	read_shape_spec(state, ref->slot, ref->shape_id, &spec);
	old = MemoryContextSwitchTo(state->context);
	shape = new_shape_state(state);
	shape->shape_id = (int64) ref->shape_id;
	shape->relid = relid;
	shape->slot = ref->slot;
	if (spec.column_count >= 0)
		shape->columns = attnums_bitmapset(spec.column_attnums, spec.column_count);
	MemoryContextSwitchTo(old);
	PG_TRY();
	{
		shape->form = form_for(state, relid, spec.program, spec.program_len, spec.where_attnums,
							   spec.where_count, spec.fallback_text);
	}
	PG_CATCH();
	{
		free_shape(state, shape);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (sr_router_set_payload(state->router, ref->slot, shape) != SR_OK)
	{
		free_shape(state, shape);
		shape_router_check_status(SR_OUT_OF_MEMORY, "keep a shape's state");
	}
	return shape;
}

/* The shape's evaluator, built (or shared with an identical shape's) at its program's first run. */
ShapeEvaluator *
shape_evaluator(RouterState *state, ShapeState *shape)
{
	sr_shape_spec spec;
	ShapeDef	def = {0};
	MemoryContext old;

	if (shape->evaluator != NULL)
		return shape->evaluator;
	read_shape_spec(state, shape->slot, (uint64) shape->shape_id, &spec);
	/* The definition is temporary (compiled_shape_init copies it). */
	old = MemoryContextSwitchTo(state->change_context);
	def.shape_id = shape->shape_id;
	def.relid = shape->relid;
	def.has_where = spec.program_len > 0;
	if (def.has_where)
	{
		def.program = palloc(VARHDRSZ + spec.program_len);
		SET_VARSIZE(def.program, VARHDRSZ + spec.program_len);
		memcpy(VARDATA(def.program), spec.program, spec.program_len);
	}
	def.where_columns = shape->form->where_columns;
	def.fallback_text = unconstify(char *, spec.fallback_text);
	MemoryContextSwitchTo(state->context);
	shape->evaluator = evaluator_for(state, &def);
	MemoryContextSwitchTo(old);
	return shape->evaluator;
}

void
add_shape(RouterState *state, const ShapeDef *def)
{
	void	   *previous;
	sr_status	status;
	sr_shape_spec spec;
	sr_cover	cover;

	/* every caller has asked slot_wants_shape before parsing the row */
	Assert(slot_wants_shape(&state->options, def->shape_id));
	remember_relation_name(state, def->relid);
	shape_spec_of(def, &spec);
	cover.atoms = def->cover_atoms;
	cover.alternative_sizes = def->cover_sizes;
	cover.alternative_count = (size_t) def->cover_alternatives;
	cover.exact_alternatives = def->cover_exact;
	status = sr_router_add_shape_spec(state->router, (uint64) def->shape_id, def->relid, &spec, &cover, &previous);
	if (status == SR_INVALID_ARGUMENT)
	{
		/* A catalog row the router cannot take: skip that shape, keep decoding. */
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("shape_router ignores shape " INT64_FORMAT " on relation %u: invalid catalog row",
						def->shape_id, def->relid)));
		return;
	}
	shape_router_check_status(status, "add a shape");
	free_shape(state, (ShapeState *) previous);
}

/*
 * Drops a shape from the router. A shape of this slot dropped in the stream
 * (drop_shape(), DROP TABLE, TRUNCATE of the catalog) gets a "drop" record at
 * that point when ctx is given; replacements and resets pass NULL.
 */
void
drop_shape(RouterState *state, int64 shape_id,
		   LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr lsn)
{
	void	   *payload;
	Oid			relid = sr_router_shape_relid(state->router, (uint64) shape_id);
	RelationInfo *rel;

	if (relid == InvalidOid)
		return;					/* not one of this slot's shapes */
	shape_router_check_status(sr_router_drop_shape(state->router, (uint64) shape_id, &payload),
							  "drop a shape");
	free_shape(state, (ShapeState *) payload);
	if (ctx == NULL)
		return;
	rel = relation_entry(state, relid);
	relation_name_refresh(state, rel);	/* keeps the old name if the table is gone */
	ensure_begin_sent(ctx, state, txn);
	record_append_drop(begin_record(ctx, state), state->options.format, shape_id, rel->table_json, rel->table_text,
					   state->options.include_lsn ? lsn_text(lsn) : NULL);
	send_record(ctx, state, txn);
	state->counters->records_emitted++;
}

static int
compare_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

typedef struct ShapeIdList
{
	int64	   *ids;
	size_t		count;
} ShapeIdList;

static void
collect_shape_id(const sr_shape_ref *shape, void *arg)
{
	ShapeIdList *list = (ShapeIdList *) arg;

	list->ids[list->count++] = (int64) shape->shape_id;
}

void
drop_all_shapes(RouterState *state, LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr lsn)
{
	ShapeIdList list;

	list.ids = palloc_extended(sizeof(int64) * (sr_router_shape_count(state->router) + 1),
							   MCXT_ALLOC_HUGE);
	list.count = 0;
	sr_router_for_each_shape(state->router, collect_shape_id, &list);
	qsort(list.ids, list.count, sizeof(int64), compare_int64);
	for (size_t i = 0; i < list.count; i++)
	{
		drop_shape(state, list.ids[i], ctx, txn, lsn);
	}
	pfree(list.ids);
}
