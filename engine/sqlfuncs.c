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

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
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

	if (PG_ARGISNULL(1))
		pgtv_enqueue(tview, NULL, true, lsn);
	else
	{
		char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(1));

		if (!pgtv_enqueue(tview, key, false, lsn))
			pgtv_enqueue(tview, NULL, true, lsn);
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
