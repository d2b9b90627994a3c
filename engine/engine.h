/*-------------------------------------------------------------------------
 *
 * engine.h
 *	  Private declarations of the pg_tviews extension library (the refresh
 *	  engine side).
 *
 * Files:
 *	 pg_tviews.c    _PG_init: preload check, GUCs, hooks
 *	 shmem.c        shared state: engine slots, the refresh queue
 *	 launcher.c     the launcher: one engine worker per database
 *	 worker.c       the engine worker: decode, collect, apply, confirm
 *	 collect.c      decoded changes -> affected (TVIEW, key) work
 *	 apply.c        set-based refresh of queued keys
 *	 tvcache.c      cached TVIEWs, lineage rules and prepared plans
 *	 wakeup.c       commits wake the engine (no polling delay)
 *	 sqlfuncs.c     SQL-callable engine functions (wait, wakeup, ...)
 *	 ddl.c          CREATE TABLE tv_x AS ... creates a TVIEW
 *	 lineage.c      lineage analysis of TVIEW definitions
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
#include "nodes/pg_list.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/hsearch.h"

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

/* ----------
 * pg_tviews.c: configuration
 * ----------
 */
extern int	pgtv_max_databases;
extern int	pgtv_queue_size;
extern int	pgtv_batch_size;
extern int	pgtv_poll_interval_ms;
extern int	pgtv_max_retries;
extern int	pgtv_retry_delay_ms;
extern int	pgtv_max_changes_per_relation;
extern int	pgtv_restart_interval_s;
extern int	pgtv_work_mem_kb;

/* ----------
 * shmem.c: shared state
 * ----------
 */

/* Longest key (as text) the shared queue holds; longer keys refresh the
 * whole TVIEW instead. */
#define PGTV_KEY_LEN		64
#define PGTV_ERROR_LEN		256

typedef enum PgtvEngineState
{
	PGTV_ENGINE_FREE = 0,		/* slot unused */
	PGTV_ENGINE_STARTING,
	PGTV_ENGINE_STREAMING,		/* decoding WAL */
	PGTV_ENGINE_APPLYING,		/* refreshing TVIEWs */
	PGTV_ENGINE_IDLE,			/* caught up, waiting for WAL */
	PGTV_ENGINE_PAUSED,			/* pg_tviews_system_disable(): not applying */
	PGTV_ENGINE_NO_EXTENSION,	/* database has no pg_tviews: not running */
	PGTV_ENGINE_STOPPED			/* exited; the launcher restarts it */
} PgtvEngineState;

/* One per database that runs (or ran) an engine. */
typedef struct PgtvEngine
{
	Oid			dboid;
	PgtvEngineState state;
	pid_t		pid;
	Latch	   *latch;			/* the worker's, to wake it */
	TimestampTz started_at;
	TimestampTz heartbeat;
	TimestampTz checked_at;		/* NO_EXTENSION: when last checked */
	int			restarts;
	XLogRecPtr	decoded_lsn;	/* reader position */
	XLogRecPtr	applied_lsn;	/* everything committed before is applied */
	XLogRecPtr	confirmed_lsn;	/* confirmed to the slot */
	uint64		batches;
	uint64		changes;
	uint64		keys_refreshed;
	bool		paused;			/* pg_tviews_system_disable() */
	TimestampTz caught_up_at;	/* last time all flushed WAL was applied */
	TransactionId wake_xid;		/* transaction that woke us (CREATE EXTENSION) */
	char		last_error[PGTV_ERROR_LEN];
} PgtvEngine;

/* Priorities of queue entries: lower is sooner. */
#define PGTV_PRIO_HIGH		0
#define PGTV_PRIO_NORMAL	1
#define PGTV_PRIO_LOW		2

/* Outcomes of processed refreshes, kept in the recent ring. */
typedef enum PgtvOutcome
{
	PGTV_DONE,					/* refreshed */
	PGTV_FAILED,				/* parked after its retries */
	PGTV_DROPPED				/* removed by hand (DELETE/TRUNCATE of the queue) */
} PgtvOutcome;

/* A processed refresh, for the status tables (most recent first). */
typedef struct PgtvRecent
{
	uint64		seq;			/* 0: slot unused */
	Oid			dboid;
	Oid			tview;
	bool		full;
	char		key[PGTV_KEY_LEN];
	XLogRecPtr	source_lsn;
	TimestampTz enqueued_at;
	TimestampTz processed_at;
	int			attempts;
	int			priority;
	PgtvOutcome outcome;
	char		error[PGTV_ERROR_LEN];
} PgtvRecent;

#define PGTV_RECENT_SIZE	1024

typedef struct PgtvShared
{
	LWLock	   *lock;			/* protects everything here and the queue */
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	uint64		next_seq;		/* row ids of queue entries */
	ConditionVariable applied_cv;	/* an engine's applied_lsn moved */
	int			recent_next;	/* ring position */
	PgtvRecent	recent[PGTV_RECENT_SIZE];
	int			nengines;
	PgtvEngine	engines[FLEXIBLE_ARRAY_MEMBER];
} PgtvShared;

/* Queue entry: one (database, TVIEW, key), or a whole-TVIEW refresh. */
typedef struct PgtvQueueKey
{
	Oid			dboid;
	Oid			tview;
	bool		full;			/* whole TVIEW; key is "" */
	char		key[PGTV_KEY_LEN];
} PgtvQueueKey;

typedef struct PgtvQueueEntry
{
	PgtvQueueKey k;				/* hash key: must be first */
	uint64		seq;			/* stable row id (status tables' ctid) */
	uint32		gen;			/* bumped whenever it is queued again */
	int			priority;		/* PGTV_PRIO_* */
	XLogRecPtr	source_lsn;		/* commit LSN of the oldest change */
	TimestampTz enqueued_at;
	TimestampTz next_attempt;	/* not before (retry backoff) */
	int			attempts;
	TransactionId wait_xid;		/* not due while this transaction runs */
	char		error[PGTV_ERROR_LEN];
} PgtvQueueEntry;

extern PgtvShared *pgtv_shared;
extern HTAB *pgtv_queue;

extern void pgtv_shmem_request(void);
extern void pgtv_shmem_startup(void);
extern PgtvEngine *pgtv_engine_for_db(Oid dboid, bool create);
extern void pgtv_enqueue(Oid tview, const char *key, bool full,
						 XLogRecPtr lsn);
extern void pgtv_enqueue_after(Oid tview, const char *key, bool full,
							   XLogRecPtr lsn, TransactionId wait_xid);
extern int	pgtv_queue_count(Oid dboid, XLogRecPtr *oldest_lsn);
extern void pgtv_record_recent(PgtvQueueEntry *e, PgtvOutcome outcome,
							   const char *error);

/* ----------
 * launcher.c, worker.c
 * ----------
 */
extern void pgtv_register_launcher(void);
extern PGDLLEXPORT void pg_tviews_launcher_main(Datum arg);
extern PGDLLEXPORT void pg_tviews_worker_main(Datum arg);
extern char *pgtv_slot_name(Oid dboid);

/* ----------
 * collect.c: from decoded changes to queued work
 * ----------
 */
extern void pgtv_collect_reset(void);
extern void pgtv_collect_message(const char *data, int len);
extern bool pgtv_collect_is_full(void);
extern long pgtv_collect_nchanges(void);
extern void pgtv_collect_wait_visible(void);
extern int	pgtv_collect_flush(void);

/* ----------
 * ddl.c
 * ----------
 */
extern void pgtv_install_ddl_hook(void);

/* ----------
 * tvcache.c: the catalog as the engine needs it, with prepared plans
 * ----------
 */
typedef struct _SPI_plan *PgtvPlan;	/* SPIPlanPtr, without spi.h */

/* A prepared parent-lookup statement of a TVIEW column. */
typedef struct PgtvParentPlan
{
	char	   *column;
	PgtvPlan	plan;
} PgtvParentPlan;

typedef struct PgtvTview
{
	Oid			tview;
	Oid			owner;
	Oid			backing_view;
	bool		enabled;		/* not emergency-disabled */
	char	   *name;			/* qualified, quoted */
	char	   *view_name;		/* the backing view, qualified, quoted */
	char	   *key_column;
	char	   *key_type;		/* format_type of the key */
	char	   *sql_keys;		/* refresh_sql(tview, 'keys') */
	char	   *sql_all;		/* refresh_sql(tview, 'all') */
	PgtvPlan	plan_keys;		/* prepared on first use */
	PgtvPlan	plan_all;
	List	   *deps;			/* of PgtvDep *: TVIEWs reading this one */
	List	   *parent_plans;	/* of PgtvParentPlan * */
} PgtvTview;

/* A dependent TVIEW's lineage rule on the TVIEW it reads. */
typedef struct PgtvDep
{
	Oid			dep;
	struct PgtvTview *dep_tview;
	char	   *rule;
	char	   *source_column;	/* column of the TVIEW read */
	char	   *tview_column;	/* column of the dependent */
	PgtvPlan	plan_read;		/* reads source_column by keys */
} PgtvDep;

/* A lineage rule of a base table. */
typedef struct PgtvRule
{
	Oid			source;
	PgtvTview  *tview;
	char	   *rule;			/* root, child, parent, full */
	char	   *source_column;
	char	   *tview_column;
} PgtvRule;

typedef struct PgtvUserContext
{
	Oid			userid;
	int			sec_context;
	int			guc_nestlevel;	/* settings changed meanwhile are undone */
} PgtvUserContext;

extern void pgtv_tvcache_validate(void);
extern List *pgtv_tvcache_ordered(void);
extern List *pgtv_tvcache_rules(Oid source);
extern void pgtv_become_owner(PgtvTview *t, PgtvUserContext *save);
extern void pgtv_become_role(Oid role, PgtvUserContext *save);
extern void pgtv_restore_user(PgtvUserContext *save);
extern PgtvPlan pgtv_keep_plan(const char *sql, int nargs, Oid *argtypes);
extern int64 pgtv_refresh_result(int ret, const char *tvname);
extern PgtvPlan pgtv_plan_keys(PgtvTview *t);
extern PgtvPlan pgtv_plan_all(PgtvTview *t);
extern PgtvPlan pgtv_plan_dep_values(PgtvTview *t, PgtvDep *d);
extern PgtvPlan pgtv_plan_parent_lookup(PgtvTview *t, const char *tvcol);

/* collect.c, also used by apply.c's cascade */
extern int	pgtv_queue_parent_keys(PgtvTview *t, const char *tvcol, List *vals,
								   XLogRecPtr lsn);

/* ----------
 * wakeup.c
 * ----------
 */
extern void pgtv_install_wakeup(void);
extern void pgtv_wakeup_engine_is_me(void);

/* ----------
 * apply.c
 * ----------
 */
extern int	pgtv_apply_queue(void);
extern struct ErrorData *pgtv_run_in_subxact(void (*fn) (void *), void *arg);

#endif							/* PG_TVIEWS_ENGINE_H */
