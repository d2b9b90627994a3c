/*-------------------------------------------------------------------------
 *
 * wire_reader.c
 *	  Parser of pg_tviews_decoder's binary format, for the engine.
 *
 * The format is defined in include/pg_tviews/wire.h.  The reader is
 * strict: it checks the version byte, every length against the bytes
 * that remain, and that nothing is left over, and reports a malformed
 * message as ERRCODE_INVALID_BINARY_REPRESENTATION -- never reading past
 * the end of its input, whoever built it.  Everything it returns is
 * palloc'd in the current memory context, which the caller resets per
 * message or per batch.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"
#include "pg_tviews/wire.h"

#include "port/pg_bswap.h"

typedef struct WireCursor
{
	const unsigned char *p;
	const unsigned char *end;
	char		type;
} WireCursor;

static void pg_attribute_noreturn()
malformed(WireCursor *c, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("malformed pg_tviews wire message"),
			 errdetail("Message type \"%c\": %s.", c->type ? c->type : '?', what)));
}

static inline void
need(WireCursor *c, size_t n)
{
	if ((size_t) (c->end - c->p) < n)
		malformed(c, "message is truncated");
}

static uint8
get_u8(WireCursor *c)
{
	need(c, 1);
	return *c->p++;
}

static uint16
get_u16(WireCursor *c)
{
	uint16		v;

	need(c, 2);
	memcpy(&v, c->p, 2);
	c->p += 2;
	return pg_ntoh16(v);
}

static uint32
get_u32(WireCursor *c)
{
	uint32		v;

	need(c, 4);
	memcpy(&v, c->p, 4);
	c->p += 4;
	return pg_ntoh32(v);
}

static uint64
get_u64(WireCursor *c)
{
	uint64		v;

	need(c, 8);
	memcpy(&v, c->p, 8);
	c->p += 8;
	return pg_ntoh64(v);
}

/* A length-prefixed string, copied and NUL-terminated. */
static char *
get_string(WireCursor *c, uint32 *lenp)
{
	uint32		len = get_u32(c);
	char	   *s;

	need(c, len);
	s = palloc(len + 1);
	memcpy(s, c->p, len);
	s[len] = '\0';
	c->p += len;
	if (lenp)
		*lenp = len;
	return s;
}

static void
get_tuple(WireCursor *c, PgtvWireTuple *tup)
{
	tup->nvalues = get_u16(c);
	tup->values = palloc0(sizeof(PgtvWireValue) * Max(tup->nvalues, 1));
	for (int i = 0; i < tup->nvalues; i++)
	{
		PgtvWireValue *v = &tup->values[i];

		v->colno = get_u16(c);
		v->kind = get_u8(c);
		switch (v->kind)
		{
			case PGTV_VAL_NULL:
			case PGTV_VAL_UNCHANGED_TOAST:
				break;
			case PGTV_VAL_TEXT:
				v->text = get_string(c, &v->len);
				break;
			default:
				malformed(c, "unknown value kind");
		}
	}
}

/*
 * Parse one message (the bytes of one OutputPluginWrite).
 */
void
pgtv_wire_read(const char *data, int len, PgtvWireMessage *msg)
{
	WireCursor	c;
	uint8		version;

	memset(msg, 0, sizeof(PgtvWireMessage));
	c.p = (const unsigned char *) data;
	c.end = c.p + len;
	c.type = 0;

	version = get_u8(&c);
	if (version != PGTV_WIRE_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported pg_tviews wire format version %u", version),
				 errdetail("This build reads version %d.", PGTV_WIRE_VERSION)));
	c.type = msg->type = get_u8(&c);

	switch (msg->type)
	{
		case PGTV_MSG_BEGIN:
			msg->xid = get_u32(&c);
			msg->lsn = get_u64(&c);
			msg->commit_time = (TimestampTz) get_u64(&c);
			msg->origin = get_string(&c, NULL);
			if (msg->origin[0] == '\0')
				msg->origin = NULL;
			break;
		case PGTV_MSG_COMMIT:
		case PGTV_MSG_STREAM_COMMIT:
			msg->xid = get_u32(&c);
			msg->lsn = get_u64(&c);
			msg->end_lsn = get_u64(&c);
			msg->commit_time = (TimestampTz) get_u64(&c);
			break;
		case PGTV_MSG_RELATION:
			{
				PgtvWireRelation *rel = &msg->relation;

				rel->relid = get_u32(&c);
				rel->schema = get_string(&c, NULL);
				rel->table = get_string(&c, NULL);
				rel->replident = get_u8(&c);
				rel->ncolumns = get_u16(&c);
				rel->columns = palloc0(sizeof(PgtvWireColumn) *
									   Max(rel->ncolumns, 1));
				for (int i = 0; i < rel->ncolumns; i++)
				{
					PgtvWireColumn *col = &rel->columns[i];

					col->flags = get_u8(&c);
					col->name = get_string(&c, NULL);
					col->typid = get_u32(&c);
					col->typmod = (int32) get_u32(&c);
					col->type_name = get_string(&c, NULL);
				}
				break;
			}
		case PGTV_MSG_INSERT:
		case PGTV_MSG_UPDATE:
		case PGTV_MSG_DELETE:
			msg->xid = get_u32(&c);
			msg->lsn = get_u64(&c);
			msg->relid = get_u32(&c);
			if (msg->type != PGTV_MSG_INSERT)
			{
				msg->has_old = get_u8(&c) != 0;
				if (msg->has_old)
					get_tuple(&c, &msg->old_tuple);
			}
			if (msg->type != PGTV_MSG_DELETE)
				get_tuple(&c, &msg->new_tuple);
			break;
		case PGTV_MSG_TRUNCATE:
			msg->xid = get_u32(&c);
			msg->lsn = get_u64(&c);
			msg->flags = get_u8(&c);
			msg->nrelids = get_u32(&c);
			/* bound the allocation by what the message can hold */
			need(&c, (size_t) msg->nrelids * 4);
			msg->relids = palloc(sizeof(Oid) * Max(msg->nrelids, 1));
			for (int i = 0; i < msg->nrelids; i++)
				msg->relids[i] = get_u32(&c);
			break;
		case PGTV_MSG_MESSAGE:
			msg->xid = get_u32(&c);
			msg->lsn = get_u64(&c);
			msg->transactional = get_u8(&c) != 0;
			msg->prefix = get_string(&c, NULL);
			msg->content = get_string(&c, &msg->content_len);
			break;
		case PGTV_MSG_STREAM_START:
			msg->xid = get_u32(&c);
			msg->first_segment = get_u8(&c) != 0;
			break;
		case PGTV_MSG_STREAM_STOP:
			msg->xid = get_u32(&c);
			break;
		case PGTV_MSG_STREAM_ABORT:
			msg->xid = get_u32(&c);
			msg->subxid = get_u32(&c);
			break;
		default:
			malformed(&c, "unknown message type");
	}

	if (c.p != c.end)
		malformed(&c, "trailing bytes after the message");
}
