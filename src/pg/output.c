/*
 * output.c — writing records: each as its own message, or packed into
 * batches (batch-bytes); a transaction's BEGIN before its first record; and
 * progress updates while most changes are filtered out.
 */
#include "shape_router_pg.h"

#include "replication/logical.h"

#include "plugin_internal.h"

/* Keepalive cadence while most changes are filtered out (as pgoutput does). */
#define CHANGES_PER_PROGRESS_UPDATE 100

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

void
flush_batch(LogicalDecodingContext *ctx, RouterState *state)
{
	if (state->batch.len == 0)
		return;
	write_message(ctx, state->batch.data, state->batch.len);
	resetStringInfo(&state->batch);
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
send_record(LogicalDecodingContext *ctx, RouterState *state)
{
	int64		limit = state->options.batch_bytes;

	if (limit == 0)
	{
		OutputPluginWrite(ctx, true);
		return;
	}
	if (state->batch.len > 0 && state->batch.len + 1 + state->record.len > limit)
		flush_batch(ctx, state);
	record_batch_append(&state->batch, state->record.data, state->record.len);
	if (state->batch.len >= limit)
		flush_batch(ctx, state);
}

void
ensure_begin_sent(LogicalDecodingContext *ctx, RouterState *state, ReorderBufferTXN *txn)
{
	if (state->begin_sent)
		return;
	state->begin_sent = true;
	if (!state->options.include_transaction)
		return;
	record_append_begin(begin_record(ctx, state), state->options.format,
						state->options.include_xids ? psprintf("%u", txn->xid) : NULL,
						state->options.include_lsn ? lsn_text(txn->first_lsn) : NULL);
	send_record(ctx, state);
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
	send_record(ctx, state);
	if (op == RECORD_ERROR)
		state->counters->errors++;
	else
		state->counters->records_emitted++;
}

void
update_progress(LogicalDecodingContext *ctx, RouterState *state, bool skipped_xact)
{
	if (ctx->end_xact || ++state->changes_since_progress >= CHANGES_PER_PROGRESS_UPDATE)
	{
		OutputPluginUpdateProgress(ctx, skipped_xact);
		state->changes_since_progress = 0;
	}
}
