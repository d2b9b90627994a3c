/*-------------------------------------------------------------------------
 *
 * plugin.c
 *	  pg_tviews_decoder: the logical decoding output plugin of pg_tviews.
 *
 * The plugin turns the changes of (selected) tables into either JSON lines
 * for people and tools, or the compact binary format the refresh engine
 * reads (include/pg_tviews/wire.h).  It is usable on its own:
 *
 *	 pg_recvlogical -d db --slot dbg --create-slot -P pg_tviews_decoder
 *	 pg_recvlogical -d db --slot dbg --start -f - -o include-tables=public.*
 *
 * This file holds the callbacks and what every format shares: per-session
 * and per-transaction state, the table, action, origin and message
 * filters, lazily written BEGINs (skip-empty-xacts), in-progress
 * transaction streaming, and walsender progress.  The formats only append
 * bytes to ctx->out.
 *
 * Memory: every callback allocates in a context that is reset when its
 * message has been written, so a transaction of any size decodes in
 * constant memory; nothing is buffered across changes.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "decoder.h"
#include "pg_tviews/compat.h"

#include "replication/logical.h"
#include "replication/origin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

PG_MODULE_MAGIC;

/*
 * During a long transaction whose changes are mostly filtered out, tell
 * the walsender we are alive every this many changes, so that neither
 * wal_sender_timeout nor the client's timeout fires.
 */
#define PROGRESS_EVERY_CHANGES	100

extern void _PG_output_plugin_init(OutputPluginCallbacks *cb);

/* ----------
 * Session start and end
 * ----------
 */

static void
decoder_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt,
				bool is_init)
{
	DecoderState *st;
	MemoryContext oldcxt;

	oldcxt = MemoryContextSwitchTo(ctx->context);
	st = palloc0(sizeof(DecoderState));
	decoder_parse_options(ctx->output_plugin_options, &st->opts);
	MemoryContextSwitchTo(oldcxt);

	st->change_cxt = AllocSetContextCreate(ctx->context,
										   "pg_tviews_decoder change",
										   ALLOCSET_DEFAULT_SIZES);
	if (st->opts.format == DECODER_FORMAT_BINARY)
	{
		st->format = &decoder_binary_format;
		opt->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
	}
	else
	{
		st->format = &decoder_json_format;
		opt->output_type = OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
	}
	opt->receive_rewrites = false;

	/* Stream in-progress transactions only when the client asked for it. */
	ctx->streaming &= st->opts.stream_changes;

	decoder_relcache_init(ctx->context);
	ctx->output_plugin_private = st;
}

static void
decoder_shutdown(LogicalDecodingContext *ctx)
{
	DecoderState *st = ctx->output_plugin_private;

	decoder_relcache_destroy();
	if (st != NULL)
		MemoryContextDelete(st->change_cxt);
}

/* ----------
 * Shared helpers
 * ----------
 */

/* The state of a transaction, kept on its top-level transaction. */
static DecoderTxnState *
txn_state(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	ReorderBufferTXN *top = txn->toptxn ? txn->toptxn : txn;

	if (top->output_plugin_private == NULL)
		top->output_plugin_private =
			MemoryContextAllocZero(ctx->context, sizeof(DecoderTxnState));
	return top->output_plugin_private;
}

static void
txn_state_free(ReorderBufferTXN *txn)
{
	if (txn->output_plugin_private != NULL)
	{
		pfree(txn->output_plugin_private);
		txn->output_plugin_private = NULL;
	}
}

static TransactionId
toplevel_xid(ReorderBufferTXN *txn)
{
	return txn->toptxn ? txn->toptxn->xid : txn->xid;
}

/*
 * The xid a change is reported with: its top-level transaction's, except
 * inside a stream, where it is the (sub)transaction that made it, so that
 * a consumer can drop exactly what a STREAM ABORT of a subtransaction
 * names.
 */
static TransactionId
change_xid(DecoderState *st, ReorderBufferTXN *txn, ReorderBufferChange *change)
{
	if (st->in_stream)
		return (change && change->txn) ? change->txn->xid : txn->xid;
	return toplevel_xid(txn);
}

/*
 * Keep the walsender's progress moving; called for every change, emitted
 * or not.
 */
static void
note_progress(LogicalDecodingContext *ctx, DecoderState *st)
{
	if (++st->changes_since_progress >= PROGRESS_EVERY_CHANGES)
	{
		st->changes_since_progress = 0;
		OutputPluginUpdateProgress(ctx, false);
	}
}

/*
 * Write the BEGIN (or, inside a stream, STREAM START) of the transaction
 * if it is not out yet.  With skip-empty-xacts this happens just before
 * the first message of the transaction, so transactions that touch no
 * selected table produce nothing at all.
 */
static void
ensure_txn_started(LogicalDecodingContext *ctx, DecoderState *st,
				   ReorderBufferTXN *txn)
{
	DecoderTxnState *ts = txn_state(ctx, txn);

	if (st->in_stream)
	{
		if (!ts->stream_open)
		{
			OutputPluginPrepareWrite(ctx, true);
			st->format->stream_start(ctx, st, toplevel_xid(txn),
									 !ts->any_written);
			OutputPluginWrite(ctx, true);
			ts->stream_open = true;
		}
	}
	else if (!ts->begin_written)
	{
		ReorderBufferTXN *top = txn->toptxn ? txn->toptxn : txn;

		OutputPluginPrepareWrite(ctx, true);
		st->format->begin(ctx, st, top);
		OutputPluginWrite(ctx, true);
		ts->begin_written = true;
	}
	ts->any_written = true;
}

/*
 * The binary format describes a relation once per session (and again
 * after it changed) before the first change that needs it.
 */
static void
ensure_relation_sent(LogicalDecodingContext *ctx, DecoderState *st,
					 DecoderRelInfo *ri)
{
	if (st->format->relation == NULL || ri->relation_sent)
		return;
	OutputPluginPrepareWrite(ctx, false);
	st->format->relation(ctx, st, ri);
	OutputPluginWrite(ctx, false);
	ri->relation_sent = true;
}

/* ----------
 * Transactions
 * ----------
 */

static void
decoder_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DecoderState *st = ctx->output_plugin_private;
	DecoderTxnState *ts = txn_state(ctx, txn);

	ts->begin_written = false;
	ts->any_written = false;
	if (!st->opts.skip_empty_xacts)
		ensure_txn_started(ctx, st, txn);
}

static void
decoder_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   XLogRecPtr commit_lsn)
{
	DecoderState *st = ctx->output_plugin_private;
	DecoderTxnState *ts = txn_state(ctx, txn);
	bool		skipped = !ts->begin_written;

	if (!skipped)
	{
		OutputPluginPrepareWrite(ctx, true);
		st->format->commit(ctx, st, txn, commit_lsn);
		OutputPluginWrite(ctx, true);
	}
	txn_state_free(txn);

	/* let the walsender confirm past transactions we did not send */
	OutputPluginUpdateProgress(ctx, skipped);
	st->changes_since_progress = 0;
}

/* ----------
 * Changes
 * ----------
 */

static bool
action_wanted(DecoderState *st, ReorderBufferChangeType action)
{
	switch (action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			return (st->opts.actions & DECODER_ACTION_INSERT) != 0;
		case REORDER_BUFFER_CHANGE_UPDATE:
			return (st->opts.actions & DECODER_ACTION_UPDATE) != 0;
		case REORDER_BUFFER_CHANGE_DELETE:
			return (st->opts.actions & DECODER_ACTION_DELETE) != 0;
		default:
			/* other change types are never passed to the change callback */
			return false;
	}
}

static void
decoder_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   Relation rel, ReorderBufferChange *change)
{
	DecoderState *st = ctx->output_plugin_private;
	DecoderRelInfo *ri;
	MemoryContext oldcxt;

	note_progress(ctx, st);
	if (!action_wanted(st, change->action))
		return;

	ri = decoder_get_relinfo(rel, &st->opts);
	if (!ri->included)
		return;

	ensure_txn_started(ctx, st, txn);
	ensure_relation_sent(ctx, st, ri);

	oldcxt = MemoryContextSwitchTo(st->change_cxt);
	OutputPluginPrepareWrite(ctx, true);
	st->format->change(ctx, st, change_xid(st, txn, change), rel, ri, change);
	OutputPluginWrite(ctx, true);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->change_cxt);
}

static void
decoder_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
				 int nrelations, Relation relations[],
				 ReorderBufferChange *change)
{
	DecoderState *st = ctx->output_plugin_private;
	DecoderRelInfo **ris;
	int			n = 0;
	MemoryContext oldcxt;

	note_progress(ctx, st);
	if ((st->opts.actions & DECODER_ACTION_TRUNCATE) == 0)
		return;

	oldcxt = MemoryContextSwitchTo(st->change_cxt);
	ris = palloc(sizeof(DecoderRelInfo *) * nrelations);
	for (int i = 0; i < nrelations; i++)
	{
		DecoderRelInfo *ri = decoder_get_relinfo(relations[i], &st->opts);

		if (ri->included)
			ris[n++] = ri;
	}

	if (n > 0)
	{
		ensure_txn_started(ctx, st, txn);
		for (int i = 0; i < n; i++)
			ensure_relation_sent(ctx, st, ris[i]);
		OutputPluginPrepareWrite(ctx, true);
		st->format->truncate(ctx, st, change_xid(st, txn, change), n, ris, change);
		OutputPluginWrite(ctx, true);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->change_cxt);
}

/*
 * Logical messages (pg_logical_emit_message).  Transactional ones arrive
 * within their transaction at commit; non-transactional ones immediately,
 * with txn possibly NULL, and stand outside any BEGIN/COMMIT.
 */
static void
decoder_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
				XLogRecPtr message_lsn, bool transactional,
				const char *prefix, Size message_size, const char *message)
{
	DecoderState *st = ctx->output_plugin_private;
	MemoryContext oldcxt;
	TransactionId xid = InvalidTransactionId;

	if ((st->opts.actions & DECODER_ACTION_MESSAGE) == 0 ||
		!decoder_prefix_matches(&st->opts, prefix))
		return;

	if (transactional)
	{
		ensure_txn_started(ctx, st, txn);
		xid = change_xid(st, txn, NULL);
	}
	else if (txn != NULL)
		xid = toplevel_xid(txn);

	oldcxt = MemoryContextSwitchTo(st->change_cxt);
	OutputPluginPrepareWrite(ctx, true);
	st->format->message(ctx, st, xid, message_lsn, transactional, prefix,
						message_size, message);
	OutputPluginWrite(ctx, true);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->change_cxt);
}

/* only-local: skip whatever was replicated in from elsewhere */
static bool
decoder_filter_by_origin(LogicalDecodingContext *ctx, RepOriginId origin_id)
{
	DecoderState *st = ctx->output_plugin_private;

	return st->opts.only_local && origin_id != InvalidRepOriginId;
}

/* ----------
 * Streaming of in-progress transactions (stream-changes)
 *
 * A large transaction arrives in chunks, each between STREAM START and
 * STREAM STOP, and ends with STREAM COMMIT or STREAM ABORT.  START is
 * written lazily, so chunks whose changes are all filtered out vanish.
 * ----------
 */

static void
decoder_stream_start(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DecoderState *st = ctx->output_plugin_private;
	DecoderTxnState *ts = txn_state(ctx, txn);

	st->in_stream = true;
	ts->stream_open = false;
	if (!st->opts.skip_empty_xacts)
		ensure_txn_started(ctx, st, txn);
}

static void
decoder_stream_stop(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DecoderState *st = ctx->output_plugin_private;
	DecoderTxnState *ts = txn_state(ctx, txn);

	if (ts->stream_open)
	{
		OutputPluginPrepareWrite(ctx, true);
		st->format->stream_stop(ctx, st, toplevel_xid(txn));
		OutputPluginWrite(ctx, true);
		ts->stream_open = false;
	}
	st->in_stream = false;
}

static void
decoder_stream_abort(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					 XLogRecPtr abort_lsn)
{
	DecoderState *st = ctx->output_plugin_private;
	ReorderBufferTXN *top = txn->toptxn ? txn->toptxn : txn;
	DecoderTxnState *ts = txn_state(ctx, txn);

	if (ts->any_written)
	{
		OutputPluginPrepareWrite(ctx, true);
		st->format->stream_abort(ctx, st, top->xid, txn->xid);
		OutputPluginWrite(ctx, true);
	}
	/* a subtransaction's abort does not end the transaction */
	if (txn == top)
		txn_state_free(top);
}

static void
decoder_stream_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					  XLogRecPtr commit_lsn)
{
	DecoderState *st = ctx->output_plugin_private;
	DecoderTxnState *ts = txn_state(ctx, txn);
	bool		skipped = !ts->any_written;

	if (!skipped)
	{
		OutputPluginPrepareWrite(ctx, true);
		st->format->stream_commit(ctx, st, txn, commit_lsn);
		OutputPluginWrite(ctx, true);
	}
	txn_state_free(txn);
	OutputPluginUpdateProgress(ctx, skipped);
	st->changes_since_progress = 0;
}

static void
decoder_stream_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					  Relation rel, ReorderBufferChange *change)
{
	decoder_change(ctx, txn, rel, change);
}

static void
decoder_stream_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						int nrelations, Relation relations[],
						ReorderBufferChange *change)
{
	decoder_truncate(ctx, txn, nrelations, relations, change);
}

static void
decoder_stream_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					   XLogRecPtr message_lsn, bool transactional,
					   const char *prefix, Size message_size,
					   const char *message)
{
	decoder_message(ctx, txn, message_lsn, transactional, prefix,
					message_size, message);
}

/*
 * Entry point: PostgreSQL looks this symbol up when a slot names the
 * plugin.
 */
void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = decoder_startup;
	cb->begin_cb = decoder_begin;
	cb->change_cb = decoder_change;
	cb->truncate_cb = decoder_truncate;
	cb->commit_cb = decoder_commit;
	cb->message_cb = decoder_message;
	cb->filter_by_origin_cb = decoder_filter_by_origin;
	cb->shutdown_cb = decoder_shutdown;
	cb->stream_start_cb = decoder_stream_start;
	cb->stream_stop_cb = decoder_stream_stop;
	cb->stream_abort_cb = decoder_stream_abort;
	cb->stream_commit_cb = decoder_stream_commit;
	cb->stream_change_cb = decoder_stream_change;
	cb->stream_message_cb = decoder_stream_message;
	cb->stream_truncate_cb = decoder_stream_truncate;
}
