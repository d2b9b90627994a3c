/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The pg_tviews launcher: keeps one engine worker running per database
 *	  that has the extension.
 *
 * The launcher is a static background worker connected to no database.
 * It lists the databases that accept connections and starts a dynamic
 * engine worker for each.  A worker in a database without the extension
 * says so in its engine slot and exits; the launcher checks such a
 * database again only after a while or when woken (CREATE EXTENSION
 * wakes it through tviews._wakeup()).  A worker that stopped -- an
 * error, a query cancel, pg_terminate_backend -- is restarted after
 * pg_tviews.restart_interval, never in a tight loop.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* How long a database without the extension is left alone. */
#define NO_EXTENSION_RECHECK_MS	30000

/* Wake-up period of the launcher when nothing signals it. */
#define LAUNCHER_NAPTIME_MS		1000

void
pgtv_register_launcher(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "pg_tviews");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "pg_tviews_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "pg_tviews launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "pg_tviews launcher");
	RegisterBackgroundWorker(&bgw);
}

/* The databases an engine may run in. */
static List *
list_databases(void)
{
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext resultcxt = CurrentMemoryContext;

	StartTransactionCommand();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate)
		{
			MemoryContext old = MemoryContextSwitchTo(resultcxt);

			dbs = lappend_oid(dbs, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dbs;
}

static bool
start_worker(Oid dboid)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;	/* the launcher restarts it */
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "pg_tviews");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "pg_tviews_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "pg_tviews engine for database %u", dboid);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "pg_tviews engine");
	bgw.bgw_main_arg = ObjectIdGetDatum(dboid);
	bgw.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&bgw, &handle);
}

/*
 * One pass: start workers where needed.  Returns how long to sleep.
 */
/* databases already warned about for lack of an engine slot */
static List *warned_dbs = NIL;

static long
launcher_pass(List *dbs)
{
	ListCell   *lc;
	TimestampTz now = GetCurrentTimestamp();
	long		sleep_ms = LAUNCHER_NAPTIME_MS;
	MemoryContext old;

	/* free the slots of databases that are gone (DROP DATABASE) */
	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < pgtv_shared->nengines; i++)
	{
		PgtvEngine *e = &pgtv_shared->engines[i];

		if (e->state != PGTV_ENGINE_FREE && e->pid == 0 &&
			!list_member_oid(dbs, e->dboid))
			memset(e, 0, sizeof(PgtvEngine));
	}
	LWLockRelease(pgtv_shared->lock);

	foreach(lc, dbs)
	{
		Oid			dboid = lfirst_oid(lc);
		PgtvEngine *e;
		bool		start = false;

		LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
		e = pgtv_engine_for_db(dboid, true);
		if (e == NULL)
		{
			LWLockRelease(pgtv_shared->lock);
			/* once per database, not every pass */
			if (list_member_oid(warned_dbs, dboid))
				continue;
			old = MemoryContextSwitchTo(TopMemoryContext);
			warned_dbs = lappend_oid(warned_dbs, dboid);
			MemoryContextSwitchTo(old);
			ereport(WARNING,
					(errmsg("pg_tviews: no engine slot left for database %u", dboid),
					 errhint("Increase pg_tviews.max_databases.")));
			continue;
		}
		/* a worker that died without cleaning up (crash) counts as stopped */
		if ((e->state == PGTV_ENGINE_STARTING || e->state == PGTV_ENGINE_STREAMING ||
			 e->state == PGTV_ENGINE_APPLYING || e->state == PGTV_ENGINE_IDLE ||
			 e->state == PGTV_ENGINE_PAUSED) &&
			e->pid != 0 && kill(e->pid, 0) != 0)
		{
			e->state = PGTV_ENGINE_STOPPED;
			e->pid = 0;
		}
		if (e->state == PGTV_ENGINE_STOPPED &&
			TimestampDifferenceExceeds(e->started_at, now,
									   pgtv_restart_interval_s * 1000))
			start = true;
		else if (e->state == PGTV_ENGINE_NO_EXTENSION &&
				 TimestampDifferenceExceeds(e->checked_at, now,
											NO_EXTENSION_RECHECK_MS))
			start = true;
		else if (e->state == PGTV_ENGINE_STARTING &&
				 e->pid == 0 &&
				 TimestampDifferenceExceeds(e->started_at, now, 60000))
			start = true;		/* registration got lost: try again */
		if (start)
		{
			if (e->state == PGTV_ENGINE_STOPPED && e->started_at != 0)
				e->restarts++;
			e->state = PGTV_ENGINE_STARTING;
			e->pid = 0;
			e->started_at = now;
		}
		LWLockRelease(pgtv_shared->lock);

		if (start && !start_worker(dboid))
		{
			LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
			e->state = PGTV_ENGINE_STOPPED;
			LWLockRelease(pgtv_shared->lock);
			ereport(WARNING,
					(errmsg("pg_tviews: could not start the engine for database %u", dboid),
					 errhint("Increase max_worker_processes.")));
		}
	}
	return sleep_ms;
}

void
pg_tviews_launcher_main(Datum arg)
{
	MemoryContext loopcxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	pgtv_shared->launcher_pid = MyProcPid;
	pgtv_shared->launcher_latch = MyLatch;
	LWLockRelease(pgtv_shared->lock);

	loopcxt = AllocSetContextCreate(TopMemoryContext, "pg_tviews launcher loop",
									ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		List	   *dbs;
		long		sleep_ms;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		old = MemoryContextSwitchTo(loopcxt);
		dbs = list_databases();
		sleep_ms = launcher_pass(dbs);
		MemoryContextSwitchTo(old);
		MemoryContextReset(loopcxt);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
