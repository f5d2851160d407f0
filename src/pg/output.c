/*
 * output.c — writing records: each as its own message, or packed into
 * batches (batch-bytes); a transaction's BEGIN before its first record; and
 * progress updates while most changes are filtered out.
 */
#include "shape_router_pg.h"

#include "replication/logical.h"

#include "plugin_internal.h"

/* Keepalive cadence while most changes are filtered out (as pgoutput does). */

char *
lsn_text(XLogRecPtr lsn)
{
	return psprintf("%X/%X", LSN_FORMAT_ARGS(lsn));
}

static void
write_message(LogicalDecodingContext *ctx, const char *data, int len)
{
	OutputPluginPrepareWrite(ctx, true);
	appendBinaryStringInfo(ctx->out, data, len);
	OutputPluginWrite(ctx, true);
}

/* A transaction's output state, made at its BEGIN in the decoding context's memory. */
TxnOutput *
txn_output_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	TxnOutput  *out = MemoryContextAllocZero(ctx->context, sizeof(TxnOutput));

	txn->output_plugin_private = out;
	return out;
}

void
txn_output_end(ReorderBufferTXN *txn)
{
	TxnOutput  *out = (TxnOutput *) txn->output_plugin_private;

	if (out == NULL)
		return;
	if (out->batch.data != NULL)
		pfree(out->batch.data);
	pfree(out);
	txn->output_plugin_private = NULL;
}

static TxnOutput *
txn_output(ReorderBufferTXN *txn)
{
	Assert(txn->output_plugin_private != NULL);
	return (TxnOutput *) txn->output_plugin_private;
}

void
flush_batch(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	TxnOutput  *out = txn_output(txn);

	if (out->batch.len == 0)
		return;
	write_message(ctx, out->batch.data, out->batch.len);
	resetStringInfo(&out->batch);
}

/*
 * Where the next record is written: straight into the plugin's output buffer
 * when each record is its own message (no staging copy), else into
 * state->record, for the batch. send_record sends it.
 */
StringInfo
begin_record(LogicalDecodingContext *ctx, RouterState *state)
{
	if (state->options.batch_bytes == 0)
	{
		OutputPluginPrepareWrite(ctx, true);
		return ctx->out;
	}
	resetStringInfo(&state->record);
	return &state->record;
}

/* Sends the record begin_record began: as its own message, or packed into the batch. */
void
send_record(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn)
{
	int64		limit = state->options.batch_bytes;
	TxnOutput  *out;

	if (limit == 0)
	{
		OutputPluginWrite(ctx, true);
		return;
	}
	out = txn_output(txn);
	if (out->batch.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(ctx->context);

		initStringInfo(&out->batch);
		MemoryContextSwitchTo(old);
	}
	if (out->batch.len > 0 && out->batch.len + 1 + state->record.len > limit)
		flush_batch(ctx, txn);
	record_batch_append(&out->batch, state->record.data, state->record.len);
	if (out->batch.len >= limit)
		flush_batch(ctx, txn);
}

void
ensure_begin_sent(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn)
{
	TxnOutput  *out = txn_output(txn);

	if (out->begin_sent)
		return;
	out->begin_sent = true;
	if (!state->options.include_transaction)
		return;
	record_append_begin(begin_record(ctx, state), state->options.format,
						state->options.include_xids ? psprintf("%u", txn->xid) : NULL,
						state->options.include_lsn ? lsn_text(txn->first_lsn) : NULL);
	send_record(ctx, state, txn);
}

void
emit_row_record(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn,
				const ShapeState *shape, RecordOp op, const RelationInfo *rel,
				const RecordRows *rows, XLogRecPtr lsn, const char *message)
{
	ensure_begin_sent(ctx, state, txn);
	record_append_row_change(begin_record(ctx, state), state->options.format, shape->shape_id, op, rel,
							 shape->columns, rows,
							 state->options.include_lsn ? lsn_text(lsn) : NULL, message);
	send_record(ctx, state, txn);
	if (op == RECORD_ERROR)
		state->counters->errors++;
	else
		state->counters->records_emitted++;
}

