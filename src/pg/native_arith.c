/*
 * native_arith.c — indexed expressions of integer arithmetic on integer
 * columns ((amount + priority) % 1000003, a - b, -x, x::int8 ...), evaluated
 * from a row's values without the executor: the executor's call costs more
 * than the rest of a row's keys, and needs the row deformed into a slot.
 *
 * Only operators whose results are exactly PostgreSQL's are taken (int2, int4
 * and int8 +, -, *, /, % and unary -, the mixed-width ones, the casts between
 * them); an overflow or a division by zero, where PostgreSQL raises an error,
 * is left to the executor, which reports it as it always did.
 */
#include "shape_router_pg.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "nodes/nodeFuncs.h"
#include "utils/fmgroids.h"

#define NATIVE_STACK 16
#define NATIVE_STEPS 64

typedef enum NativeOp
{
	NATIVE_COLUMN,				/* push the column's value */
	NATIVE_CONSTANT,			/* push a constant */
	NATIVE_ADD,
	NATIVE_SUB,
	NATIVE_MUL,
	NATIVE_DIV,
	NATIVE_MOD,
	NATIVE_NEG,
	NATIVE_NARROW				/* to the step's width, or the executor's error */
} NativeOp;

/* Where a binary operator of a fused program takes its right operand. */
typedef enum NativeOperand
{
	OPERAND_STACK,
	OPERAND_COLUMN,				/* the step's attnum */
	OPERAND_CONSTANT			/* the step's constant */
} NativeOperand;

typedef struct NativeStep
{
	uint8		op;				/* NativeOp */
	uint8		bits;			/* 16, 32 or 64: the width the operator computes in */
	uint8		operand;		/* NativeOperand: a binary operator's right operand */
	AttrNumber	attnum;			/* NATIVE_COLUMN; an OPERAND_COLUMN operand */
	int64		constant;		/* NATIVE_CONSTANT; an OPERAND_CONSTANT operand */
	uint64		reciprocal;		/* a division by a positive constant: (2^64 - 1) / constant; else 0 */
} NativeStep;

/*
 * Postfix steps, fused: a binary operator whose right operand is a column or a
 * constant reads it itself rather than after a push.
 */
struct NativeArith
{
	int			count;
	uint64		columns;		/* bit attnum - 1 of each column read; all of them when lean */
	bool		lean;			/* every column has attnum <= 64 */
	bool		linear;			/* a push, then steps that take no operand from the stack */
	NativeStep	steps[FLEXIBLE_ARRAY_MEMBER];
};

/* The operator of funcid, its width, and how many arguments it takes (0: not one). */
static int
native_operator(Oid funcid, NativeOp *op, int *bits)
{
	switch (funcid)
	{
		case F_INT2PL: *op = NATIVE_ADD; *bits = 16; return 2;
		case F_INT2MI: *op = NATIVE_SUB; *bits = 16; return 2;
		case F_INT2MUL: *op = NATIVE_MUL; *bits = 16; return 2;
		case F_INT2DIV: *op = NATIVE_DIV; *bits = 16; return 2;
		case F_INT2MOD: *op = NATIVE_MOD; *bits = 16; return 2;
		case F_INT4PL: *op = NATIVE_ADD; *bits = 32; return 2;
		case F_INT4MI: *op = NATIVE_SUB; *bits = 32; return 2;
		case F_INT4MUL: *op = NATIVE_MUL; *bits = 32; return 2;
		case F_INT4DIV: *op = NATIVE_DIV; *bits = 32; return 2;
		case F_INT4MOD: *op = NATIVE_MOD; *bits = 32; return 2;
		case F_INT2UM: *op = NATIVE_NEG; *bits = 16; return 1;
		case F_INT4UM: *op = NATIVE_NEG; *bits = 32; return 1;
		/* int2 with int4 (and below, int2 and int4 with int8): in the wider type */
		case F_INT24PL:
		case F_INT42PL: *op = NATIVE_ADD; *bits = 32; return 2;
		case F_INT24MI:
		case F_INT42MI: *op = NATIVE_SUB; *bits = 32; return 2;
		case F_INT24MUL:
		case F_INT42MUL: *op = NATIVE_MUL; *bits = 32; return 2;
		case F_INT24DIV:
		case F_INT42DIV: *op = NATIVE_DIV; *bits = 32; return 2;
		case F_INT8PL:
		case F_INT28PL:
		case F_INT82PL:
		case F_INT48PL:
		case F_INT84PL: *op = NATIVE_ADD; *bits = 64; return 2;
		case F_INT8MI:
		case F_INT28MI:
		case F_INT82MI:
		case F_INT48MI:
		case F_INT84MI: *op = NATIVE_SUB; *bits = 64; return 2;
		case F_INT8MUL:
		case F_INT28MUL:
		case F_INT82MUL:
		case F_INT48MUL:
		case F_INT84MUL: *op = NATIVE_MUL; *bits = 64; return 2;
		case F_INT8DIV:
		case F_INT28DIV:
		case F_INT82DIV:
		case F_INT48DIV:
		case F_INT84DIV: *op = NATIVE_DIV; *bits = 64; return 2;
		case F_INT8MOD: *op = NATIVE_MOD; *bits = 64; return 2;
		case F_INT8UM: *op = NATIVE_NEG; *bits = 64; return 1;
		case F_INT4_INT8: *op = NATIVE_NARROW; *bits = 32; return 1;	/* int4(int8) */
		case F_INT8_INT4: *op = NATIVE_NARROW; *bits = 64; return 1;	/* int8(int4): always fits */
		case F_INT4_INT2: *op = NATIVE_NARROW; *bits = 32; return 1;	/* int4(int2): always fits */
		case F_INT8_INT2: *op = NATIVE_NARROW; *bits = 64; return 1;	/* int8(int2): always fits */
		case F_INT2_INT4:
		case F_INT2_INT8: *op = NATIVE_NARROW; *bits = 16; return 1;	/* int2(int4), int2(int8) */
		default:
			return 0;
	}
}

static bool
integer_type(Oid type)
{
	return type == INT2OID || type == INT4OID || type == INT8OID;
}

/* Appends node's steps in postfix order; false when it is not of the form. */
static bool
compile_node(Node *node, NativeStep *steps, int *count)
{
	if (*count >= NATIVE_STEPS)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if (var->varno != 1 || var->varlevelsup != 0 || var->varattno <= 0 || !integer_type(var->vartype))
			return false;
		steps[(*count)++] = (NativeStep) {NATIVE_COLUMN, 64, OPERAND_STACK, var->varattno, 0, 0};
		return true;
	}
	if (IsA(node, Const))
	{
		Const	   *constant = (Const *) node;
		int64		value;

		if (constant->constisnull || !integer_type(constant->consttype))
			return false;
		value = constant->consttype == INT2OID ? DatumGetInt16(constant->constvalue)
			: constant->consttype == INT4OID ? DatumGetInt32(constant->constvalue)
			: DatumGetInt64(constant->constvalue);
		steps[(*count)++] = (NativeStep) {NATIVE_CONSTANT, 64, OPERAND_STACK, 0, value, 0};
		return true;
	}
	if (IsA(node, OpExpr) || IsA(node, FuncExpr))
	{
		Oid			funcid = IsA(node, OpExpr) ? ((OpExpr *) node)->opfuncid : ((FuncExpr *) node)->funcid;
		List	   *args = IsA(node, OpExpr) ? ((OpExpr *) node)->args : ((FuncExpr *) node)->args;
		NativeOp	op;
		int			bits;
		int			arity = native_operator(funcid, &op, &bits);
		ListCell   *lc;

		if (arity == 0 || list_length(args) != arity || IsA(node, FuncExpr) != (op == NATIVE_NARROW) ||
			!integer_type(exprType(node)))
			return false;
		foreach(lc, args)
		{
			if (!compile_node(lfirst(lc), steps, count))
				return false;
		}
		if (*count >= NATIVE_STEPS)
			return false;
		steps[(*count)++] = (NativeStep) {(uint8) op, (uint8) bits, OPERAND_STACK, 0, 0, 0};
		return true;
	}
	return false;
}

static bool
binary(NativeOp op)
{
	return op == NATIVE_ADD || op == NATIVE_SUB || op == NATIVE_MUL || op == NATIVE_DIV || op == NATIVE_MOD;
}

/* program's steps fused in place, and the columns they read */
static void
fuse(NativeArith *program)
{
	NativeStep *steps = program->steps;
	int			n = 0;

	program->columns = 0;
	program->lean = true;
	for (int i = 0; i < program->count; i++)
	{
		const NativeStep step = steps[i];

		if (step.op == NATIVE_COLUMN)
		{
			if (step.attnum > 64)
				program->lean = false;
			else
				program->columns |= (uint64) 1 << (step.attnum - 1);
		}
		/* a push right before a binary operator is its right operand */
		if (binary((NativeOp) step.op) && n > 0 && steps[n - 1].operand == OPERAND_STACK &&
			(steps[n - 1].op == NATIVE_COLUMN || steps[n - 1].op == NATIVE_CONSTANT))
		{
			const NativeStep push = steps[n - 1];

			steps[n - 1] = step;
			steps[n - 1].operand = push.op == NATIVE_COLUMN ? OPERAND_COLUMN : OPERAND_CONSTANT;
			steps[n - 1].attnum = push.attnum;
			steps[n - 1].constant = push.constant;
			continue;
		}
		steps[n++] = step;
	}
	program->count = n;
	/* (a * (b + c) is not: its MUL takes b + c from the stack) */
	program->linear = n > 0 && (steps[0].op == NATIVE_COLUMN || steps[0].op == NATIVE_CONSTANT);
	for (int i = 1; i < n && program->linear; i++)
		program->linear = steps[i].op != NATIVE_COLUMN && steps[i].op != NATIVE_CONSTANT &&
			(!binary((NativeOp) steps[i].op) || steps[i].operand != OPERAND_STACK);
}

NativeArith *
native_arith_compile(Node *expr)
{
	NativeStep	steps[NATIVE_STEPS];
	int			count = 0;
	int			height = 0;
	NativeArith *program;

	if (expr == NULL || !integer_type(exprType(expr)) || !compile_node(expr, steps, &count))
		return NULL;
#ifdef HAVE_INT128
	/* A division by a positive constant (the step before pushes the divisor): by its reciprocal */
	for (int i = 1; i < count; i++)
		if ((steps[i].op == NATIVE_DIV || steps[i].op == NATIVE_MOD) && steps[i - 1].op == NATIVE_CONSTANT &&
			steps[i - 1].constant > 0)
		{
			steps[i].constant = steps[i - 1].constant;
			steps[i].reciprocal = PG_UINT64_MAX / (uint64) steps[i].constant;
		}
#endif
	/* the evaluation's stack stays within NATIVE_STACK */
	for (int i = 0; i < count; i++)
	{
		NativeOp	op = (NativeOp) steps[i].op;

		height += (op == NATIVE_COLUMN || op == NATIVE_CONSTANT) ? 1
			: (op == NATIVE_NEG || op == NATIVE_NARROW) ? 0 : -1;
		if (height > NATIVE_STACK)
			return NULL;
	}
	program = palloc(offsetof(NativeArith, steps) + sizeof(NativeStep) * count);
	program->count = count;
	memcpy(program->steps, steps, sizeof(NativeStep) * count);
	fuse(program);
	return program;
}

#ifdef HAVE_INT128
/*
 * a / d or a % d (by the step's operator) as C, int8div and int8mod truncate
 * them, for the step's positive constant d, without a division instruction
 * (tens of cycles for 64 bits): q = (|a| * ((2^64 - 1) / d)) >> 64 is the
 * quotient of |a| or one less, which the remainder tells.
 */
static inline int64
divide_by_constant(int64 a, const NativeStep *step)
{
	const uint64 d = (uint64) step->constant;
	const uint64 n = a < 0 ? 0 - (uint64) a : (uint64) a;
	uint64		q = (uint64) (((uint128) n * step->reciprocal) >> 64);
	uint64		r = n - q * d;

	if (r >= d)
	{
		q++;
		r -= d;
	}
	if (step->op == NATIVE_MOD)
		q = r;
	return (int64) (a < 0 ? 0 - q : q);
}
#endif

/* Whether v fits in a signed integer of bits. */
static inline bool
fits(int64 v, int bits)
{
	return bits == 64 || (bits == 32 ? v == (int32) v : v == (int16) v);
}

/* NEG or NARROW of *v in the step's width (a unary minus, a narrowing cast); false where they raise an error */
static pg_attribute_always_inline bool
apply_unary(const NativeStep *step, int64 *v)
{
	if (step->op == NATIVE_NEG)
	{
		if (*v == PG_INT64_MIN || !fits(-*v, step->bits))
			return false;
		*v = -*v;
		return true;
	}
	return fits(*v, step->bits);
}

/* a op b as int8pl and the others compute it in the step's width; false where they raise an error */
static pg_attribute_always_inline bool
apply_binary(const NativeStep *step, int64 a, int64 b, int64 *r)
{
#ifdef HAVE_INT128
	if (step->reciprocal != 0)	/* a division by a positive constant */
	{
		*r = divide_by_constant(a, step);
		return true;
	}
#endif
	switch ((NativeOp) step->op)
	{
		case NATIVE_ADD:
			return !pg_add_s64_overflow(a, b, r) && fits(*r, step->bits);
		case NATIVE_SUB:
			return !pg_sub_s64_overflow(a, b, r) && fits(*r, step->bits);
		case NATIVE_MUL:
			return !pg_mul_s64_overflow(a, b, r) && fits(*r, step->bits);
		case NATIVE_DIV:
			/* the minimum divided by -1 overflows in its width */
			if (b == 0 || (b == -1 && (a == PG_INT64_MIN || !fits(-a, step->bits))))
				return false;
			*r = a / b;
			return true;
		case NATIVE_MOD:
			if (b == 0)
				return false;
			*r = b == -1 ? 0 : a % b;	/* as int4mod and int8mod: x % -1 is 0 */
			return true;
		default:
			return false;
	}
}

#define MET_NULL (-1)

/* A column's value: from values when read_columns has it, else by read (false: unreadable). */
static inline bool
column_value(AttrNumber attnum, const sr_value *values, uint64 read_columns,
			 bool (*read) (void *arg, AttrNumber attnum, int64 *value, bool *isnull), void *arg,
			 int64 *value, bool *isnull)
{
	if (attnum >= 1 && attnum <= 64 && ((read_columns >> (attnum - 1)) & 1))
	{
		*value = values[attnum].v.i;
		*isnull = values[attnum].is_null != 0;
		return true;
	}
	return read(arg, attnum, value, isnull);
}

/*
 * The program on a row, as native_arith_eval. Lean (values hold every column
 * it reads): no NULL carried, MET_NULL at the first NULL column, before which
 * it computed what the general run computes.
 */
static pg_attribute_always_inline int
run(const NativeArith *program, bool lean, const sr_value *values, uint64 read_columns,
	bool (*read) (void *arg, AttrNumber attnum, int64 *value, bool *isnull), void *arg, int64 *result)
{
	int64		stack[NATIVE_STACK + 1];
	bool		nulls[NATIVE_STACK + 1];
	int			top = 0;

	for (const NativeStep *step = program->steps, *end = step + program->count; step < end; step++)
	{
		int64		a,
					b,
					r;
		bool		b_null = false;

		switch ((NativeOp) step->op)
		{
			case NATIVE_COLUMN:
				if (lean)
				{
					if (values[step->attnum].is_null)
						return MET_NULL;
					stack[top] = values[step->attnum].v.i;
					nulls[top] = false;
				}
				else if (!column_value(step->attnum, values, read_columns, read, arg, &stack[top], &nulls[top]))
					return NATIVE_EXECUTOR;
				top++;
				continue;
			case NATIVE_CONSTANT:
				stack[top] = step->constant;
				nulls[top++] = false;
				continue;
			case NATIVE_NEG:
			case NATIVE_NARROW:
				if ((lean || !nulls[top - 1]) && !apply_unary(step, &stack[top - 1]))
					return NATIVE_EXECUTOR;
				continue;
			default:
				break;
		}
		if (step->operand == OPERAND_CONSTANT)
			b = step->constant;
		else if (step->operand == OPERAND_COLUMN && lean)
		{
			if (values[step->attnum].is_null)
				return MET_NULL;
			b = values[step->attnum].v.i;
		}
		else if (step->operand == OPERAND_COLUMN)
		{
			if (!column_value(step->attnum, values, read_columns, read, arg, &b, &b_null))
				return NATIVE_EXECUTOR;
		}
		else
		{
			b = stack[--top];
			b_null = nulls[top];
		}
		a = stack[top - 1];
		/* A strict operator: NULL for a NULL argument, without a call (nor its error). */
		if (!lean && (b_null || nulls[top - 1]))
		{
			nulls[top - 1] = true;
			continue;
		}
		if (!apply_binary(step, a, b, &r))
			return NATIVE_EXECUTOR;
		stack[top - 1] = r;
	}
	if (!lean && nulls[0])
		return NATIVE_NULL;
	*result = stack[0];
	return NATIVE_VALUE;
}

/*
 * The lean run of a linear program ((amount + priority) % 1000003, a - 1):
 * the same steps in the same order, on one accumulator instead of the stack
 * (half the instructions of run's).
 */
static pg_attribute_always_inline int
run_linear(const NativeArith *program, const sr_value *values, int64 *result)
{
	const NativeStep *step = program->steps;
	const NativeStep *end = step + program->count;
	int64		acc;

	if (step->op == NATIVE_COLUMN)
	{
		if (values[step->attnum].is_null)
			return MET_NULL;
		acc = values[step->attnum].v.i;
	}
	else
		acc = step->constant;
	for (step++; step < end; step++)
	{
		int64		b;

		if (step->op == NATIVE_NEG || step->op == NATIVE_NARROW)
		{
			if (!apply_unary(step, &acc))
				return NATIVE_EXECUTOR;
			continue;
		}
		if (step->operand == OPERAND_CONSTANT)
			b = step->constant;
		else
		{
			if (values[step->attnum].is_null)
				return MET_NULL;
			b = values[step->attnum].v.i;
		}
		if (!apply_binary(step, acc, b, &acc))
			return NATIVE_EXECUTOR;
	}
	*result = acc;
	return NATIVE_VALUE;
}

/*
 * The program's value on a row: a column's integer value is values[attnum]
 * when bit attnum - 1 of read_columns is set, else read(attnum, &value,
 * &isnull) gives it. NATIVE_VALUE, NATIVE_NULL, or NATIVE_EXECUTOR where
 * PostgreSQL would raise an error (or a column cannot be read): the executor
 * decides. A row whose columns are all read and not NULL takes the lean run.
 */
NativeResult
native_arith_eval(const NativeArith *program, const sr_value *values, uint64 read_columns,
				  bool (*read) (void *arg, AttrNumber attnum, int64 *value, bool *isnull),
				  void *arg, int64 *result)
{
	if (program->lean && (program->columns & ~read_columns) == 0)
	{
		int			lean = program->linear ? run_linear(program, values, result)
			: run(program, true, values, read_columns, read, arg, result);

		if (lean != MET_NULL)
			return (NativeResult) lean;
	}
	return (NativeResult) run(program, false, values, read_columns, read, arg, result);
}
