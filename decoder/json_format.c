/*-------------------------------------------------------------------------
 *
 * json_format.c
 *	  The "json" output format of pg_tviews_decoder: one JSON object per
 *	  message, for humans, tools and tests.
 *
 * The shape follows wal2json's format-version 2 (one object per change,
 * "action" first) with what it lacks: the relation oid, the row key, the
 * column types, and an explicit marker for unchanged TOAST values instead
 * of silently leaving the column out.  See docs/decoder.md.
 *
 * Values are rendered from the cached per-column kind (relinfo.c):
 * integers, finite floats and numerics as JSON numbers (exactly as the
 * type's output function writes them), NaN and infinities as strings,
 * booleans as true/false, json and jsonb embedded, bytea as a "\\x..." hex
 * string, NULL as null, and everything else as the JSON string of the
 * type's text form.  Output is UTF-8: in a database of another encoding,
 * strings are converted.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "decoder.h"
#include "pg_tviews/json_render.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "mb/pg_wchar.h"
#include "replication/origin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

/* Append a quoted JSON string. */
#define append_json_string(buf, str, len) pgtv_json_string(buf, str, len)

/*
 * A palloc'd quoted JSON string, for names cached in relinfo.c.
 */
char *
decoder_json_quote(const char *str)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_json_string(&buf, str, strlen(str));
	return buf.data;
}

/* Append an unsigned number (no printf: this is per change). */
static inline void
append_uint32(StringInfo buf, uint32 v)
{
	char		num[12];
	int			n = pg_ultoa_n(v, num);

	appendBinaryStringInfo(buf, num, n);
}

/* ,"key":"X/X" -- as LSN_FORMAT_ARGS prints it, upper-case hex */
static inline void
append_lsn(StringInfo buf, const char *key, XLogRecPtr lsn)
{
	static const char hexdig[] = "0123456789ABCDEF";
	char		out[24];
	int			n = 0;
	uint32		parts[2] = {(uint32) (lsn >> 32), (uint32) lsn};

	appendStringInfoString(buf, ",\"");
	appendStringInfoString(buf, key);
	appendStringInfoString(buf, "\":\"");
	for (int p = 0; p < 2; p++)
	{
		char		tmp[8];
		int			k = 0;
		uint32		v = parts[p];

		do
		{
			tmp[k++] = hexdig[v & 0xF];
			v >>= 4;
		} while (v != 0);
		while (k > 0)
			out[n++] = tmp[--k];
		if (p == 0)
			out[n++] = '/';
	}
	out[n++] = '"';
	appendBinaryStringInfo(buf, out, n);
}

/* "xid" is printed when asked for, and always inside a stream. */
static inline void
append_xid(StringInfo buf, DecoderState *st, TransactionId xid)
{
	if (st->opts.include_xids || st->in_stream)
	{
		appendBinaryStringInfo(buf, ",\"xid\":", 7);
		append_uint32(buf, xid);
	}
}

static inline void
append_timestamp(StringInfo buf, DecoderState *st, TimestampTz ts)
{
	if (st->opts.include_timestamp)
	{
		appendStringInfoString(buf, ",\"timestamp\":");
		append_json_string(buf, timestamptz_to_str(ts),
						   strlen(timestamptz_to_str(ts)));
	}
}

static void
append_bytea_hex(StringInfo buf, Datum value)
{
	static const char hexdig[] = "0123456789abcdef";
	bytea	   *b = DatumGetByteaPP(value);
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(b);
	int			len = VARSIZE_ANY_EXHDR(b);
	char	   *out;

	enlargeStringInfo(buf, 2 * len + 5);
	out = buf->data + buf->len;
	*out++ = '"';
	*out++ = '\\';
	*out++ = '\\';
	*out++ = 'x';
	for (int i = 0; i < len; i++)
	{
		*out++ = hexdig[p[i] >> 4];
		*out++ = hexdig[p[i] & 0xF];
	}
	*out++ = '"';
	buf->len = out - buf->data;
	buf->data[buf->len] = '\0';
}

/*
 * Append one column's value in its JSON rendering (json_render.h).
 * Integers, booleans and bytea are rendered straight from the Datum,
 * skipping the output function; the result is the same text.
 */
static void
append_value(StringInfo buf, const DecoderAttr *att, Datum value)
{
	char		num[MAXINT8LEN + 1];
	int			n;
	char	   *s;

	switch (att->kind)
	{
		case PGTV_JSON_BOOL:
			if (DatumGetBool(value))
				appendBinaryStringInfo(buf, "true", 4);
			else
				appendBinaryStringInfo(buf, "false", 5);
			break;
		case PGTV_JSON_INT2:
			n = pg_ltoa(DatumGetInt16(value), num);
			appendBinaryStringInfo(buf, num, n);
			break;
		case PGTV_JSON_INT4:
			n = pg_ltoa(DatumGetInt32(value), num);
			appendBinaryStringInfo(buf, num, n);
			break;
		case PGTV_JSON_INT8:
			n = pg_lltoa(DatumGetInt64(value), num);
			appendBinaryStringInfo(buf, num, n);
			break;
		case PGTV_JSON_OID:
			n = pg_ultoa_n(DatumGetObjectId(value), num);
			appendBinaryStringInfo(buf, num, n);
			break;
		case PGTV_JSON_BYTEA:
			append_bytea_hex(buf, value);
			break;
		case PGTV_JSON_NUMBER:
		case PGTV_JSON_JSON:
		case PGTV_JSON_JSONB:
		case PGTV_JSON_TEXT:
			s = OutputFunctionCall((FmgrInfo *) &att->outfunc, value);
			pgtv_json_text_value(buf, att->kind, s);
			break;
	}
}

/*
 * Which columns of a tuple to print.
 */
typedef enum TupleColumns
{
	TC_ALL,						/* every column */
	TC_KEY,						/* key and lineage columns only */
	TC_IDENTITY,				/* replica identity columns only */
	TC_IDENTITY_KEY				/* identity columns that are key or lineage
								 * columns (columns=key with identity FULL) */
} TupleColumns;

/*
 * Append ,"<field>":[ {name,type,value}, ... ] for a tuple.
 */
static void
append_tuple(StringInfo buf, DecoderState *st, DecoderRelInfo *ri,
			 TupleDesc desc, const char *field, HeapTuple tuple,
			 TupleColumns which)
{
	Datum	   *values = palloc(sizeof(Datum) * ri->natts);
	bool	   *nulls = palloc(sizeof(bool) * ri->natts);
	bool		first = true;

	heap_deform_tuple(tuple, desc, values, nulls);

	appendStringInfoString(buf, ",\"");
	appendStringInfoString(buf, field);
	appendBinaryStringInfo(buf, "\":[", 3);
	for (int i = 0; i < ri->natts; i++)
	{
		const DecoderAttr *att = &ri->attrs[i];

		if (att->dropped)
			continue;
		if (which == TC_KEY && !att->is_key && !att->is_lineage)
			continue;
		if ((which == TC_IDENTITY || which == TC_IDENTITY_KEY) &&
			!att->is_identity)
			continue;
		if (which == TC_IDENTITY_KEY && !att->is_key && !att->is_lineage)
			continue;

		if (!first)
			appendStringInfoCharMacro(buf, ',');
		first = false;
		appendBinaryStringInfo(buf, att->prefix_json, att->prefix_len);
		if (nulls[i])
			appendBinaryStringInfo(buf, ",\"value\":null}", 14);
		else if (decoder_datum_is_unchanged_toast(att, values[i]))
			appendBinaryStringInfo(buf, ",\"unchanged_toast\":true}", 24);
		else
		{
			appendBinaryStringInfo(buf, ",\"value\":", 9);
			append_value(buf, att, values[i]);
			appendStringInfoCharMacro(buf, '}');
		}
	}
	appendStringInfoCharMacro(buf, ']');
}

static void
json_begin(LogicalDecodingContext *ctx, DecoderState *st,
		   ReorderBufferTXN *txn)
{
	StringInfo	buf = ctx->out;

	appendStringInfoString(buf, "{\"action\":\"B\"");
	append_xid(buf, st, txn->xid);
	if (st->opts.include_lsn)
		append_lsn(buf, "lsn", txn->final_lsn);
	append_timestamp(buf, st, txn->xact_time.commit_time);
	if (txn->origin_id != InvalidRepOriginId)
	{
		char	   *origin = NULL;

		if (replorigin_by_oid(txn->origin_id, true, &origin))
		{
			appendStringInfoString(buf, ",\"origin\":");
			append_json_string(buf, origin, strlen(origin));
		}
	}
	appendStringInfoCharMacro(buf, '}');
}

static void
json_commit(LogicalDecodingContext *ctx, DecoderState *st,
			ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	StringInfo	buf = ctx->out;

	appendStringInfoString(buf, "{\"action\":\"C\"");
	append_xid(buf, st, txn->xid);
	if (st->opts.include_lsn)
	{
		append_lsn(buf, "lsn", commit_lsn);
		append_lsn(buf, "end_lsn", txn->end_lsn);
	}
	append_timestamp(buf, st, txn->xact_time.commit_time);
	appendStringInfoCharMacro(buf, '}');
}

static void
json_change(LogicalDecodingContext *ctx, DecoderState *st,
			TransactionId xid, Relation rel, DecoderRelInfo *ri,
			ReorderBufferChange *change)
{
	StringInfo	buf = ctx->out;
	ReorderBufferTupleBuf *newtuple = change->data.tp.newtuple;
	ReorderBufferTupleBuf *oldtuple = change->data.tp.oldtuple;
	TupleColumns newcols = st->opts.key_columns_only ? TC_KEY : TC_ALL;
	const char *action;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			action = "I";
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			action = "U";
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			action = "D";
			break;
		default:
			elog(ERROR, "unexpected change action %d", change->action);
			action = NULL;		/* keep compiler quiet */
	}

	appendBinaryStringInfo(buf, "{\"action\":\"", 11);
	appendStringInfoString(buf, action);
	appendStringInfoCharMacro(buf, '"');
	append_xid(buf, st, xid);
	if (st->opts.include_lsn)
		append_lsn(buf, "lsn", change->lsn);
	appendBinaryStringInfo(buf, ri->header_json, ri->header_len);

	if (newtuple != NULL)
		append_tuple(buf, st, ri, RelationGetDescr(rel), "columns",
					 &newtuple->tuple, newcols);
	if (oldtuple != NULL)
		append_tuple(buf, st, ri, RelationGetDescr(rel), "identity",
					 &oldtuple->tuple, decoder_old_columns_trimmed(st, ri) ?
					 TC_IDENTITY_KEY : TC_IDENTITY);
	appendStringInfoCharMacro(buf, '}');
}

static void
json_truncate(LogicalDecodingContext *ctx, DecoderState *st,
			  TransactionId xid, int nrels, DecoderRelInfo **ris,
			  ReorderBufferChange *change)
{
	StringInfo	buf = ctx->out;

	appendStringInfoString(buf, "{\"action\":\"T\"");
	append_xid(buf, st, xid);
	if (st->opts.include_lsn)
		append_lsn(buf, "lsn", change->lsn);
	appendStringInfo(buf, ",\"cascade\":%s,\"restart_identity\":%s,\"relations\":[",
					 change->data.truncate.cascade ? "true" : "false",
					 change->data.truncate.restart_seqs ? "true" : "false");
	for (int i = 0; i < nrels; i++)
	{
		if (i > 0)
			appendStringInfoCharMacro(buf, ',');
		appendStringInfoString(buf, "{\"schema\":");
		appendStringInfoString(buf, ris[i]->schema_json);
		appendStringInfoString(buf, ",\"table\":");
		appendStringInfoString(buf, ris[i]->table_json);
		appendStringInfo(buf, ",\"relid\":%u}", ris[i]->relid);
	}
	appendStringInfoString(buf, "]}");
}

/*
 * A logical message's content is arbitrary bytes: it is printed as a JSON
 * string when it is valid text in the server encoding (no NUL bytes), and
 * as hex in "content_hex" otherwise, so the output stays valid JSON.
 */
static void
json_message(LogicalDecodingContext *ctx, DecoderState *st,
			 TransactionId xid, XLogRecPtr lsn, bool transactional,
			 const char *prefix, Size sz, const char *content)
{
	StringInfo	buf = ctx->out;

	appendStringInfoString(buf, "{\"action\":\"M\"");
	if (transactional)
		append_xid(buf, st, xid);
	if (st->opts.include_lsn)
		append_lsn(buf, "lsn", lsn);
	appendStringInfo(buf, ",\"transactional\":%s,\"prefix\":",
					 transactional ? "true" : "false");
	append_json_string(buf, prefix, strlen(prefix));
	if (pg_verifymbstr(content, sz, true))
	{
		appendStringInfoString(buf, ",\"content\":");
		append_json_string(buf, content, sz);
	}
	else
	{
		static const char hexdig[] = "0123456789abcdef";

		appendStringInfoString(buf, ",\"content_hex\":\"");
		for (Size i = 0; i < sz; i++)
		{
			appendStringInfoCharMacro(buf, hexdig[((unsigned char) content[i]) >> 4]);
			appendStringInfoCharMacro(buf, hexdig[((unsigned char) content[i]) & 0xF]);
		}
		appendStringInfoCharMacro(buf, '"');
	}
	appendStringInfoCharMacro(buf, '}');
}

static void
json_stream_start(LogicalDecodingContext *ctx, DecoderState *st,
				  TransactionId xid, bool first_segment)
{
	appendStringInfo(ctx->out, "{\"action\":\"S\",\"xid\":%u,\"first_segment\":%s}",
					 xid, first_segment ? "true" : "false");
}

static void
json_stream_stop(LogicalDecodingContext *ctx, DecoderState *st,
				 TransactionId xid)
{
	appendStringInfo(ctx->out, "{\"action\":\"E\",\"xid\":%u}", xid);
}

static void
json_stream_commit(LogicalDecodingContext *ctx, DecoderState *st,
				   ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	StringInfo	buf = ctx->out;

	appendStringInfo(buf, "{\"action\":\"C\",\"xid\":%u,\"streamed\":true",
					 txn->xid);
	if (st->opts.include_lsn)
	{
		append_lsn(buf, "lsn", commit_lsn);
		append_lsn(buf, "end_lsn", txn->end_lsn);
	}
	append_timestamp(buf, st, txn->xact_time.commit_time);
	appendStringInfoCharMacro(buf, '}');
}

static void
json_stream_abort(LogicalDecodingContext *ctx, DecoderState *st,
				  TransactionId xid, TransactionId subxid)
{
	appendStringInfo(ctx->out, "{\"action\":\"A\",\"xid\":%u,\"subxid\":%u}",
					 xid, subxid);
}

const DecoderFormat decoder_json_format = {
	.begin = json_begin,
	.commit = json_commit,
	.relation = NULL,
	.change = json_change,
	.truncate = json_truncate,
	.message = json_message,
	.stream_start = json_stream_start,
	.stream_stop = json_stream_stop,
	.stream_commit = json_stream_commit,
	.stream_abort = json_stream_abort,
};
