/*-------------------------------------------------------------------------
 *
 * sqlfuncs.c
 *	  SQL-callable functions of the engine.
 *
 *	 pg_tviews_slot_name()      the slot this database's engine streams
 *	 pg_tviews_wait(timeout)    read-your-writes: wait until everything
 *	                            committed before the call is applied
 *	 tviews._wakeup()        nudge the launcher and this database's engine
 *	 tviews._invalidate(rel) relcache invalidation, for the decoder
 *	 tviews._enqueue(tview, key)  queue a key (NULL: whole TVIEW)
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/indexing.h"
#include "catalog/pg_authid.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "access/xlog_internal.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(pg_tviews_slot_name);
PG_FUNCTION_INFO_V1(pg_tviews_wait);
PG_FUNCTION_INFO_V1(pg_tviews_wakeup);
PG_FUNCTION_INFO_V1(pg_tviews_invalidate);
PG_FUNCTION_INFO_V1(pg_tviews_enqueue);

Datum
pg_tviews_slot_name(PG_FUNCTION_ARGS)
{
	Name		n = palloc0(NAMEDATALEN);

	namestrcpy(n, pgtv_slot_name(MyDatabaseId));
	PG_RETURN_NAME(n);
}

static void
wake_engine(void)
{
	PgtvEngine *e;

	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	e = pgtv_engine_for_db(MyDatabaseId, true);
	if (e == NULL)
	{
		LWLockRelease(pgtv_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no pg_tviews engine can run in this database"),
				 errdetail("pg_tviews.max_databases (%d) databases already have an engine.",
						   pgtv_max_databases),
				 errhint("Increase pg_tviews.max_databases and restart the server.")));
	}
	if (e->latch)
		SetLatch(e->latch);
	/*
	 * A database that had no extension is worth a look now -- once this
	 * transaction (CREATE EXTENSION) is over, which the engine waits for.
	 */
	if (e && e->state == PGTV_ENGINE_NO_EXTENSION)
		e->checked_at = 0;
	if (e)
		e->wake_xid = GetTopTransactionIdIfAny();
	if (pgtv_shared->launcher_latch)
		SetLatch(pgtv_shared->launcher_latch);
	LWLockRelease(pgtv_shared->lock);
}

Datum
pg_tviews_wakeup(PG_FUNCTION_ARGS)
{
	wake_engine();
	PG_RETURN_VOID();
}

Datum
pg_tviews_invalidate(PG_FUNCTION_ARGS)
{
	CacheInvalidateRelcacheByRelid(PG_GETARG_OID(0));
	PG_RETURN_VOID();
}

Datum
pg_tviews_enqueue(PG_FUNCTION_ARGS)
{
	Oid			tview = PG_GETARG_OID(0);
	XLogRecPtr	lsn = GetXLogInsertRecPtr();

	/* the engine must see what this transaction wrote: not before it ends */
	TransactionId xid = GetTopTransactionIdIfAny();

	if (PG_ARGISNULL(1))
		pgtv_enqueue_after(tview, NULL, true, lsn, xid);
	else
	{
		char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(1));

		pgtv_enqueue_after(tview, key, false, lsn, xid);
	}
	wake_engine();
	PG_RETURN_VOID();
}

/*
 * pg_tviews_wait(timeout interval) returns boolean
 *
 * True once the engine has applied every change committed before the
 * call (its applied position has passed the WAL insert position taken at
 * the call); false if the timeout expires first.
 */
Datum
pg_tviews_wait(PG_FUNCTION_ARGS)
{
	Interval   *timeout = PG_GETARG_INTERVAL_P(0);
	int64		timeout_ms;
	XLogRecPtr	target = GetXLogInsertRecPtr();
	XLogRecPtr	applied = InvalidXLogRecPtr;
	TimestampTz start = GetCurrentTimestamp();

	timeout_ms = (timeout->time + (int64) timeout->day * USECS_PER_DAY +
				  (int64) timeout->month * 30 * USECS_PER_DAY) / 1000;
	if (timeout_ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));

	/*
	 * At a page boundary the insert position points past the page header;
	 * the last record ends before it.
	 */
	if (XLogSegmentOffset(target, wal_segment_size) == SizeOfXLogLongPHD)
		target -= SizeOfXLogLongPHD;
	else if (target % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		target -= SizeOfXLogShortPHD;
	/* the engine reads flushed WAL only (asynchronous commits too) */
	XLogFlush(target);

	/* the engine broadcasts applied_cv whenever its applied position moves */
	ConditionVariablePrepareToSleep(&pgtv_shared->applied_cv);
	for (;;)
	{
		PgtvEngine *e;

		applied = InvalidXLogRecPtr;
		LWLockAcquire(pgtv_shared->lock, LW_SHARED);
		e = pgtv_engine_for_db(MyDatabaseId, false);
		if (e)
		{
			applied = e->applied_lsn;
			if (e->latch)
				SetLatch(e->latch);
		}
		LWLockRelease(pgtv_shared->lock);

		if (applied >= target ||
			TimestampDifferenceExceeds(start, GetCurrentTimestamp(), timeout_ms))
			break;

		/* a timed sleep: an engine that restarts has nobody to wake us */
		(void) ConditionVariableTimedSleep(&pgtv_shared->applied_cv, 100,
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	PG_RETURN_BOOL(applied >= target);
}

PG_FUNCTION_INFO_V1(pg_tviews_engines);
PG_FUNCTION_INFO_V1(pg_tviews_queue_entries);

static const char *
engine_state_name(PgtvEngineState s)
{
	switch (s)
	{
		case PGTV_ENGINE_FREE:
			return "free";
		case PGTV_ENGINE_STARTING:
			return "starting";
		case PGTV_ENGINE_STREAMING:
			return "streaming";
		case PGTV_ENGINE_APPLYING:
			return "applying";
		case PGTV_ENGINE_IDLE:
			return "idle";
		case PGTV_ENGINE_PAUSED:
			return "paused";
		case PGTV_ENGINE_NO_EXTENSION:
			return "no extension";
		case PGTV_ENGINE_STOPPED:
			return "stopped";
	}
	return "unknown";
}

static Datum
lsn_or_null(XLogRecPtr lsn, bool *isnull)
{
	*isnull = (lsn == InvalidXLogRecPtr);
	return LSNGetDatum(lsn);
}

static Datum
ts_or_null(TimestampTz ts, bool *isnull)
{
	*isnull = (ts == 0);
	return TimestampTzGetDatum(ts);
}

/*
 * pg_tviews_engines(): one row per database engine, from shared memory.
 */
Datum
pg_tviews_engines(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PgtvEngine *copy;
	int			n;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	n = pgtv_shared->nengines;
	copy = palloc(sizeof(PgtvEngine) * n);
	LWLockAcquire(pgtv_shared->lock, LW_SHARED);
	memcpy(copy, pgtv_shared->engines, sizeof(PgtvEngine) * n);
	LWLockRelease(pgtv_shared->lock);

	for (int i = 0; i < n; i++)
	{
		PgtvEngine *e = &copy[i];
		Datum		v[17];
		bool		nulls[17] = {0};
		TimestampTz oldest = 0;
		HASH_SEQ_STATUS st;
		PgtvQueueEntry *q;

		if (e->state == PGTV_ENGINE_FREE)
			continue;
		LWLockAcquire(pgtv_shared->lock, LW_SHARED);
		hash_seq_init(&st, pgtv_queue);
		while ((q = hash_seq_search(&st)) != NULL)
			if (q->k.dboid == e->dboid && (oldest == 0 || q->enqueued_at < oldest))
				oldest = q->enqueued_at;
		LWLockRelease(pgtv_shared->lock);
		v[0] = ObjectIdGetDatum(e->dboid);
		v[1] = CStringGetTextDatum(engine_state_name(e->state));
		v[2] = Int32GetDatum(e->pid);
		nulls[2] = (e->pid == 0);
		v[3] = ts_or_null(e->started_at, &nulls[3]);
		v[4] = ts_or_null(e->heartbeat, &nulls[4]);
		v[5] = Int32GetDatum(e->restarts);
		v[6] = lsn_or_null(e->decoded_lsn, &nulls[6]);
		v[7] = lsn_or_null(e->applied_lsn, &nulls[7]);
		v[8] = lsn_or_null(e->confirmed_lsn, &nulls[8]);
		v[9] = Int64GetDatum((int64) e->batches);
		v[10] = Int64GetDatum((int64) e->changes);
		v[11] = Int64GetDatum((int64) e->keys_refreshed);
		v[12] = Int32GetDatum(pgtv_queue_count(e->dboid, NULL));
		v[13] = CStringGetTextDatum(e->last_error);
		nulls[13] = (e->last_error[0] == '\0');
		v[14] = BoolGetDatum(e->paused);
		v[15] = ts_or_null(oldest, &nulls[15]);
		v[16] = ts_or_null(e->caught_up_at, &nulls[16]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	return (Datum) 0;
}

static const char *
priority_name(int p)
{
	return p == PGTV_PRIO_HIGH ? "high" : p == PGTV_PRIO_LOW ? "low" : "normal";
}

/*
 * pg_tviews_queue_entries(): the refresh queue of this database -- pending
 * and retrying entries -- and its recently processed ones (done, dropped),
 * each with the stable row id the status tables use.
 */
Datum
pg_tviews_queue_entries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS st;
	PgtvQueueEntry *e;
	List	   *copies = NIL;
	List	   *recents = NIL;
	ListCell   *lc;
	TimestampTz now = GetCurrentTimestamp();

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	LWLockAcquire(pgtv_shared->lock, LW_SHARED);
	hash_seq_init(&st, pgtv_queue);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		if (e->k.dboid == MyDatabaseId)
		{
			PgtvQueueEntry *c = palloc(sizeof(PgtvQueueEntry));

			memcpy(c, e, sizeof(PgtvQueueEntry));
			copies = lappend(copies, c);
		}
	}
	for (int i = 0; i < PGTV_RECENT_SIZE; i++)
	{
		PgtvRecent *r = &pgtv_shared->recent[i];

		if (r->seq != 0 && r->dboid == MyDatabaseId && r->outcome != PGTV_FAILED)
		{
			PgtvRecent *c = palloc(sizeof(PgtvRecent));

			memcpy(c, r, sizeof(PgtvRecent));
			recents = lappend(recents, c);
		}
	}
	LWLockRelease(pgtv_shared->lock);

	foreach(lc, copies)
	{
		PgtvQueueEntry *c = lfirst(lc);
		Datum		v[12];
		bool		nulls[12] = {0};

		v[0] = Int64GetDatum((int64) c->seq);
		v[1] = ObjectIdGetDatum(c->k.tview);
		v[2] = CStringGetTextDatum(c->k.key);
		nulls[2] = c->k.full;
		v[3] = BoolGetDatum(c->k.full);
		v[4] = CStringGetTextDatum(priority_name(c->priority));
		v[5] = CStringGetTextDatum(c->attempts > 0 ? "retrying" : "pending");
		v[6] = lsn_or_null(c->source_lsn, &nulls[6]);
		v[7] = ts_or_null(c->enqueued_at, &nulls[7]);
		nulls[8] = true;		/* processed_at */
		v[9] = Int32GetDatum(c->attempts);
		v[10] = CStringGetTextDatum(c->error);
		nulls[10] = (c->error[0] == '\0');
		v[11] = ts_or_null(c->next_attempt > now ? c->next_attempt : 0, &nulls[11]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	foreach(lc, recents)
	{
		PgtvRecent *c = lfirst(lc);
		Datum		v[12];
		bool		nulls[12] = {0};

		v[0] = Int64GetDatum((int64) c->seq);
		v[1] = ObjectIdGetDatum(c->tview);
		v[2] = CStringGetTextDatum(c->key);
		nulls[2] = c->full;
		v[3] = BoolGetDatum(c->full);
		v[4] = CStringGetTextDatum(priority_name(c->priority));
		v[5] = CStringGetTextDatum(c->outcome == PGTV_DONE ? "done" : "dropped");
		v[6] = lsn_or_null(c->source_lsn, &nulls[6]);
		v[7] = ts_or_null(c->enqueued_at, &nulls[7]);
		v[8] = ts_or_null(c->processed_at, &nulls[8]);
		v[9] = Int32GetDatum(c->attempts);
		v[10] = CStringGetTextDatum(c->error);
		nulls[10] = (c->error[0] == '\0');
		nulls[11] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pg_tviews_set_paused);

/*
 * tviews._set_paused(bool): pause or resume this database's engine now
 * (tviews.engine keeps the setting across restarts).
 */
Datum
pg_tviews_set_paused(PG_FUNCTION_ARGS)
{
	bool		paused = PG_GETARG_BOOL(0);
	PgtvEngine *e;

	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	e = pgtv_engine_for_db(MyDatabaseId, true);
	if (e)
	{
		e->paused = paused;
		if (e->latch)
			SetLatch(e->latch);
	}
	LWLockRelease(pgtv_shared->lock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(pg_tviews_queue_drop);
PG_FUNCTION_INFO_V1(pg_tviews_queue_set);

/* The queue entry of this database with row id seq, or NULL; lock held. */
static PgtvQueueEntry *
queue_entry_by_seq(uint64 seq)
{
	HASH_SEQ_STATUS st;
	PgtvQueueEntry *e;

	hash_seq_init(&st, pgtv_queue);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		if (e->seq == seq && e->k.dboid == MyDatabaseId)
		{
			hash_seq_term(&st);
			return e;
		}
	}
	return NULL;
}

/*
 * tviews._queue_drop(rowid) returns oid: drop a pending entry (recorded as
 * dropped); returns its TVIEW, or NULL if it was not pending any more.
 */
Datum
pg_tviews_queue_drop(PG_FUNCTION_ARGS)
{
	uint64		seq = (uint64) PG_GETARG_INT64(0);
	PgtvQueueEntry *e;
	Oid			tview = InvalidOid;

	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	e = queue_entry_by_seq(seq);
	if (e)
	{
		tview = e->k.tview;
		pgtv_record_recent(e, PGTV_DROPPED, "dropped by hand");
		hash_search(pgtv_queue, &e->k, HASH_REMOVE, NULL);
	}
	LWLockRelease(pgtv_shared->lock);
	if (!OidIsValid(tview))
		PG_RETURN_NULL();
	PG_RETURN_OID(tview);
}

/*
 * tviews._queue_set(rowid, priority, retry_now): reprioritise a pending
 * entry, or make a retrying one due now.
 */
Datum
pg_tviews_queue_set(PG_FUNCTION_ARGS)
{
	uint64		seq;
	PgtvQueueEntry *e;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	seq = (uint64) PG_GETARG_INT64(0);
	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	e = queue_entry_by_seq(seq);
	if (e && !PG_ARGISNULL(1))
	{
		char	   *p = text_to_cstring(PG_GETARG_TEXT_PP(1));

		e->priority = strcmp(p, "high") == 0 ? PGTV_PRIO_HIGH :
			strcmp(p, "low") == 0 ? PGTV_PRIO_LOW : PGTV_PRIO_NORMAL;
	}
	if (e && !PG_ARGISNULL(2) && PG_GETARG_BOOL(2))
	{
		e->attempts = 0;
		e->next_attempt = 0;
	}
	LWLockRelease(pgtv_shared->lock);
	wake_engine();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(pg_tviews_create_admin_role);

/*
 * tviews._create_admin_role(): create the NOLOGIN role pg_tviews_admin.
 *
 * PostgreSQL reserves role names starting with "pg_" for predefined roles,
 * and CREATE ROLE refuses them.  pg_tviews_admin is the extension's
 * predefined role (the runbooks grant and check it by that name), so it is
 * created the way predefined roles exist: a row in pg_authid, with no
 * privileges of its own.  Called only from the extension script, which
 * requires a superuser; does nothing if the role exists.
 */
Datum
pg_tviews_create_admin_role(PG_FUNCTION_ARGS)
{
	const char *name = "pg_tviews_admin";
	Relation	rel;
	Datum		values[Natts_pg_authid];
	bool		nulls[Natts_pg_authid];
	HeapTuple	tup;
	Oid			roleid;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser to create role \"%s\"", name)));
	if (OidIsValid(get_role_oid(name, true)))
		PG_RETURN_VOID();

	rel = table_open(AuthIdRelationId, RowExclusiveLock);
	memset(nulls, false, sizeof(nulls));
	roleid = GetNewOidWithIndex(rel, AuthIdOidIndexId, Anum_pg_authid_oid);
	values[Anum_pg_authid_oid - 1] = ObjectIdGetDatum(roleid);
	values[Anum_pg_authid_rolname - 1] =
		DirectFunctionCall1(namein, CStringGetDatum(name));
	values[Anum_pg_authid_rolsuper - 1] = BoolGetDatum(false);
	values[Anum_pg_authid_rolinherit - 1] = BoolGetDatum(true);
	values[Anum_pg_authid_rolcreaterole - 1] = BoolGetDatum(false);
	values[Anum_pg_authid_rolcreatedb - 1] = BoolGetDatum(false);
	values[Anum_pg_authid_rolcanlogin - 1] = BoolGetDatum(false);
	values[Anum_pg_authid_rolreplication - 1] = BoolGetDatum(false);
	values[Anum_pg_authid_rolbypassrls - 1] = BoolGetDatum(false);
	values[Anum_pg_authid_rolconnlimit - 1] = Int32GetDatum(-1);
	nulls[Anum_pg_authid_rolpassword - 1] = true;
	nulls[Anum_pg_authid_rolvaliduntil - 1] = true;
	tup = heap_form_tuple(RelationGetDescr(rel), values, nulls);
	CatalogTupleInsert(rel, tup);
	table_close(rel, NoLock);
	CommandCounterIncrement();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(pg_tviews_note_refresh);

/* A relation's owner, or InvalidOid if it is gone. */
static Oid
relation_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * tviews._note_refresh(tv, started, whole, key): record a manual refresh
 * (times, state, parked keys, dependents queued).  Only the TVIEW's owner
 * (or a member of the owning role) may, as for REFRESH MATERIALIZED VIEW;
 * the catalog work then runs as the extension's owner.
 */
Datum
pg_tviews_note_refresh(PG_FUNCTION_ARGS)
{
	Oid			tview = PG_GETARG_OID(0);
	Oid			owner;
	Oid			save_userid;
	int			save_sec;
	Oid			types[4] = {REGCLASSOID, TIMESTAMPTZOID, BOOLOID, TEXTOID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_VOID();
	owner = relation_owner(tview);
	if (!OidIsValid(owner) || !has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of TVIEW %s",
						OidIsValid(owner) ? get_rel_name(tview) : "(dropped)")));
	args[0] = ObjectIdGetDatum(tview);
	args[1] = PG_GETARG_DATUM(1);
	args[2] = PG_GETARG_DATUM(2);
	if (PG_ARGISNULL(3))
	{
		args[3] = (Datum) 0;
		nulls[3] = 'n';
	}
	else
		args[3] = PG_GETARG_DATUM(3);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	SPI_connect();
	SPI_execute_with_args("SELECT tviews.note_refresh($1, $2, $3, $4)", 4, types, args,
						  nulls, false, 0);
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(pg_tviews_catalog_add);
PG_FUNCTION_INFO_V1(pg_tviews_catalog_remove);

/* The caller must own (be a member of the owner of) every relation. */
static void
check_owns(Oid relid, const char *what)
{
	Oid			owner = relation_owner(relid);

	if (!OidIsValid(owner) || !has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of %s %s", what,
						OidIsValid(owner) ? get_rel_name(relid) : "(dropped)")));
}

/* Run a tviews.* catalog function as the extension's owner. */
static void
run_catalog_function(const char *sql, int nargs, Oid *types, Datum *args)
{
	Oid			save_userid;
	int			save_sec;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	SPI_connect();
	SPI_execute_with_args(sql, nargs, types, args, NULL, false, 0);
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
}

/*
 * tviews._catalog_add(tv, vw, keycol, def): record a TVIEW.  TVIEWs are
 * created by their future owners, who cannot write the catalog; this
 * checks they own the table and the backing view, then writes it.
 */
Datum
pg_tviews_catalog_add(PG_FUNCTION_ARGS)
{
	Oid			types[4] = {REGCLASSOID, REGCLASSOID, NAMEOID, TEXTOID};
	Datum		args[4] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1),
	PG_GETARG_DATUM(2), PG_GETARG_DATUM(3)};

	check_owns(PG_GETARG_OID(0), "table");
	check_owns(PG_GETARG_OID(1), "view");
	run_catalog_function("SELECT tviews.catalog_add($1, $2, $3, $4)", 4, types, args);
	PG_RETURN_VOID();
}

/* tviews._catalog_remove(tv): forget a TVIEW (pg_tviews_drop), for its owner. */
Datum
pg_tviews_catalog_remove(PG_FUNCTION_ARGS)
{
	Oid			types[1] = {REGCLASSOID};
	Datum		args[1] = {PG_GETARG_DATUM(0)};

	check_owns(PG_GETARG_OID(0), "TVIEW");
	run_catalog_function("SELECT tviews.catalog_remove($1)", 1, types, args);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(pg_tviews_run_refresh);

/*
 * tviews._run_refresh(tv regclass, sql text, keys text[], lo text, hi text)
 * returns bigint
 *
 * Runs a refresh statement made by tviews.refresh_sql() for a manual
 * refresh (pg_tviews_refresh, _row, _range) the way the engine runs its
 * own: as the TVIEW's owner, with SECURITY_RESTRICTED_OPERATION and a GUC
 * nest level, as REFRESH MATERIALIZED VIEW does.  Whoever calls it -- a
 * superuser working through a runbook included -- never runs a TVIEW
 * owner's functions with their own privileges, and nothing is read through
 * a TVIEW that its owner could not read.  The caller must have the
 * privileges of the owner (be a member, or a superuser), as for REFRESH
 * MATERIALIZED VIEW; the statement then runs with less than the caller
 * has, never more.  Parameters: $1 keys (text[]), or $1 lo and $2 hi
 * (text), or none.
 */
Datum
pg_tviews_run_refresh(PG_FUNCTION_ARGS)
{
	Oid			tv;
	char	   *sql;
	Oid			owner;
	HeapTuple	tup;
	Oid			argtypes[2];
	Datum		values[2];
	int			nargs = 0;
	PgtvUserContext save;
	int			ret;
	int64		n;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("TVIEW and statement must not be NULL")));
	tv = PG_GETARG_OID(0);
	sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(tv));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", tv)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	if (!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of TVIEW %s", get_rel_name(tv))));

	if (!PG_ARGISNULL(2))
	{
		argtypes[0] = TEXTARRAYOID;
		values[0] = PG_GETARG_DATUM(2);
		nargs = 1;
	}
	else if (!PG_ARGISNULL(3) && !PG_ARGISNULL(4))
	{
		argtypes[0] = argtypes[1] = TEXTOID;
		values[0] = PG_GETARG_DATUM(3);
		values[1] = PG_GETARG_DATUM(4);
		nargs = 2;
	}

	SPI_connect();
	pgtv_become_role(owner, &save);
	ret = SPI_execute_with_args(sql, nargs, argtypes, values, NULL, false, 0);
	pgtv_restore_user(&save);
	n = pgtv_refresh_result(ret, get_rel_name(tv));
	SPI_finish();
	PG_RETURN_INT64(n);
}
