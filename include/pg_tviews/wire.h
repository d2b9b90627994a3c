/*-------------------------------------------------------------------------
 *
 * wire.h
 *	  The binary wire format spoken between pg_tviews_decoder (the logical
 *	  decoding output plugin) and the pg_tviews refresh engine.
 *
 * This header is the single definition of the format: the decoder's
 * writer (decoder/binary_format.c) and the engine's reader
 * (engine/wire_reader.c) both include it, and docs/decoder.md describes
 * the same layout for humans.  Any change to a message layout bumps
 * PGTV_WIRE_VERSION; a reader refuses versions it does not know.
 *
 * Every message produced by one OutputPluginWrite() starts with two bytes:
 * the format version and the message type.  All integers are big-endian
 * ("network order", as written by pq_sendint*).  A "string" is a uint32
 * byte length followed by that many bytes, with no terminator.
 *
 *	 BEGIN          'B'  u32 xid, u64 final_lsn, i64 commit_time,
 *	                     string origin (length 0 when local)
 *	 COMMIT         'C'  u32 xid, u64 commit_lsn, u64 end_lsn, i64 commit_time
 *	 RELATION       'R'  u32 relid, string schema, string table,
 *	                     u8 replident, u16 ncolumns, then per column:
 *	                     u8 flags (PGTV_COLFLAG_*), string name,
 *	                     u32 type oid, i32 typmod, string type name
 *	 INSERT         'I'  u32 xid, u64 lsn, u32 relid, tuple new
 *	 UPDATE         'U'  u32 xid, u64 lsn, u32 relid, u8 has_old,
 *	                     [tuple old], tuple new
 *	 DELETE         'D'  u32 xid, u64 lsn, u32 relid, u8 has_old, [tuple old]
 *	 TRUNCATE       'T'  u32 xid, u64 lsn, u8 flags (PGTV_TRUNC_*),
 *	                     u32 nrelids, u32 relid ...
 *	 MESSAGE        'M'  u32 xid, u64 lsn, u8 transactional, string prefix,
 *	                     string content (raw bytes)
 *	 STREAM START   'S'  u32 xid, u8 first_segment
 *	 STREAM STOP    'E'  u32 xid
 *	 STREAM COMMIT  'c'  u32 xid, u64 commit_lsn, u64 end_lsn, i64 commit_time
 *	 STREAM ABORT   'A'  u32 xid, u32 subxid
 *
 *	 tuple:  u16 ncolumns, then per column:
 *	         u16 column index (position in the RELATION message's list),
 *	         u8 kind (PGTV_VAL_*), and for PGTV_VAL_TEXT a string holding the
 *	         type output function's text.
 *
 * A RELATION message precedes the first change that references a relation
 * in a decoding session, and is sent again after the relation's definition
 * changed (relcache invalidation).  commit_time is microseconds since
 * 2000-01-01 UTC (PostgreSQL's TimestampTz).
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TVIEWS_WIRE_H
#define PG_TVIEWS_WIRE_H

/* The version this build writes; the only one it reads. */
#define PGTV_WIRE_VERSION			1

/* Message types. */
#define PGTV_MSG_BEGIN				'B'
#define PGTV_MSG_COMMIT				'C'
#define PGTV_MSG_RELATION			'R'
#define PGTV_MSG_INSERT				'I'
#define PGTV_MSG_UPDATE				'U'
#define PGTV_MSG_DELETE				'D'
#define PGTV_MSG_TRUNCATE			'T'
#define PGTV_MSG_MESSAGE			'M'
#define PGTV_MSG_STREAM_START		'S'
#define PGTV_MSG_STREAM_STOP		'E'
#define PGTV_MSG_STREAM_COMMIT		'c'
#define PGTV_MSG_STREAM_ABORT		'A'

/* Column flags in a RELATION message. */
#define PGTV_COLFLAG_KEY			0x01	/* part of the row key */
#define PGTV_COLFLAG_IDENTITY		0x02	/* in the replica identity */
#define PGTV_COLFLAG_LINEAGE		0x04	/* named by lineage-columns */

/* Value kinds in a tuple. */
#define PGTV_VAL_NULL				'n'
#define PGTV_VAL_UNCHANGED_TOAST	'u'		/* value not in WAL: unchanged */
#define PGTV_VAL_TEXT				't'

/* TRUNCATE flags. */
#define PGTV_TRUNC_CASCADE			0x01
#define PGTV_TRUNC_RESTART_SEQS		0x02

/* Size of the per-message header: version byte + type byte. */
#define PGTV_WIRE_HEADER_SIZE		2

#endif							/* PG_TVIEWS_WIRE_H */
