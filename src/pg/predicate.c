/*
 * predicate.c — evaluating a shape's stored WHERE with PostgreSQL's executor
 * (as pgoutput's row filter does). This is the exact path: the bytecode gate
 * will be checked against it and fall back to it.
 */
#include "shape_router_pg.h"

#include "executor/executor.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "utils/memutils.h"

struct ShapePredicate
{
	MemoryContext context;		/* owns this struct, the tree and the ExprState */
	char	   *where_text;
	ExprState  *state;			/* built at first use, under the caller's snapshot */
};

ShapePredicate *
shape_predicate_create(MemoryContext parent, const char *where_text)
{
	MemoryContext context = AllocSetContextCreate(parent, "shape_router predicate",
												  ALLOCSET_SMALL_SIZES);
	ShapePredicate *predicate = MemoryContextAllocZero(context, sizeof(ShapePredicate));

	predicate->context = context;
	predicate->where_text = MemoryContextStrdup(context, where_text);
	return predicate;
}

void
shape_predicate_free(ShapePredicate *predicate)
{
	if (predicate != NULL)
		MemoryContextDelete(predicate->context);
}

static void
prepare(ShapePredicate *predicate)
{
	MemoryContext old = MemoryContextSwitchTo(predicate->context);
	Node	   *tree = stringToNode(predicate->where_text);

	predicate->state = ExecInitExpr(expression_planner((Expr *) tree), NULL);
	MemoryContextSwitchTo(old);
}

/*
 * Errors of the data class (division by zero, overflow, bad casts) raised by the
 * predicate become PREDICATE_ERROR: the shape gets an error record and the stream
 * goes on. The expression may only contain immutable built-in functions, which
 * hold no locks, pins or other resources when they fail, so no subtransaction is
 * needed to clean up. Every other error (cancel, out of memory, ...) propagates.
 */
PredicateResult
shape_predicate_eval(ShapePredicate *predicate, TupleTableSlot *slot,
					 ExprContext *econtext, char **error_message)
{
	MemoryContext caller_context = CurrentMemoryContext;
	volatile uint32 holdoff = InterruptHoldoffCount;
	volatile PredicateResult result = PREDICATE_FALSE;

	if (predicate->state == NULL)
		prepare(predicate);

	econtext->ecxt_scantuple = slot;
	PG_TRY();
	{
		bool		isnull;
		Datum		value = ExecEvalExprSwitchContext(predicate->state, econtext, &isnull);

		result = (!isnull && DatumGetBool(value)) ? PREDICATE_TRUE : PREDICATE_FALSE;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		InterruptHoldoffCount = holdoff;
		*error_message = edata->message;
		result = PREDICATE_ERROR;
	}
	PG_END_TRY();
	return result;
}
