/*
 * shape_eval.c — running a shape's program on a row, shared by the plugin and
 * matching_shapes(). Column values are converted for the VM on first use; FALLBACK
 * leaves are evaluated by PostgreSQL's executor through a callback that never
 * lets an ERROR longjmp through the core's C++ frames: it captures the error,
 * the VM returns SR_STOP, and the error is re-thrown (or turned into the shape's
 * error record) here, in C, after the core has returned.
 */
#include "shape_router_pg.h"

#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"

#include "shape_router/program.h"

void
compiled_shape_init(CompiledShape *shape, MemoryContext context, const ShapeDef *def)
{
	MemoryContext old = MemoryContextSwitchTo(context);

	memset(shape, 0, sizeof(*shape));
	shape->shape_id = def->shape_id;
	shape->where_columns = bms_copy(def->where_columns);
	if (def->program != NULL)
	{
		shape->program_len = VARSIZE_ANY_EXHDR(def->program);
		shape->program = palloc(shape->program_len);
		memcpy(shape->program, VARDATA_ANY(def->program), shape->program_len);
	}
	shape->fallback_text = def->fallback_text != NULL ? pstrdup(def->fallback_text) : NULL;
	MemoryContextSwitchTo(old);
}

void
compiled_shape_release(CompiledShape *shape)
{
	if (shape->fallbacks != NULL)
	{
		for (int i = 0; i < shape->fallback_count; i++)
			shape_predicate_free(shape->fallbacks[i]);
		pfree(shape->fallbacks);
	}
	if (shape->on_expression != NULL)
	{
		for (int i = 0; i < shape->fallback_count; i++)
			if (shape->on_expression[i].program != NULL)
			{
				pfree(shape->on_expression[i].program);
				pfree(shape->on_expression[i].text);
			}
		pfree(shape->on_expression);
	}
	if (shape->program != NULL)
		pfree(shape->program);
	if (shape->columns != NULL)
		pfree(shape->columns);
	if (shape->fallback_text != NULL)
		pfree(shape->fallback_text);
	if (shape->disabled_reason != NULL)
		pfree(shape->disabled_reason);
	bms_free(shape->where_columns);
	shape->fallbacks = NULL;
	shape->on_expression = NULL;
	shape->program = NULL;
	shape->columns = NULL;
	shape->fallback_text = NULL;
	shape->disabled_reason = NULL;
	shape->where_columns = NULL;
}

void
relation_column_tags(TupleDesc desc, uint8 *tags)
{
	tags[0] = SR_TAG_NONE;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		tags[i + 1] = attr->attisdropped ? SR_TAG_NONE : (uint8) shape_type_tag(attr->atttypid);
		if (tags[i + 1] == SR_TAG_NONE && !attr->attisdropped)
			tags[i + 1] = shape_element_tag(attr->atttypid);	/* an array the index keys by element */
	}
}

typedef struct VarCheck
{
	TupleDesc	desc;
	AttrNumber	bad_attnum;
} VarCheck;

static bool
find_unfit_var(Node *node, VarCheck *check)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;
		Form_pg_attribute attr;

		if (var->varattno < 1 || var->varattno > check->desc->natts)
		{
			check->bad_attnum = var->varattno;
			return true;
		}
		attr = TupleDescAttr(check->desc, var->varattno - 1);
		if (attr->attisdropped || attr->atttypid != var->vartype || attr->attcollation != var->varcollid)
		{
			check->bad_attnum = var->varattno;
			return true;
		}
		return false;
	}
	return expression_tree_walker(node, find_unfit_var, (void *) check);
}

/*
 * Does every column the expression reads still exist with the type and
 * collation it was analysed with? (An expression run on a column of another
 * type would read its bytes as the wrong type.)
 */
bool
expr_fits_relation(Node *expr, TupleDesc desc, AttrNumber *bad_attnum)
{
	VarCheck	check;

	check.desc = desc;
	check.bad_attnum = InvalidAttrNumber;
	if (find_unfit_var(expr, &check))
	{
		*bad_attnum = check.bad_attnum;
		return false;
	}
	return true;
}

/* Disables a shape with its reason (replacing an earlier one: states outlive sessions). */
static void
disable(CompiledShape *shape, MemoryContext context, const char *message)
{
	shape->disabled = true;
	if (shape->disabled_reason != NULL)
		pfree(shape->disabled_reason);
	shape->disabled_reason = MemoryContextStrdup(context, message);
}

/*
 * Whether a program (with its executor-evaluated parts, fallback_text) still
 * fits the relation as it is now: the columns it reads have the types it was
 * compiled for. False with the reason in message. *fallback_exprs_out (when
 * not NULL) gets the parsed executor-evaluated parts.
 */
bool
program_fits_relation(const uint8 *program, uint32 program_len, const char *fallback_text, const uint8 *tags,
					  TupleDesc desc, List **fallback_exprs_out, char *message, size_t message_size)
{
	int			expected_fallbacks = 0;
	List	   *fallback_exprs = NIL;

	if (fallback_text != NULL)
	{
		ListCell   *lc;
		AttrNumber	bad_attnum;

		fallback_exprs = (List *) stringToNode(fallback_text);
		if (!IsA(fallback_exprs, List))
			fallback_exprs = NIL;
		expected_fallbacks = list_length(fallback_exprs);
		foreach(lc, fallback_exprs)
		{
			if (!expr_fits_relation((Node *) lfirst(lc), desc, &bad_attnum))
			{
				snprintf(message, message_size,
						 "column %s no longer has the type it had when the shape was registered",
						 bad_attnum >= 1 && bad_attnum <= desc->natts
						 ? quote_identifier(NameStr(TupleDescAttr(desc, bad_attnum - 1)->attname)) : "(dropped)");
				return false;
			}
		}
	}
	if (expected_fallbacks > 255)
	{
		snprintf(message, message_size, "invalid program: too many fallbacks");
		return false;
	}
	switch (sr_program_check(program, program_len, tags, (uint16) desc->natts, (uint8_t) expected_fallbacks,
							 message, message_size))
	{
		case SR_PROGRAM_FITS:
			break;
		case SR_PROGRAM_COLUMN_MISMATCH:
			snprintf(message, message_size,
					 "a column it reads no longer has the type it had when the shape was registered");
			return false;
		case SR_PROGRAM_MALFORMED:
			return false;
	}
	if (fallback_exprs_out != NULL)
		*fallback_exprs_out = fallback_exprs;
	return true;
}

/*
 * Checks the program against the relation as it is now (column types may have
 * changed since registration) and prepares its fallbacks. A shape that does not
 * fit is disabled, with the reason kept for its error record; decoding goes on.
 */
static void
prepare(CompiledShape *shape, MemoryContext context, const uint8 *tags, TupleDesc desc, uint32 generation)
{
	char		message[256];
	int			expected_fallbacks;
	List	   *fallback_exprs = NIL;
	MemoryContext old;

	shape->prepared_generation = generation;
	shape->disabled = false;
	if (shape->program == NULL)
		return;
	if (!program_fits_relation(shape->program, shape->program_len, shape->fallback_text, tags, desc,
							   &fallback_exprs, message, sizeof(message)))
	{
		disable(shape, context, message);
		return;
	}
	expected_fallbacks = list_length(fallback_exprs);

	old = MemoryContextSwitchTo(context);
	if (shape->columns == NULL)
	{
		uint16		buf[64];
		size_t		count = sr_program_columns(shape->program, buf, lengthof(buf));

		shape->columns = palloc(sizeof(uint16) * (count + 1));
		if (count > lengthof(buf))
			sr_program_columns(shape->program, shape->columns, count);
		else
			memcpy(shape->columns, buf, sizeof(uint16) * count);
		shape->column_count = (int) count;
	}
	if (shape->fallbacks == NULL && expected_fallbacks > 0)
	{
		ListCell   *lc;
		int			i = 0;

		shape->fallbacks = palloc0(sizeof(ShapePredicate *) * expected_fallbacks);
		foreach(lc, fallback_exprs)
			shape->fallbacks[i++] = shape_predicate_create(context, (Node *) lfirst(lc));
		shape->fallback_count = expected_fallbacks;
	}
	MemoryContextSwitchTo(old);
}

void
row_image_init(RowImage *image, TupleTableSlot *slot, const Bitmapset *unknown)
{
	int			natts = slot->tts_tupleDescriptor->natts;

	image->slot = slot;
	image->unknown = unknown;
	image->key_only = false;
	image->key_columns = NULL;
	image->values = palloc(sizeof(sr_value) * (natts + 1));
	image->converted = palloc0(sizeof(bool) * (natts + 1));
	image->expressions = NULL;
	image->expression_sources = NULL;
	image->expression_count = 0;
	image->expression_states = NULL;
	image->expression_state_count = 0;
	image->expressions_version = 0;
}

static void
convert_column(RowImage *image, int attnum)
{
	TupleTableSlot *slot = image->slot;
	bool		isnull;
	Datum		value = slot_getattr(slot, attnum, &isnull);
	Oid			type = TupleDescAttr(slot->tts_tupleDescriptor, attnum - 1)->atttypid;

	if (shape_type_tag(type) == SR_TAG_NONE && !isnull && shape_element_tag(type) != SR_TAG_NONE)
	{
		/* An array of native elements: its elements, for the VM's array operators. */
		sr_value   *value_out = &image->values[attnum];
		int			count;
		bool		has_null;

		memset(value_out, 0, sizeof(sr_value));
		value_out->v.bytes = (const uint8_t *) shape_array_values(value, &count, &has_null);
		value_out->len = (uint32) count;
		value_out->has_null_element = has_null ? 1 : 0;
	}
	else if (shape_type_tag(type) == SR_TAG_NONE)
	{
		/* Read only by a NULL test. */
		memset(&image->values[attnum], 0, sizeof(sr_value));
		image->values[attnum].is_null = isnull ? 1 : 0;
	}
	else
		shape_value_from_datum(type, value, isnull, &image->values[attnum]);
	image->converted[attnum] = true;
}

typedef struct FallbackCall
{
	CompiledShape *shape;
	const RowImage *image;
	TupleTableSlot *slot;
	ExprContext *econtext;
	sr_counters *counters;
	char	   *message;		/* a data error: the shape's error record */
	ErrorData  *abort;			/* any other error: re-thrown after the VM returns */
} FallbackCall;

/*
 * Which fallbacks test an indexed expression (shape_fallback_on_expression),
 * found the first time the shape runs on a row that carries expressions' values
 * (the SQL functions' rows never do), outside the VM: compiling may throw.
 */
static void
prepare_fallbacks_on_expressions(CompiledShape *shape, MemoryContext context)
{
	List	   *fallback_exprs = (List *) stringToNode(shape->fallback_text);
	FallbackOnExpression *on = MemoryContextAllocZero(context, sizeof(FallbackOnExpression) * shape->fallback_count);
	ListCell   *lc;
	int			i = 0;

	foreach(lc, fallback_exprs)
	{
		uint32		len;

		if (i == shape->fallback_count)
			break;
		on[i].source = -1;
		if (!shape_fallback_on_expression((Node *) lfirst(lc), context, &on[i].attnum, &on[i].text,
										  &on[i].program, &len))
			on[i].program = NULL;
		i++;
	}
	shape->on_expression = on;
}

/*
 * The row's value of the expression a fallback tests, when the decoder
 * evaluated it for the index (NULL: not; the executor decides). The fallback's
 * expression is found among the relation's by its text, once per list.
 */
static const sr_value *
expression_value(FallbackOnExpression *on, const RowImage *image)
{
	if (on->program == NULL || image->expressions == NULL)
		return NULL;
	if (on->resolved_in != image->expression_states || on->resolved_version != image->expressions_version)
	{
		on->source = -1;
		for (int e = 0; e < image->expression_state_count && on->source < 0; e++)
			if (image->expression_states[e].attnum == on->attnum &&
				strcmp(image->expression_states[e].text, on->text) == 0)
				on->source = e;
		on->resolved_in = image->expression_states;
		on->resolved_version = image->expressions_version;
	}
	for (size_t i = 0; on->source >= 0 && i < image->expression_count; i++)
		if (image->expression_sources[i] == on->source)
			return &image->expressions[i].value;
	return NULL;
}

/* Called from the core's VM: must not longjmp. */
static int
fallback_callback(void *arg, uint16_t index)
{
	FallbackCall *call = (FallbackCall *) arg;
	char	   *message = NULL;
	PredicateResult result;

	if (call->shape->on_expression != NULL)
	{
		FallbackOnExpression *on = &call->shape->on_expression[index];
		const sr_value *value = expression_value(on, call->image);

		if (value != NULL)
		{
			sr_value	row[2];

			memset(&row[0], 0, sizeof(sr_value));
			row[1] = *value;
			if (call->counters != NULL)
				call->counters->expression_reuses++;
			return sr_program_eval(on->program, row, NULL, NULL);
		}
	}
	if (call->counters != NULL)
		call->counters->fallback_evaluations++;
	result = shape_predicate_eval(call->shape->fallbacks[index], call->slot, call->econtext,
								  &message, &call->abort);
	switch (result)
	{
		case PREDICATE_TRUE:
			return SR_TRUE;
		case PREDICATE_FALSE:
			return SR_FALSE;
		case PREDICATE_NULL:
			return SR_NULL;
		case PREDICATE_ERROR:
			call->message = message;
			return SR_STOP;
		case PREDICATE_ABORT:
			return SR_STOP;
	}
	return SR_STOP;
}

/*
 * Prepares the shape for the relation as it is now (once per relation
 * generation); false, with the reason, when it no longer fits and is disabled.
 */
bool
compiled_shape_usable(CompiledShape *shape, const RelationEvalInfo *rel, char **message)
{
	if (shape->prepared_generation != rel->generation)
		prepare(shape, rel->context, rel->tags, rel->desc, rel->generation);
	if (shape->disabled)
	{
		*message = shape->disabled_reason;
		return false;
	}
	return true;
}

ShapeOutcome
compiled_shape_eval(CompiledShape *shape, RowImage *image, const RelationEvalInfo *rel,
					ExprContext *econtext, sr_counters *counters, char **message)
{
	FallbackCall call;
	int			result;

	if (shape->program == NULL)
		return SHAPE_MATCH;		/* no WHERE: every row */
	if (!compiled_shape_usable(shape, rel, message))
		return SHAPE_DISABLED;
	if (bms_overlap(image->unknown, shape->where_columns))
	{
		*message = "the WHERE reads an unchanged TOASTed column whose value is not in the old row; set REPLICA IDENTITY FULL on the table";
		return SHAPE_ERROR;
	}
	for (int i = 0; i < shape->column_count; i++)
		if (!image->converted[shape->columns[i]])
			convert_column(image, shape->columns[i]);
	if (shape->on_expression == NULL && shape->fallback_count > 0 && image->expressions != NULL)
		prepare_fallbacks_on_expressions(shape, rel->context);

	call.shape = shape;
	call.image = image;
	call.slot = image->slot;
	call.econtext = econtext;
	call.counters = counters;
	call.message = NULL;
	call.abort = NULL;
	if (counters != NULL)
		counters->gate_evaluations++;
	result = sr_program_eval(shape->program, image->values, fallback_callback, &call);
	if (result == SR_STOP)
	{
		if (call.abort != NULL)
			ReThrowError(call.abort);
		*message = call.message != NULL ? call.message : "evaluation stopped";
		return SHAPE_ERROR;
	}
	return result == SR_TRUE ? SHAPE_MATCH : (result == SR_NULL ? SHAPE_UNKNOWN : SHAPE_NO_MATCH);
}

/*
 * Whether old and new row agree on every column the WHERE reads, so one
 * evaluation decides both (binary equality of the stored values).
 */
bool
rows_agree_on(TupleTableSlot *old_row, TupleTableSlot *new_row, const Bitmapset *columns)
{
	int			attnum = -1;

	while ((attnum = bms_next_member(columns, attnum)) >= 0)
	{
		Form_pg_attribute attr = TupleDescAttr(old_row->tts_tupleDescriptor, attnum - 1);
		bool		old_null;
		bool		new_null;
		Datum		old_value = slot_getattr(old_row, attnum, &old_null);
		Datum		new_value = slot_getattr(new_row, attnum, &new_null);

		if (old_null != new_null)
			return false;
		if (!old_null && !datumIsEqual(old_value, new_value, attr->attbyval, attr->attlen))
			return false;
	}
	return true;
}
