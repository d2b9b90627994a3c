/*-------------------------------------------------------------------------
 *
 * engine.h
 *	  Private declarations of the pg_tviews extension library (the refresh
 *	  engine side).
 *
 * Files:
 *	 pg_tviews.c    _PG_init: preload check, GUC prefix
 *	 wire_reader.c  parser of the decoder's binary format (pg_tviews/wire.h)
 *	 wire_json.c    pg_tviews_wire_to_json(): binary messages as JSON lines
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TVIEWS_ENGINE_H
#define PG_TVIEWS_ENGINE_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"

/* ----------
 * wire_reader.c
 * ----------
 */
typedef struct PgtvWireColumn
{
	uint8		flags;			/* PGTV_COLFLAG_* */
	char	   *name;
	Oid			typid;
	int32		typmod;
	char	   *type_name;
} PgtvWireColumn;

typedef struct PgtvWireRelation
{
	Oid			relid;
	char	   *schema;
	char	   *table;
	char		replident;
	int			ncolumns;
	PgtvWireColumn *columns;
} PgtvWireRelation;

typedef struct PgtvWireValue
{
	uint16		colno;			/* index into PgtvWireRelation.columns */
	char		kind;			/* PGTV_VAL_* */
	char	   *text;			/* NUL-terminated, for PGTV_VAL_TEXT */
	uint32		len;
} PgtvWireValue;

typedef struct PgtvWireTuple
{
	int			nvalues;
	PgtvWireValue *values;
} PgtvWireTuple;

/* One decoded message; which fields are set depends on type. */
typedef struct PgtvWireMessage
{
	char		type;			/* PGTV_MSG_* */
	TransactionId xid;
	TransactionId subxid;		/* STREAM ABORT */
	XLogRecPtr	lsn;			/* change/message LSN; BEGIN: final LSN;
								 * COMMIT: commit LSN */
	XLogRecPtr	end_lsn;		/* COMMIT */
	TimestampTz commit_time;	/* BEGIN, COMMIT */
	char	   *origin;			/* BEGIN; NULL when local */
	Oid			relid;			/* INSERT, UPDATE, DELETE */
	PgtvWireRelation relation;	/* RELATION */
	bool		has_old;
	PgtvWireTuple old_tuple;
	PgtvWireTuple new_tuple;
	uint8		flags;			/* TRUNCATE */
	int			nrelids;		/* TRUNCATE */
	Oid		   *relids;
	bool		transactional;	/* MESSAGE */
	char	   *prefix;
	char	   *content;
	uint32		content_len;
	bool		first_segment;	/* STREAM START */
} PgtvWireMessage;

extern void pgtv_wire_read(const char *data, int len, PgtvWireMessage *msg);

#endif							/* PG_TVIEWS_ENGINE_H */
