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

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/inval.h"
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
	e = pgtv_engine_for_db(MyDatabaseId, false);
	if (e && e->latch)
		SetLatch(e->latch);
	/* a database that had no extension is worth a look now */
	if (e && e->state == PGTV_ENGINE_NO_EXTENSION)
		e->checked_at = 0;
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

		if (!pgtv_enqueue_after(tview, key, false, lsn, xid))
			pgtv_enqueue_after(tview, NULL, true, lsn, xid);
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

	for (;;)
	{
		PgtvEngine *e;
		XLogRecPtr	applied = InvalidXLogRecPtr;

		LWLockAcquire(pgtv_shared->lock, LW_SHARED);
		e = pgtv_engine_for_db(MyDatabaseId, false);
		if (e)
		{
			applied = e->applied_lsn;
			if (e->latch)
				SetLatch(e->latch);
		}
		LWLockRelease(pgtv_shared->lock);

		if (applied >= target)
			PG_RETURN_BOOL(true);
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), timeout_ms))
			PG_RETURN_BOOL(false);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 5, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
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
		Datum		v[14];
		bool		nulls[14] = {0};

		if (e->state == PGTV_ENGINE_FREE)
			continue;
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
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	return (Datum) 0;
}

/*
 * pg_tviews_queue_entries(): the refresh queue of this database.
 */
Datum
pg_tviews_queue_entries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS st;
	PgtvQueueEntry *e;
	List	   *copies = NIL;
	ListCell   *lc;

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
	LWLockRelease(pgtv_shared->lock);

	foreach(lc, copies)
	{
		PgtvQueueEntry *c = lfirst(lc);
		Datum		v[7];
		bool		nulls[7] = {0};

		v[0] = ObjectIdGetDatum(c->k.tview);
		v[1] = CStringGetTextDatum(c->k.key);
		nulls[1] = c->k.full;
		v[2] = BoolGetDatum(c->k.full);
		v[3] = lsn_or_null(c->source_lsn, &nulls[3]);
		v[4] = ts_or_null(c->enqueued_at, &nulls[4]);
		v[5] = Int32GetDatum(c->attempts);
		v[6] = CStringGetTextDatum(c->error);
		nulls[6] = (c->error[0] == '\0');
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	return (Datum) 0;
}
