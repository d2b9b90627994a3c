/*-------------------------------------------------------------------------
 *
 * decoder.h
 *	  Private declarations of pg_tviews_decoder, the logical decoding output
 *	  plugin of pg_tviews.
 *
 * The plugin is split by concern:
 *	 plugin.c         callbacks, transaction state, filtering, progress
 *	 options.c        option parsing and validation
 *	 relinfo.c        per-relation cache (names, columns, key, filters)
 *	 json_format.c    the "json" output format
 *	 binary_format.c  the "binary" output format (include/pg_tviews/wire.h)
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TVIEWS_DECODER_H
#define PG_TVIEWS_DECODER_H

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/bitmapset.h"
#include "nodes/pg_list.h"
#include "replication/logical.h"
#include "replication/reorderbuffer.h"
#include "utils/rel.h"

/* ----------
 * Options (options.c)
 * ----------
 */
typedef enum DecoderFormatKind
{
	DECODER_FORMAT_JSON,
	DECODER_FORMAT_BINARY
} DecoderFormatKind;

/* Bits of DecoderOptions.actions */
#define DECODER_ACTION_INSERT	0x01
#define DECODER_ACTION_UPDATE	0x02
#define DECODER_ACTION_DELETE	0x04
#define DECODER_ACTION_TRUNCATE 0x08
#define DECODER_ACTION_MESSAGE	0x10
#define DECODER_ACTION_ALL		0x1F

/*
 * One schema.table pattern of include-tables / exclude-tables, or
 * schema.table.column of lineage-columns.
 */
typedef struct TablePattern
{
	char	   *schema;			/* pattern, '*' matches any run of chars */
	char	   *table;
	char	   *column;			/* NULL for table patterns */
} TablePattern;

typedef struct DecoderOptions
{
	DecoderFormatKind format;
	int			binary_version;
	List	   *include_tables; /* of TablePattern *, NIL = all */
	List	   *exclude_tables; /* of TablePattern * */
	int			actions;		/* DECODER_ACTION_* bits */
	List	   *message_prefixes;	/* of char *, NIL = all */
	bool		only_local;
	bool		key_columns_only;	/* columns=key */
	List	   *lineage_columns;	/* of TablePattern *, with column */
	bool		skip_empty_xacts;
	bool		include_xids;
	bool		include_timestamp;
	bool		include_lsn;
	bool		include_types;
	bool		stream_changes;
	bool		tracked;		/* only tables in tviews.tracked */
} DecoderOptions;

extern void decoder_parse_options(List *options, DecoderOptions *opts);
extern bool decoder_table_matches(const DecoderOptions *opts,
								  const char *schema, const char *table);
extern bool decoder_column_is_lineage(const DecoderOptions *opts,
									  const char *schema, const char *table,
									  const char *column);
extern bool decoder_prefix_matches(const DecoderOptions *opts,
								   const char *prefix);

/* ----------
 * Relation cache (relinfo.c)
 * ----------
 */

typedef struct DecoderAttr
{
	bool		dropped;		/* attisdropped: never emitted */
	bool		is_key;			/* part of the row key */
	bool		is_identity;	/* part of the replica identity */
	bool		is_lineage;		/* named by lineage-columns */
	int16		attlen;
	uint16		colno;			/* index in the emitted column list */
	char	   *name;			/* attname */
	char	   *name_json;		/* "name", JSON-escaped and quoted */
	char	   *type_name;		/* format_type_with_typemod() */
	char	   *type_json;		/* ditto, JSON-escaped and quoted */
	char	   *prefix_json;	/* {"name":..[,"type":..] -- json format */
	int			prefix_len;
	Oid			typid;
	int32		typmod;
	int			kind;			/* PgtvJsonKind, json_render.h */
	FmgrInfo	outfunc;
} DecoderAttr;

typedef struct DecoderRelInfo
{
	Oid			relid;			/* hash key: must be first */
	bool		valid;			/* false after an invalidation */
	bool		included;		/* passes include/exclude-tables */
	bool		relation_sent;	/* binary: RELATION message written */
	MemoryContext cxt;			/* everything below lives here */
	char	   *schema;
	char	   *table;
	char	   *schema_json;
	char	   *table_json;
	char	   *key_json;		/* JSON array of key column names */
	char	   *header_json;	/* ,"schema":..,"table":..,"relid":N,"key":[..] */
	int			header_len;
	char		replident;		/* relreplident */
	int			natts;			/* tupdesc natts, including dropped */
	int			ncolumns;		/* non-dropped columns */
	DecoderAttr *attrs;			/* natts entries, by attnum - 1 */
} DecoderRelInfo;

extern void decoder_relcache_init(MemoryContext parent);
extern void decoder_relcache_destroy(void);
extern DecoderRelInfo *decoder_get_relinfo(Relation rel,
										   const DecoderOptions *opts);
extern bool decoder_tracked_lookup(Oid relid, List **lineage_columns);
extern bool decoder_datum_is_unchanged_toast(const DecoderAttr *att,
											 Datum value);

/* ----------
 * Plugin state and output formats (plugin.c, *_format.c)
 * ----------
 */
struct DecoderFormat;

/* Per-decoding-session state, in ctx->output_plugin_private. */
typedef struct DecoderState
{
	DecoderOptions opts;
	const struct DecoderFormat *format;
	MemoryContext change_cxt;	/* reset after every callback's output */
	uint32		changes_since_progress;
	bool		in_stream;		/* between STREAM START and STOP */
} DecoderState;

/* Per-toplevel-transaction state, in txn->output_plugin_private. */
typedef struct DecoderTxnState
{
	bool		begin_written;	/* BEGIN (or STREAM START) is out */
	bool		stream_open;	/* in a stream chunk that emitted START */
	bool		any_written;	/* something of this txn was emitted */
} DecoderTxnState;

/*
 * An output format.  Each callback writes exactly one message, between
 * OutputPluginPrepareWrite() and OutputPluginWrite(), which the caller
 * issues; the callbacks only append to ctx->out.
 */
typedef struct DecoderFormat
{
	void		(*begin) (LogicalDecodingContext *ctx, DecoderState *st,
						  ReorderBufferTXN *txn);
	void		(*commit) (LogicalDecodingContext *ctx, DecoderState *st,
						   ReorderBufferTXN *txn, XLogRecPtr commit_lsn);
	/* binary only: emit the relation message if needed; may be NULL */
	void		(*relation) (LogicalDecodingContext *ctx, DecoderState *st,
							 DecoderRelInfo *ri);
	void		(*change) (LogicalDecodingContext *ctx, DecoderState *st,
						   TransactionId xid, Relation rel,
						   DecoderRelInfo *ri, ReorderBufferChange *change);
	void		(*truncate) (LogicalDecodingContext *ctx, DecoderState *st,
							 TransactionId xid, int nrels,
							 DecoderRelInfo **ris,
							 ReorderBufferChange *change);
	void		(*message) (LogicalDecodingContext *ctx, DecoderState *st,
							TransactionId xid, XLogRecPtr lsn,
							bool transactional, const char *prefix,
							Size sz, const char *content);
	void		(*stream_start) (LogicalDecodingContext *ctx, DecoderState *st,
								 TransactionId xid, bool first_segment);
	void		(*stream_stop) (LogicalDecodingContext *ctx, DecoderState *st,
								TransactionId xid);
	void		(*stream_commit) (LogicalDecodingContext *ctx, DecoderState *st,
								  ReorderBufferTXN *txn, XLogRecPtr commit_lsn);
	void		(*stream_abort) (LogicalDecodingContext *ctx, DecoderState *st,
								 TransactionId xid, TransactionId subxid);
} DecoderFormat;

/*
 * With columns=key, old tuples of REPLICA IDENTITY FULL tables are cut
 * down to their key and lineage columns, like new tuples.  (Under other
 * identities the old tuple holds the identity index columns only.)
 */
static inline bool
decoder_old_columns_trimmed(const DecoderState *st, const DecoderRelInfo *ri)
{
	return st->opts.key_columns_only && ri->replident == REPLICA_IDENTITY_FULL;
}

extern const DecoderFormat decoder_json_format;
extern const DecoderFormat decoder_binary_format;

/* json_format.c helper also used by relinfo.c */
extern char *decoder_json_quote(const char *str);

#endif							/* PG_TVIEWS_DECODER_H */
