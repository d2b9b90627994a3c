/*-------------------------------------------------------------------------
 *
 * binary_format.c
 *	  The "binary" output format of pg_tviews_decoder: the compact,
 *	  versioned format the pg_tviews refresh engine consumes.
 *
 * The layout is defined once, in include/pg_tviews/wire.h; this file only
 * writes it.  Relation metadata (names, column names and types, key flags)
 * goes out once per relation and session in a RELATION message, so a
 * change carries nothing but the relation oid and its column values.
 * Values are the type output function's text: portable across servers and
 * versions, and exactly what the engine feeds back into SQL as parameters.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "decoder.h"
#include "pg_tviews/wire.h"

#include "access/htup_details.h"
#include "libpq/pqformat.h"
#include "replication/origin.h"
#include "pg_tviews/json_render.h"
#include "utils/builtins.h"

static inline void
put_header(StringInfo buf, char type)
{
	pq_sendbyte(buf, PGTV_WIRE_VERSION);
	pq_sendbyte(buf, type);
}

static inline void
put_string(StringInfo buf, const char *str, uint32 len)
{
	pq_sendint32(buf, len);
	pq_sendbytes(buf, str, len);
}

static inline void
put_cstring(StringInfo buf, const char *str)
{
	put_string(buf, str, strlen(str));
}

/*
 * Append a tuple: the chosen columns, each with its index in the RELATION
 * message, its kind and its text.  key_only keeps key and lineage
 * columns; identity_only keeps replica identity columns; both together
 * keep the identity columns that are key or lineage columns.
 */
static void
put_tuple(StringInfo buf, DecoderRelInfo *ri, TupleDesc desc,
		  HeapTuple tuple, bool key_only, bool identity_only)
{
	Datum	   *values = palloc(sizeof(Datum) * ri->natts);
	bool	   *nulls = palloc(sizeof(bool) * ri->natts);
	int			count_pos;
	uint16		count = 0;

	heap_deform_tuple(tuple, desc, values, nulls);

	count_pos = buf->len;
	pq_sendint16(buf, 0);		/* patched below */
	for (int i = 0; i < ri->natts; i++)
	{
		const DecoderAttr *att = &ri->attrs[i];

		if (att->dropped ||
			(key_only && !att->is_key && !att->is_lineage) ||
			(identity_only && !att->is_identity))
			continue;

		pq_sendint16(buf, att->colno);
		if (nulls[i])
			pq_sendbyte(buf, PGTV_VAL_NULL);
		else if (decoder_datum_is_unchanged_toast(att, values[i]))
			pq_sendbyte(buf, PGTV_VAL_UNCHANGED_TOAST);
		else if (att->kind == PGTV_JSON_INT2 || att->kind == PGTV_JSON_INT4 ||
				 att->kind == PGTV_JSON_INT8 || att->kind == PGTV_JSON_OID ||
				 att->kind == PGTV_JSON_BOOL)
		{
			/* the output functions' text, without calling them */
			char		num[MAXINT8LEN + 1];
			int			n;

			switch (att->kind)
			{
				case PGTV_JSON_INT2:
					n = pg_ltoa(DatumGetInt16(values[i]), num);
					break;
				case PGTV_JSON_INT4:
					n = pg_ltoa(DatumGetInt32(values[i]), num);
					break;
				case PGTV_JSON_INT8:
					n = pg_lltoa(DatumGetInt64(values[i]), num);
					break;
				case PGTV_JSON_OID:
					n = pg_ultoa_n(DatumGetObjectId(values[i]), num);
					break;
				default:
					num[0] = DatumGetBool(values[i]) ? 't' : 'f';
					n = 1;
					break;
			}
			pq_sendbyte(buf, PGTV_VAL_TEXT);
			put_string(buf, num, n);
		}
		else if (att->kind == PGTV_JSON_BYTEA)
		{
			/* hex, whatever bytea_output says: as the json format does */
			bytea	   *b = DatumGetByteaPP(values[i]);
			uint32		len = VARSIZE_ANY_EXHDR(b);
			char	   *hex = palloc(2 * len + 3);

			hex[0] = '\\';
			hex[1] = 'x';
			hex_encode(VARDATA_ANY(b), len, hex + 2);
			pq_sendbyte(buf, PGTV_VAL_TEXT);
			put_string(buf, hex, 2 * len + 2);
		}
		else
		{
			char	   *s = OutputFunctionCall((FmgrInfo *) &att->outfunc,
											   values[i]);

			pq_sendbyte(buf, PGTV_VAL_TEXT);
			put_cstring(buf, s);
		}
		count++;
	}
	count = pg_hton16(count);
	memcpy(buf->data + count_pos, &count, sizeof(count));
}

static void
bin_begin(LogicalDecodingContext *ctx, DecoderState *st,
		  ReorderBufferTXN *txn)
{
	StringInfo	buf = ctx->out;
	char	   *origin = NULL;

	put_header(buf, PGTV_MSG_BEGIN);
	pq_sendint32(buf, txn->xid);
	pq_sendint64(buf, txn->final_lsn);
	pq_sendint64(buf, txn->xact_time.commit_time);
	if (txn->origin_id != InvalidRepOriginId &&
		replorigin_by_oid(txn->origin_id, true, &origin))
		put_cstring(buf, origin);
	else
		put_string(buf, "", 0);
}

static void
bin_commit(LogicalDecodingContext *ctx, DecoderState *st,
		   ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	StringInfo	buf = ctx->out;

	put_header(buf, PGTV_MSG_COMMIT);
	pq_sendint32(buf, txn->xid);
	pq_sendint64(buf, commit_lsn);
	pq_sendint64(buf, txn->end_lsn);
	pq_sendint64(buf, txn->xact_time.commit_time);
}

static void
bin_relation(LogicalDecodingContext *ctx, DecoderState *st,
			 DecoderRelInfo *ri)
{
	StringInfo	buf = ctx->out;

	put_header(buf, PGTV_MSG_RELATION);
	pq_sendint32(buf, ri->relid);
	put_cstring(buf, ri->schema);
	put_cstring(buf, ri->table);
	pq_sendbyte(buf, ri->replident);
	pq_sendint16(buf, ri->ncolumns);
	for (int i = 0; i < ri->natts; i++)
	{
		const DecoderAttr *att = &ri->attrs[i];
		uint8		flags = 0;

		if (att->dropped)
			continue;
		if (att->is_key)
			flags |= PGTV_COLFLAG_KEY;
		if (att->is_identity)
			flags |= PGTV_COLFLAG_IDENTITY;
		if (att->is_lineage)
			flags |= PGTV_COLFLAG_LINEAGE;
		pq_sendbyte(buf, flags);
		put_cstring(buf, att->name);
		pq_sendint32(buf, att->typid);
		pq_sendint32(buf, att->typmod);
		put_cstring(buf, att->type_name);
	}
}

static void
bin_change(LogicalDecodingContext *ctx, DecoderState *st,
		   TransactionId xid, Relation rel, DecoderRelInfo *ri,
		   ReorderBufferChange *change)
{
	StringInfo	buf = ctx->out;
	TupleDesc	desc = RelationGetDescr(rel);
	ReorderBufferTupleBuf *newtuple = change->data.tp.newtuple;
	ReorderBufferTupleBuf *oldtuple = change->data.tp.oldtuple;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			put_header(buf, PGTV_MSG_INSERT);
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			put_header(buf, PGTV_MSG_UPDATE);
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			put_header(buf, PGTV_MSG_DELETE);
			break;
		default:
			elog(ERROR, "unexpected change action %d", change->action);
	}
	pq_sendint32(buf, xid);
	pq_sendint64(buf, change->lsn);
	pq_sendint32(buf, ri->relid);

	if (change->action != REORDER_BUFFER_CHANGE_INSERT)
	{
		pq_sendbyte(buf, oldtuple != NULL);
		if (oldtuple != NULL)
			put_tuple(buf, ri, desc, &oldtuple->tuple,
					  decoder_old_columns_trimmed(st, ri), true);
	}
	if (change->action != REORDER_BUFFER_CHANGE_DELETE)
	{
		if (newtuple == NULL)
			elog(ERROR, "change of relation %u has no new tuple", ri->relid);
		put_tuple(buf, ri, desc, &newtuple->tuple,
				  st->opts.key_columns_only, false);
	}
}

static void
bin_truncate(LogicalDecodingContext *ctx, DecoderState *st,
			 TransactionId xid, int nrels, DecoderRelInfo **ris,
			 ReorderBufferChange *change)
{
	StringInfo	buf = ctx->out;
	uint8		flags = 0;

	if (change->data.truncate.cascade)
		flags |= PGTV_TRUNC_CASCADE;
	if (change->data.truncate.restart_seqs)
		flags |= PGTV_TRUNC_RESTART_SEQS;

	put_header(buf, PGTV_MSG_TRUNCATE);
	pq_sendint32(buf, xid);
	pq_sendint64(buf, change->lsn);
	pq_sendbyte(buf, flags);
	pq_sendint32(buf, nrels);
	for (int i = 0; i < nrels; i++)
		pq_sendint32(buf, ris[i]->relid);
}

static void
bin_message(LogicalDecodingContext *ctx, DecoderState *st,
			TransactionId xid, XLogRecPtr lsn, bool transactional,
			const char *prefix, Size sz, const char *content)
{
	StringInfo	buf = ctx->out;

	put_header(buf, PGTV_MSG_MESSAGE);
	pq_sendint32(buf, transactional ? xid : InvalidTransactionId);
	pq_sendint64(buf, lsn);
	pq_sendbyte(buf, transactional);
	put_cstring(buf, prefix);
	put_string(buf, content, sz);
}

static void
bin_stream_start(LogicalDecodingContext *ctx, DecoderState *st,
				 TransactionId xid, bool first_segment)
{
	put_header(ctx->out, PGTV_MSG_STREAM_START);
	pq_sendint32(ctx->out, xid);
	pq_sendbyte(ctx->out, first_segment);
}

static void
bin_stream_stop(LogicalDecodingContext *ctx, DecoderState *st,
				TransactionId xid)
{
	put_header(ctx->out, PGTV_MSG_STREAM_STOP);
	pq_sendint32(ctx->out, xid);
}

static void
bin_stream_commit(LogicalDecodingContext *ctx, DecoderState *st,
				  ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	StringInfo	buf = ctx->out;

	put_header(buf, PGTV_MSG_STREAM_COMMIT);
	pq_sendint32(buf, txn->xid);
	pq_sendint64(buf, commit_lsn);
	pq_sendint64(buf, txn->end_lsn);
	pq_sendint64(buf, txn->xact_time.commit_time);
}

static void
bin_stream_abort(LogicalDecodingContext *ctx, DecoderState *st,
				 TransactionId xid, TransactionId subxid)
{
	put_header(ctx->out, PGTV_MSG_STREAM_ABORT);
	pq_sendint32(ctx->out, xid);
	pq_sendint32(ctx->out, subxid);
}

const DecoderFormat decoder_binary_format = {
	.begin = bin_begin,
	.commit = bin_commit,
	.relation = bin_relation,
	.change = bin_change,
	.truncate = bin_truncate,
	.message = bin_message,
	.stream_start = bin_stream_start,
	.stream_stop = bin_stream_stop,
	.stream_commit = bin_stream_commit,
	.stream_abort = bin_stream_abort,
};
