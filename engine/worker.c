/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The pg_tviews engine: one background worker per database.
 *
 * The worker streams its own replication slot (pg_tviews_<database oid>)
 * with an in-process decoding loop: it reads WAL records up to the flush
 * position and hands them to logical decoding, which calls
 * pg_tviews_decoder (binary format, tracked tables only, key and lineage
 * columns); each message lands in collect.c.  Every record is decoded
 * once, as a walsender would; nothing polls pg_logical_slot_get_changes().
 *
 * A pass of the loop:
 *	 1. decode what has been flushed, until the WAL is exhausted, the
 *	    collected changes are at their bound, or the queue is too full;
 *	 2. in a transaction: map the changes to (TVIEW, key) queue entries,
 *	    refresh queued keys set-based in dependency order, COMMIT;
 *	 3. confirm to the slot the position before which every change is
 *	    applied -- never past the oldest entry still queued, and only
 *	    once the WAL of the refresh commit is flushed.  (Our transactions
 *	    commit asynchronously: refreshed rows are visible without waiting
 *	    for an fsync; see confirm_when_durable().)
 * Confirming only after the commit is what makes a crash anywhere safe:
 * decoding resumes from the slot and replays what was not confirmed, and
 * since a refresh recomputes rows by key, replay is idempotent.
 *
 * An ERROR (including a query cancel) or pg_terminate_backend ends the
 * process; the launcher starts a new one, which resumes from the slot.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogutils.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "nodes/makefuncs.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/slot.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/spin.h"
#include "storage/procarray.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

static PgtvEngine *my_engine = NULL;

/* a pass found the extension dropped */
static bool extension_gone = false;

/* The slot of a database's engine: unique across databases. */
char *
pgtv_slot_name(Oid dboid)
{
	return psprintf("pg_tviews_%u", dboid);
}

static void
set_state(PgtvEngineState state)
{
	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	my_engine->state = state;
	my_engine->heartbeat = GetCurrentTimestamp();
	LWLockRelease(pgtv_shared->lock);
}

/* SIGTERM (pg_terminate_backend, shutdown): remembered for the status */
static volatile sig_atomic_t got_sigterm = false;

static void
worker_sigterm(SIGNAL_ARGS)
{
	got_sigterm = true;
	die(postgres_signal_arg);
}

/* on exit: tell the launcher, so that it restarts us */
static void
worker_exit(int code, Datum arg)
{
	if (my_engine == NULL)
		return;
	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	if (my_engine->pid == MyProcPid)
	{
		/* an ERROR recorded its own message (record_error_and_rethrow) */
		if (got_sigterm)
			strlcpy(my_engine->last_error,
					"terminated by an administrator command (pg_terminate_backend or server shutdown)",
					PGTV_ERROR_LEN);
		if (my_engine->state != PGTV_ENGINE_NO_EXTENSION)
			my_engine->state = PGTV_ENGINE_STOPPED;
		my_engine->pid = 0;
		my_engine->latch = NULL;
	}
	LWLockRelease(pgtv_shared->lock);
	if (pgtv_shared->launcher_latch)
		SetLatch(pgtv_shared->launcher_latch);
}

/*
 * Is the extension installed in this database?  If a transaction that
 * woke us (CREATE EXTENSION calls pg_tviews._wakeup()) is still running,
 * wait for it before answering: otherwise we would look too early, say
 * no, and not look again for a while.
 */
static bool
extension_present(void)
{
	bool		present;
	TransactionId wake_xid;

	LWLockAcquire(pgtv_shared->lock, LW_SHARED);
	wake_xid = my_engine->wake_xid;
	LWLockRelease(pgtv_shared->lock);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (TransactionIdIsValid(wake_xid) && TransactionIdIsInProgress(wake_xid))
		XactLockTableWait(wake_xid, NULL, NULL, XLTW_None);
	CommitTransactionCommand();
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	present = OidIsValid(get_extension_oid("pg_tviews", true));
	CommitTransactionCommand();
	return present;
}

/*
 * The extension is not (or no longer) installed: drop our slot, which
 * would otherwise hold back WAL forever, report it, and exit.
 */
static void pg_attribute_noreturn()
leave_without_extension(const char *slot)
{
	if (MyReplicationSlot != NULL)
		ReplicationSlotRelease();
	if (SearchNamedReplicationSlot(slot, true) != NULL)
	{
		ReplicationSlotDrop(slot, true);
		ereport(LOG,
				(errmsg("pg_tviews: dropped replication slot \"%s\" of database %u: the extension is gone",
						slot, MyDatabaseId)));
	}
	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	my_engine->state = PGTV_ENGINE_NO_EXTENSION;
	my_engine->checked_at = GetCurrentTimestamp();
	LWLockRelease(pgtv_shared->lock);
	proc_exit(0);
}

/*
 * Create the slot if it does not exist yet.  pg_tviews_create() may have
 * made it already, with the same call.
 */
static void
ensure_slot(const char *slot)
{
	if (SearchNamedReplicationSlot(slot, true) != NULL)
		return;
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(slot)};

		SPI_execute_with_args("SELECT pg_create_logical_replication_slot($1, 'pg_tviews_decoder')"
							  " WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)",
							  1, argtypes, values, NULL, false, 0);
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	ereport(LOG, (errmsg("pg_tviews: created replication slot \"%s\"", slot)));
}

/*
 * Where the checkpointer invalidated our slot (max_slot_wal_keep_size), or
 * InvalidXLogRecPtr.  Its WAL is gone: nothing can be decoded from it any
 * more.
 */
static XLogRecPtr
slot_invalidated_at(const char *slot)
{
	ReplicationSlot *s = SearchNamedReplicationSlot(slot, true);
	XLogRecPtr	invalidated_at = InvalidXLogRecPtr;

	if (s != NULL)
	{
		SpinLockAcquire(&s->mutex);
		invalidated_at = s->data.invalidated_at;
		SpinLockRelease(&s->mutex);
	}
	return invalidated_at;
}

/*
 * Our slot was invalidated: the changes between its position and the WAL
 * that remains are lost, so no TVIEW can be trusted.  Say so (the log,
 * tviews.engine, every TVIEW's state 'rebuilding'), then replace the slot.
 * The TVIEWs are refreshed whole (queued when tvcache.c loads), from snapshots
 * taken after the new slot exists: every later change is decoded from it,
 * every earlier one is in the refresh.  Each step is safe to repeat if we
 * die in between: the state survives in the catalog.
 */
static void
replace_invalidated_slot(const char *slot, XLogRecPtr invalidated_at)
{
	char	   *detail;
	int64		marked = 0;

	detail = psprintf("slot \"%s\" lost the WAL it needed at %X/%X (max_slot_wal_keep_size = %d MB)",
					  slot, LSN_FORMAT_ARGS(invalidated_at), max_slot_wal_keep_size_mb);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1] = {CStringGetTextDatum(detail)};
		bool		isnull;

		if (SPI_execute_with_args("SELECT tviews.note_slot_invalidated($1)", 1,
								  argtypes, args, NULL, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "pg_tviews: could not record the slot's invalidation");
		marked = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();

	ereport(WARNING,
			(errmsg("pg_tviews: replication slot \"%s\" was invalidated; rebuilding %lld TVIEWs from a new slot",
					slot, (long long) marked),
			 errdetail("%s. Changes made before the invalidation were never applied.", detail),
			 errhint("Raise max_slot_wal_keep_size, or keep the engine from falling that far behind.")));

	ReplicationSlotDrop(slot, true);
	ensure_slot(slot);

	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	strlcpy(my_engine->last_error, detail, PGTV_ERROR_LEN);
	LWLockRelease(pgtv_shared->lock);
}

/*
 * Whether the engine of this database is switched off
 * (pg_tviews_system_disable), from the catalog: it survives restarts.
 */
static void
load_enabled(void)
{
	bool		enabled = true;

	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute("SELECT enabled FROM tviews.engine", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		enabled = isnull || DatumGetBool(d);
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	my_engine->paused = !enabled;
	LWLockRelease(pgtv_shared->lock);
}

/* decoding output: straight into the collector */
static void
prepare_write(LogicalDecodingContext *ctx, XLogRecPtr lsn, TransactionId xid,
			  bool last_write)
{
	resetStringInfo(ctx->out);
}

static void
do_write(LogicalDecodingContext *ctx, XLogRecPtr lsn, TransactionId xid,
		 bool last_write)
{
	pgtv_collect_message(ctx->out->data, ctx->out->len);
}

static LogicalDecodingContext *
start_decoding(const char *slot)
{
	List	   *options = NIL;
	LogicalDecodingContext *ctx;
	MemoryContext old;

	options = lappend(options, makeDefElem("format", (Node *) makeString("binary"), -1));
	options = lappend(options, makeDefElem("tracked", (Node *) makeString("true"), -1));
	options = lappend(options, makeDefElem("columns", (Node *) makeString("key"), -1));
	options = lappend(options, makeDefElem("actions",
										   (Node *) makeString("insert,update,delete,truncate"), -1));

	/*
	 * A predecessor that was just terminated may not have released the
	 * slot yet: give it a moment rather than failing and restarting.
	 */
	for (int i = 0; i < 100; i++)
	{
		ReplicationSlot *s = SearchNamedReplicationSlot(slot, true);
		pid_t		holder = 0;

		if (s != NULL)
		{
			SpinLockAcquire(&s->mutex);
			holder = s->active_pid;
			SpinLockRelease(&s->mutex);
		}
		if (holder == 0 || holder == MyProcPid)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	ReplicationSlotAcquire(slot, true);

	/*
	 * Created inside a transaction, so that PostgreSQL does not mark this
	 * process as one that only decodes (PROC_IN_LOGICAL_DECODING): others
	 * would then ignore the xmin of our refresh snapshots, and pruning
	 * could remove rows they still need.  The context lives on after the
	 * transaction: it is allocated in a long-lived memory context.
	 */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	old = MemoryContextSwitchTo(TopMemoryContext);
	ctx = CreateDecodingContext(InvalidXLogRecPtr, options, false,
								XL_ROUTINE(.page_read = read_local_xlog_page,
										   .segment_open = wal_segment_open,
										   .segment_close = wal_segment_close),
								prepare_write, do_write, NULL);
	MemoryContextSwitchTo(old);
	CommitTransactionCommand();
	XLogBeginRead(ctx->reader, MyReplicationSlot->data.restart_lsn);
	return ctx;
}

/*
 * Decode flushed WAL until there is no more, or the collector or the
 * queue asks for a pause.  Returns the number of records read.
 */
static int
decode_available(LogicalDecodingContext *ctx)
{
	XLogRecPtr	flush = GetFlushRecPtr(NULL);
	int			nrecords = 0;

	while (ctx->reader->EndRecPtr < flush && !pgtv_collect_is_full())
	{
		XLogRecord *record;
		char	   *errm = NULL;
		MemoryContext old;

		/*
		 * The reader may palloc an oversized record and frees it on the
		 * next read: read in a context that outlives the loop's resets.
		 */
		old = MemoryContextSwitchTo(ctx->context);
		record = XLogReadRecord(ctx->reader, &errm);
		MemoryContextSwitchTo(old);
		if (errm)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("pg_tviews: could not read WAL: %s", errm)));
		if (record != NULL)
			LogicalDecodingProcessRecord(ctx, ctx->reader);
		if ((++nrecords % 1000) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	return nrecords;
}

/*
 * Map and apply in one transaction; returns true if anything was done.
 */
static bool
process_batch(void)
{
	int			nqueued;
	Oid			extoid;

	/* now() in the batch is the batch's time, not the worker's start */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* before any snapshot is taken: see the decoded commits */
	pgtv_collect_wait_visible();

	/*
	 * Hold the extension for the pass: DROP EXTENSION (which locks it
	 * exclusively) waits until the pass is over.  If it was dropped
	 * meanwhile, the catalog is gone: leave.
	 */
	extoid = get_extension_oid("pg_tviews", true);
	if (OidIsValid(extoid))
	{
		LockDatabaseObject(ExtensionRelationId, extoid, 0, AccessShareLock);
		/* the lock made us process invalidations: look again */
		extoid = get_extension_oid("pg_tviews", true);
	}
	if (!OidIsValid(extoid))
	{
		CommitTransactionCommand();
		extension_gone = true;
		return false;
	}
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "pg_tviews: refreshing TVIEWs");
	pgtv_tvcache_validate();
	nqueued = pgtv_collect_flush();
	nqueued += pgtv_apply_queue();
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	/*
	 * Send the statistics of our writes (TVIEW rows, the catalog's
	 * counters) like any backend between transactions: autovacuum only
	 * sees the dead rows that are reported.  Rate-limited inside.
	 */
	pgstat_report_stat(false);
	return nqueued > 0;
}

/*
 * Remember an error that is about to end the worker, so that the engine's
 * status says why it restarted.
 */
static void
record_error_and_rethrow(void)
{
	ErrorData  *edata;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	edata = CopyErrorData();
	MemoryContextSwitchTo(old);
	if (my_engine != NULL)
	{
		LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
		strlcpy(my_engine->last_error, edata->message ? edata->message : "",
				PGTV_ERROR_LEN);
		LWLockRelease(pgtv_shared->lock);
	}
	PG_RE_THROW();
}

static void worker_loop(Oid dboid);

/*
 * work_mem of the refresh statements: pg_tviews.work_mem, or the server's
 * when that is 0 or -1.  Set at start and after a configuration reload.
 */
static void
set_refresh_work_mem(void)
{
	if (pgtv_work_mem_kb > 0)
		SetConfigOption("work_mem", psprintf("%d", Max(pgtv_work_mem_kb, 64)),
						PGC_USERSET, PGC_S_OVERRIDE);
}

/*
 * Positions the engine may confirm once the WAL of its refresh commits is
 * flushed: (commit end, confirmable position) per pass, oldest first.
 * Our transactions commit asynchronously, so that refreshed rows are
 * visible without waiting for an fsync; the slot may only move past a
 * change once the refresh that applied it is durable.  Other commits and
 * the WAL writer flush soon enough; when the list is full, we flush.
 */
#define PGTV_PENDING_CONFIRMS 32
static XLogRecPtr pending_commit_end[PGTV_PENDING_CONFIRMS];
static XLogRecPtr pending_confirm[PGTV_PENDING_CONFIRMS];
static int	npending_confirms = 0;

/*
 * Note that everything before confirm is applied (its refresh committed
 * as our last commit), and confirm to the slot what is durable by now.
 * Returns the position confirmed to the slot.
 */
static XLogRecPtr
confirm_when_durable(XLogRecPtr confirm, XLogRecPtr confirmed)
{
	XLogRecPtr	flushed;
	XLogRecPtr	best = InvalidXLogRecPtr;
	int			kept = 0;

	if (npending_confirms == PGTV_PENDING_CONFIRMS)
		XLogFlush(XactLastCommitEnd);
	if (confirm <= confirmed)
		;						/* nothing new to confirm; see what became durable */
	else if (npending_confirms > 0 &&
		pending_commit_end[npending_confirms - 1] == XactLastCommitEnd)
		pending_confirm[npending_confirms - 1] = confirm;	/* nothing new committed */
	else if (npending_confirms < PGTV_PENDING_CONFIRMS)
	{
		pending_commit_end[npending_confirms] = XactLastCommitEnd;
		pending_confirm[npending_confirms] = confirm;
		npending_confirms++;
	}

	flushed = GetFlushRecPtr(NULL);
	for (int i = 0; i < npending_confirms; i++)
	{
		if (pending_commit_end[i] <= flushed)
			best = pending_confirm[i];
		else
		{
			pending_commit_end[kept] = pending_commit_end[i];
			pending_confirm[kept] = pending_confirm[i];
			kept++;
		}
	}
	npending_confirms = kept;
	if (best > confirmed)
	{
		LogicalConfirmReceivedLocation(best);
		return best;
	}
	return confirmed;
}

void
pg_tviews_worker_main(Datum arg)
{
	PG_TRY();
	{
		worker_loop(DatumGetObjectId(arg));
	}
	PG_CATCH();
	{
		record_error_and_rethrow();
	}
	PG_END_TRY();
}

static void
worker_loop(Oid dboid)
{
	char	   *slot;
	LogicalDecodingContext *ctx;
	MemoryContext loopcxt;
	XLogRecPtr	last_confirmed = InvalidXLogRecPtr;
	TimestampTz last_ext_check = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, worker_sigterm);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	my_engine = pgtv_engine_for_db(dboid, true);
	if (my_engine == NULL)
	{
		LWLockRelease(pgtv_shared->lock);
		proc_exit(0);
	}
	my_engine->pid = MyProcPid;
	my_engine->latch = MyLatch;
	my_engine->state = PGTV_ENGINE_STARTING;
	my_engine->heartbeat = GetCurrentTimestamp();
	LWLockRelease(pgtv_shared->lock);
	before_shmem_exit(worker_exit, (Datum) 0);
	pgtv_wakeup_engine_is_me();

	slot = pgtv_slot_name(dboid);
	if (!extension_present())
		leave_without_extension(slot);

	/* fully qualified names everywhere: no search_path surprises */
	SetConfigOption("search_path", "pg_catalog", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * Refreshed rows become visible when the refresh commits, not after
	 * its WAL is flushed: the flush happens before the slot is confirmed
	 * (see below), which is all the invariant needs.  A crash in between
	 * loses the refresh and keeps the slot where it was, so it is redone.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	set_refresh_work_mem();
	SetConfigOption("application_name", "pg_tviews engine", PGC_USERSET, PGC_S_OVERRIDE);
	pgstat_report_appname("pg_tviews engine");

	ensure_slot(slot);
	{
		XLogRecPtr	invalidated_at = slot_invalidated_at(slot);

		if (invalidated_at != InvalidXLogRecPtr)
			replace_invalidated_slot(slot, invalidated_at);
	}
	load_enabled();
	ctx = start_decoding(slot);
	ereport(LOG,
			(errmsg("pg_tviews engine started for database %u, streaming slot \"%s\" from %X/%X",
					dboid, slot, LSN_FORMAT_ARGS(MyReplicationSlot->data.confirmed_flush))));

	loopcxt = AllocSetContextCreate(TopMemoryContext, "pg_tviews engine loop",
									ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		int			nrecords;
		bool		worked;
		XLogRecPtr	oldest;
		XLogRecPtr	confirm;
		int			pending;
		bool		caught_up;
		XLogRecPtr	pass_flush;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			set_refresh_work_mem();
		}

		/*
		 * Switched off: decode nothing, apply nothing.  The slot keeps the
		 * WAL, so nothing is lost; the lag grows, visibly.
		 */
		if (my_engine->paused)
		{
			set_state(PGTV_ENGINE_PAUSED);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}

		old = MemoryContextSwitchTo(loopcxt);
		pass_flush = GetFlushRecPtr(NULL);
		set_state(PGTV_ENGINE_STREAMING);
		pgtv_collect_reset();
		nrecords = decode_available(ctx);

		set_state(PGTV_ENGINE_APPLYING);
		worked = process_batch();
		MemoryContextSwitchTo(old);
		MemoryContextReset(loopcxt);

		/* DROP EXTENSION: leave, and take the slot with us (once a second) */
		if (extension_gone ||
			TimestampDifferenceExceeds(last_ext_check, GetCurrentTimestamp(), 1000))
		{
			if (!extension_present())
			{
				FreeDecodingContext(ctx);
				leave_without_extension(slot);
			}
			last_ext_check = GetCurrentTimestamp();
		}

		/*
		 * Everything decoded is applied, except what is still queued:
		 * confirm up to the oldest queued change, else up to where we read.
		 */
		pending = pgtv_queue_count(MyDatabaseId, &oldest);
		confirm = ctx->reader->EndRecPtr;
		caught_up = (pending == 0 && confirm >= pass_flush);
		if (pending > 0 && oldest < confirm)
			confirm = oldest;
		if (confirm > last_confirmed || npending_confirms > 0)
			last_confirmed = confirm_when_durable(confirm, last_confirmed);
		LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
		my_engine->decoded_lsn = ctx->reader->EndRecPtr;
		my_engine->applied_lsn = Max(confirm, my_engine->applied_lsn);
		my_engine->confirmed_lsn = last_confirmed;
		my_engine->batches += worked ? 1 : 0;
		my_engine->changes += pgtv_collect_nchanges();
		my_engine->state = PGTV_ENGINE_IDLE;
		my_engine->heartbeat = GetCurrentTimestamp();
		if (caught_up)
			my_engine->caught_up_at = my_engine->heartbeat;
		LWLockRelease(pgtv_shared->lock);
		ConditionVariableBroadcast(&pgtv_shared->applied_cv);

		/* more WAL or more due work: go on at once */
		if ((nrecords > 0 && pgtv_collect_is_full()) ||
			ctx->reader->EndRecPtr < GetFlushRecPtr(NULL))
			continue;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 pgtv_poll_interval_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
