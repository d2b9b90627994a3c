/*-------------------------------------------------------------------------
 *
 * wire_json.c
 *	  pg_tviews_wire_to_json(bytea[]): the decoder's binary messages shown
 *	  as the JSON lines its "json" format would have written.
 *
 * This is a debugging aid (what is the engine being sent?) and the check
 * that the two formats carry the same information: for the same changes,
 * the JSON rendering of the binary stream equals the "json" output line
 * for line (RELATION messages, which the JSON format does not need, give
 * no line).  Values are rendered by the rules in pg_tviews/json_render.h,
 * which the decoder's json format shares.
 *
 * Messages must be passed in stream order, since a change refers to the
 * RELATION message that described its table earlier in the stream:
 *
 *	 SELECT pg_tviews_wire_to_json(array_agg(data ORDER BY n))
 *	 FROM pg_logical_slot_peek_binary_changes('slot', NULL, NULL,
 *	                                          'format', 'binary')
 *	      WITH ORDINALITY AS m(lsn, xid, data, n);
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"
#include "pg_tviews/json_render.h"
#include "pg_tviews/wire.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(pg_tviews_wire_to_json);

/* A relation seen in the stream, with each column's JSON kind. */
typedef struct SeenRelation
{
	Oid			relid;			/* hash key */
	PgtvWireRelation rel;
	int		   *kinds;			/* PgtvJsonKind per column */
} SeenRelation;

static void
append_lsn(StringInfo buf, const char *key, XLogRecPtr lsn)
{
	appendStringInfo(buf, ",\"%s\":\"%X/%X\"", key, LSN_FORMAT_ARGS(lsn));
}

static void
append_timestamp(StringInfo buf, TimestampTz ts)
{
	const char *s = timestamptz_to_str(ts);

	appendStringInfoString(buf, ",\"timestamp\":");
	pgtv_json_string(buf, s, strlen(s));
}

static SeenRelation *
lookup_relation(HTAB *rels, Oid relid)
{
	SeenRelation *sr = hash_search(rels, &relid, HASH_FIND, NULL);

	if (sr == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("pg_tviews wire message refers to relation %u before its RELATION message", relid),
				 errhint("Pass every message of the stream, in order, starting at the beginning of the decoding session.")));
	return sr;
}

static void
remember_relation(HTAB *rels, PgtvWireRelation *rel)
{
	SeenRelation *sr;
	bool		found;

	sr = hash_search(rels, &rel->relid, HASH_ENTER, &found);
	sr->rel = *rel;
	sr->kinds = palloc(sizeof(int) * Max(rel->ncolumns, 1));
	for (int i = 0; i < rel->ncolumns; i++)
	{
		Oid			typid = rel->columns[i].typid;

		/* a type unknown here is shown as text rather than failing */
		if (SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(typid)))
			sr->kinds[i] = pgtv_json_kind_for_type(typid);
		else
			sr->kinds[i] = PGTV_JSON_TEXT;
	}
}

static void
append_tuple(StringInfo buf, SeenRelation *sr, const char *field,
			 PgtvWireTuple *tup)
{
	appendStringInfo(buf, ",\"%s\":[", field);
	for (int i = 0; i < tup->nvalues; i++)
	{
		PgtvWireValue *v = &tup->values[i];
		PgtvWireColumn *col;

		if (v->colno >= sr->rel.ncolumns)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("pg_tviews wire message refers to column %u of relation %u, which has %d columns",
							v->colno, sr->relid, sr->rel.ncolumns)));
		col = &sr->rel.columns[v->colno];
		if (i > 0)
			appendStringInfoChar(buf, ',');
		appendStringInfoString(buf, "{\"name\":");
		pgtv_json_string(buf, col->name, strlen(col->name));
		appendStringInfoString(buf, ",\"type\":");
		pgtv_json_string(buf, col->type_name, strlen(col->type_name));
		switch (v->kind)
		{
			case PGTV_VAL_NULL:
				appendStringInfoString(buf, ",\"value\":null}");
				break;
			case PGTV_VAL_UNCHANGED_TOAST:
				appendStringInfoString(buf, ",\"unchanged_toast\":true}");
				break;
			default:
				appendStringInfoString(buf, ",\"value\":");
				pgtv_json_text_value(buf, sr->kinds[v->colno], v->text);
				appendStringInfoChar(buf, '}');
		}
	}
	appendStringInfoChar(buf, ']');
}

static void
append_relation_names(StringInfo buf, SeenRelation *sr)
{
	appendStringInfoString(buf, ",\"schema\":");
	pgtv_json_string(buf, sr->rel.schema, strlen(sr->rel.schema));
	appendStringInfoString(buf, ",\"table\":");
	pgtv_json_string(buf, sr->rel.table, strlen(sr->rel.table));
	appendStringInfo(buf, ",\"relid\":%u", sr->relid);
}

/*
 * Render one message; returns false for messages that have no JSON line.
 */
static bool
render_message(StringInfo buf, HTAB *rels, PgtvWireMessage *m)
{
	SeenRelation *sr;

	switch (m->type)
	{
		case PGTV_MSG_RELATION:
			/* kept by the caller; no line of its own */
			return false;
		case PGTV_MSG_BEGIN:
			appendStringInfo(buf, "{\"action\":\"B\",\"xid\":%u", m->xid);
			append_lsn(buf, "lsn", m->lsn);
			append_timestamp(buf, m->commit_time);
			if (m->origin)
			{
				appendStringInfoString(buf, ",\"origin\":");
				pgtv_json_string(buf, m->origin, strlen(m->origin));
			}
			break;
		case PGTV_MSG_COMMIT:
		case PGTV_MSG_STREAM_COMMIT:
			appendStringInfo(buf, "{\"action\":\"C\",\"xid\":%u", m->xid);
			if (m->type == PGTV_MSG_STREAM_COMMIT)
				appendStringInfoString(buf, ",\"streamed\":true");
			append_lsn(buf, "lsn", m->lsn);
			append_lsn(buf, "end_lsn", m->end_lsn);
			append_timestamp(buf, m->commit_time);
			break;
		case PGTV_MSG_INSERT:
		case PGTV_MSG_UPDATE:
		case PGTV_MSG_DELETE:
			sr = lookup_relation(rels, m->relid);
			appendStringInfo(buf, "{\"action\":\"%c\",\"xid\":%u", m->type, m->xid);
			append_lsn(buf, "lsn", m->lsn);
			append_relation_names(buf, sr);
			appendStringInfoString(buf, ",\"key\":[");
			{
				bool		first = true;

				for (int i = 0; i < sr->rel.ncolumns; i++)
				{
					PgtvWireColumn *col = &sr->rel.columns[i];

					if ((col->flags & PGTV_COLFLAG_KEY) == 0)
						continue;
					if (!first)
						appendStringInfoChar(buf, ',');
					pgtv_json_string(buf, col->name, strlen(col->name));
					first = false;
				}
			}
			appendStringInfoChar(buf, ']');
			if (m->type != PGTV_MSG_DELETE)
				append_tuple(buf, sr, "columns", &m->new_tuple);
			if (m->has_old)
				append_tuple(buf, sr, "identity", &m->old_tuple);
			break;
		case PGTV_MSG_TRUNCATE:
			appendStringInfo(buf, "{\"action\":\"T\",\"xid\":%u", m->xid);
			append_lsn(buf, "lsn", m->lsn);
			appendStringInfo(buf, ",\"cascade\":%s,\"restart_identity\":%s,\"relations\":[",
							 (m->flags & PGTV_TRUNC_CASCADE) ? "true" : "false",
							 (m->flags & PGTV_TRUNC_RESTART_SEQS) ? "true" : "false");
			for (int i = 0; i < m->nrelids; i++)
			{
				sr = lookup_relation(rels, m->relids[i]);
				if (i > 0)
					appendStringInfoChar(buf, ',');
				appendStringInfoString(buf, "{\"schema\":");
				pgtv_json_string(buf, sr->rel.schema, strlen(sr->rel.schema));
				appendStringInfoString(buf, ",\"table\":");
				pgtv_json_string(buf, sr->rel.table, strlen(sr->rel.table));
				appendStringInfo(buf, ",\"relid\":%u}", sr->relid);
			}
			appendStringInfoChar(buf, ']');
			break;
		case PGTV_MSG_MESSAGE:
			appendStringInfoString(buf, "{\"action\":\"M\"");
			if (m->transactional)
				appendStringInfo(buf, ",\"xid\":%u", m->xid);
			append_lsn(buf, "lsn", m->lsn);
			appendStringInfo(buf, ",\"transactional\":%s,\"prefix\":",
							 m->transactional ? "true" : "false");
			pgtv_json_string(buf, m->prefix, strlen(m->prefix));
			if (pg_verifymbstr(m->content, m->content_len, true))
			{
				appendStringInfoString(buf, ",\"content\":");
				pgtv_json_string(buf, m->content, m->content_len);
			}
			else
			{
				appendStringInfoString(buf, ",\"content_hex\":\"");
				for (uint32 i = 0; i < m->content_len; i++)
					appendStringInfo(buf, "%02x", (unsigned char) m->content[i]);
				appendStringInfoChar(buf, '"');
			}
			break;
		case PGTV_MSG_STREAM_START:
			appendStringInfo(buf, "{\"action\":\"S\",\"xid\":%u,\"first_segment\":%s",
							 m->xid, m->first_segment ? "true" : "false");
			break;
		case PGTV_MSG_STREAM_STOP:
			appendStringInfo(buf, "{\"action\":\"E\",\"xid\":%u", m->xid);
			break;
		case PGTV_MSG_STREAM_ABORT:
			appendStringInfo(buf, "{\"action\":\"A\",\"xid\":%u,\"subxid\":%u",
							 m->xid, m->subxid);
			break;
	}
	appendStringInfoChar(buf, '}');
	return true;
}

Datum
pg_tviews_wire_to_json(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	HTAB	   *rels;
	HASHCTL		ctl;
	MemoryContext msgcxt;
	MemoryContext oldcxt;
	StringInfoData buf;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();

	arr = PG_GETARG_ARRAYTYPE_P(0);
	deconstruct_array(arr, BYTEAOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &nelems);

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(SeenRelation);
	ctl.hcxt = CurrentMemoryContext;
	rels = hash_create("pg_tviews_wire_to_json relations", 32, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	/* relation descriptions outlive one message; everything else does not */
	msgcxt = AllocSetContextCreate(CurrentMemoryContext,
								   "pg_tviews_wire_to_json message",
								   ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&buf);
	for (int i = 0; i < nelems; i++)
	{
		bytea	   *b;
		PgtvWireMessage m;
		Datum		value;
		bool		isnull = false;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("pg_tviews wire message %d is NULL", i + 1)));
		b = DatumGetByteaPP(elems[i]);

		oldcxt = MemoryContextSwitchTo(msgcxt);
		pgtv_wire_read(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), &m);
		MemoryContextSwitchTo(oldcxt);

		/* RELATION messages are kept: parse them in the long-lived context */
		if (m.type == PGTV_MSG_RELATION)
		{
			pgtv_wire_read(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), &m);
			remember_relation(rels, &m.relation);
			MemoryContextReset(msgcxt);
			continue;
		}

		resetStringInfo(&buf);
		oldcxt = MemoryContextSwitchTo(msgcxt);
		if (render_message(&buf, rels, &m))
		{
			MemoryContextSwitchTo(oldcxt);
			value = CStringGetTextDatum(buf.data);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
								 &value, &isnull);
		}
		else
			MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(msgcxt);
	}
	return (Datum) 0;
}
