/*
 * predicate.c — evaluating one boolean expression with PostgreSQL's executor:
 * the FALLBACK leaves of shape programs (what the VM cannot decide natively).
 */
#include "shape_router_pg.h"

#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/memutils.h"

struct ShapePredicate
{
	MemoryContext context;		/* owns this struct, the tree and the ExprState */
	Node	   *expr;			/* planned expression */
	ExprState  *state;			/* built at first use, under the caller's snapshot */
};

ShapePredicate *
shape_predicate_create(MemoryContext parent, Node *expr)
{
	MemoryContext context = AllocSetContextCreate(parent, "shape_router predicate",
												  ALLOCSET_SMALL_SIZES);
	ShapePredicate *predicate = MemoryContextAllocZero(context, sizeof(ShapePredicate));
	MemoryContext old = MemoryContextSwitchTo(context);

	predicate->context = context;
	predicate->expr = copyObject(expr);
	MemoryContextSwitchTo(old);
	return predicate;
}

void
shape_predicate_free(ShapePredicate *predicate)
{
	if (predicate != NULL)
		MemoryContextDelete(predicate->context);
}

/*
 * An error raised by the expression on this row (division by zero, overflow, a
 * bad cast, a too-large request) becomes PREDICATE_ERROR with *error_message:
 * the shape gets an error record and the stream goes on. The expression holds
 * only immutable built-in functions written in C (registration refuses SQL-language
 * ones), which hold no locks, pins or other resources when they fail, so no
 * subtransaction is needed to clean up. Interrupts (cancel, shutdown), system
 * and internal errors are re-thrown, or, when abort_error is given, captured there
 * and reported as PREDICATE_ABORT so that a caller below C++ frames can re-throw
 * them later.
 */
static PredicateResult
evaluate(ShapePredicate *predicate, TupleTableSlot *slot, ExprContext *econtext, Datum *value,
		 bool *isnull, char **error_message, ErrorData **abort_error)
{
	MemoryContext caller_context = CurrentMemoryContext;
	volatile uint32 holdoff = InterruptHoldoffCount;
	volatile PredicateResult result = PREDICATE_FALSE;

	PG_TRY();
	{
		if (predicate->state == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(predicate->context);

			predicate->state = ExecInitExpr((Expr *) predicate->expr, NULL);
			MemoryContextSwitchTo(old);
		}
		econtext->ecxt_scantuple = slot;
		*value = ExecEvalExprSwitchContext(predicate->state, econtext, isnull);
		result = PREDICATE_TRUE;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			category;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);

		if (category != ERRCODE_OPERATOR_INTERVENTION && category != ERRCODE_SYSTEM_ERROR &&
			category != ERRCODE_INTERNAL_ERROR)
		{
			FlushErrorState();
			InterruptHoldoffCount = holdoff;
			*error_message = edata->message;
			result = PREDICATE_ERROR;
		}
		else if (abort_error != NULL)
		{
			FlushErrorState();
			*abort_error = edata;
			result = PREDICATE_ABORT;
		}
		else
			PG_RE_THROW();
	}
	PG_END_TRY();
	return result;
}

PredicateResult
shape_predicate_eval(ShapePredicate *predicate, TupleTableSlot *slot, ExprContext *econtext,
					 char **error_message, ErrorData **abort_error)
{
	Datum		value = (Datum) 0;
	bool		isnull = false;
	PredicateResult result = evaluate(predicate, slot, econtext, &value, &isnull, error_message, abort_error);

	if (result != PREDICATE_TRUE)
		return result;
	return isnull ? PREDICATE_NULL : (DatumGetBool(value) ? PREDICATE_TRUE : PREDICATE_FALSE);
}

/*
 * Any expression (an indexed one: catalog_sync.c) on a row: PREDICATE_TRUE with its
 * value in *value and *isnull (in econtext's per-tuple memory), or
 * PREDICATE_ERROR as shape_predicate_eval says; other errors are re-thrown.
 */
PredicateResult
shape_expression_eval(ShapePredicate *expression, TupleTableSlot *slot, ExprContext *econtext,
					  Datum *value, bool *isnull, char **error_message)
{
	return evaluate(expression, slot, econtext, value, isnull, error_message, NULL);
}
