/*-------------------------------------------------------------------------
 *
 * apply.c
 *	  Set-based refresh of queued keys, in dependency order.
 *
 * For each TVIEW, TVIEWs built on other TVIEWs after those they read, the
 * due keys are refreshed by one statement per pg_tviews.batch_size keys
 * (tviews.refresh_sql(tview, 'keys'), prepared once: tvcache.c):
 * recompute the rows of those
 * keys from the backing view, insert or update the ones that differ,
 * delete the ones that vanished, leave unchanged rows alone.  A
 * whole-TVIEW entry runs the same statement over all keys.
 *
 * Refresh runs as the TVIEW's owner with SECURITY_RESTRICTED_OPERATION,
 * as REFRESH MATERIALIZED VIEW does: the engine never reads anything
 * through a TVIEW that its owner could not read.
 *
 * Each statement runs in a subtransaction.  When it fails, the keys are
 * split and retried until the failing ones are isolated; those stay
 * queued with their error and a doubling delay, and after
 * pg_tviews.max_retries attempts are parked in tviews.failed_key with
 * the TVIEW's last_error set.  Other keys and TVIEWs keep flowing.
 *
 * TVIEW-on-TVIEW: before and after refreshing keys of a TVIEW that others
 * read, the lineage columns of those rows are read, and the dependent
 * TVIEWs' keys derived from them are queued -- to be refreshed later in
 * this same pass, since dependents come later in the order.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* A due queue entry taken for this pass. */
typedef struct TakenKey
{
	char		key[PGTV_KEY_LEN];
	XLogRecPtr	lsn;
	int			priority;
	uint64		seq;
	uint32		gen;			/* generation when taken */
} TakenKey;

/* high priority first, then in queueing order */
static int
taken_cmp(const ListCell *a, const ListCell *b)
{
	TakenKey   *x = lfirst(a);
	TakenKey   *y = lfirst(b);

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return x->seq < y->seq ? -1 : (x->seq > y->seq ? 1 : 0);
}

/* What is due for one TVIEW in this pass. */
typedef struct DueWork
{
	List	   *keys;			/* of TakenKey *, in order */
	bool		full;			/* a whole refresh is due */
	XLogRecPtr	full_lsn;
	uint32		full_gen;
} DueWork;

/*
 * Take the due entries of the TVIEWs in order[from..]: their keys, and
 * whether a whole refresh is due.  One scan of the shared queue for all
 * of them (its size is pg_tviews.queue_size, however few entries it
 * holds).
 */
static void
take_due(List *order, int from, DueWork *due)
{
	HASH_SEQ_STATUS st;
	PgtvQueueEntry *e;
	TimestampTz now = GetCurrentTimestamp();
	int			n = list_length(order);

	for (int i = from; i < n; i++)
		memset(&due[i], 0, sizeof(DueWork));
	LWLockAcquire(pgtv_shared->lock, LW_SHARED);
	hash_seq_init(&st, pgtv_queue);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		int			i;

		if (e->k.dboid != MyDatabaseId || e->next_attempt > now)
			continue;
		for (i = from; i < n; i++)
			if (((PgtvTview *) list_nth(order, i))->tview == e->k.tview)
				break;
		if (i == n)
			continue;
		/* queued by a transaction whose writes we must see: not yet */
		if (TransactionIdIsValid(e->wait_xid) &&
			TransactionIdIsInProgress(e->wait_xid))
			continue;
		if (e->k.full)
		{
			due[i].full = true;
			due[i].full_lsn = e->source_lsn;
			due[i].full_gen = e->gen;
		}
		else
		{
			TakenKey   *k = palloc(sizeof(TakenKey));

			memcpy(k->key, e->k.key, PGTV_KEY_LEN);
			k->lsn = e->source_lsn;
			k->priority = e->priority;
			k->seq = e->seq;
			k->gen = e->gen;
			due[i].keys = lappend(due[i].keys, k);
		}
	}
	LWLockRelease(pgtv_shared->lock);
	for (int i = from; i < n; i++)
		list_sort(due[i].keys, taken_cmp);
}

/*
 * Keep of a TVIEW's taken work what is still queued: the queue is taken
 * once for the whole pass, and while earlier TVIEWs were refreshed (or
 * waited for a lock) an administrator may have deleted entries
 * (DELETE or TRUNCATE of pg_tviews_queue): dropped work is not done.
 */
static void
keep_still_queued(PgtvTview *t, DueWork *due)
{
	PgtvQueueKey k;
	List	   *kept = NIL;
	ListCell   *lc;

	if (due->keys == NIL && !due->full)
		return;
	memset(&k, 0, sizeof(k));
	k.dboid = MyDatabaseId;
	k.tview = t->tview;
	LWLockAcquire(pgtv_shared->lock, LW_SHARED);
	if (due->full)
	{
		PgtvQueueEntry *e;

		k.full = true;
		e = hash_search(pgtv_queue, &k, HASH_FIND, NULL);
		due->full = (e != NULL);
		k.full = false;
	}
	foreach(lc, due->keys)
	{
		TakenKey   *tk = lfirst(lc);

		memcpy(k.key, tk->key, PGTV_KEY_LEN);
		if (hash_search(pgtv_queue, &k, HASH_FIND, NULL) != NULL)
			kept = lappend(kept, tk);
	}
	LWLockRelease(pgtv_shared->lock);
	due->keys = kept;
}

/*
 * Remove a processed entry, remembering how it ended -- unless it was
 * queued again since it was taken (gen moved): then that later request
 * still stands and the entry stays.
 */
static void
dequeue(Oid tview, const char *key, bool full, PgtvOutcome outcome, uint32 gen)
{
	PgtvQueueKey k;
	PgtvQueueEntry *e;

	memset(&k, 0, sizeof(k));
	k.dboid = MyDatabaseId;
	k.tview = tview;
	k.full = full;
	if (!full)
		strlcpy(k.key, key, PGTV_KEY_LEN);
	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	e = hash_search(pgtv_queue, &k, HASH_FIND, NULL);
	if (e != NULL && e->gen == gen)
	{
		pgtv_record_recent(e, outcome, NULL);
		hash_search(pgtv_queue, &k, HASH_REMOVE, NULL);
	}
	LWLockRelease(pgtv_shared->lock);
}

/*
 * A key (or the whole TVIEW) failed: count the attempt, back off, and park
 * it once it has used up its retries.
 */
static void
note_failure(PgtvTview *t, const char *key, bool full, const char *msg,
			 uint32 e_gen)
{
	PgtvQueueKey k;
	PgtvQueueEntry *e;
	int			attempts = 0;
	TimestampTz enqueued_at = GetCurrentTimestamp();

	memset(&k, 0, sizeof(k));
	k.dboid = MyDatabaseId;
	k.tview = t->tview;
	k.full = full;
	if (!full)
		strlcpy(k.key, key, PGTV_KEY_LEN);

	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	e = hash_search(pgtv_queue, &k, HASH_FIND, NULL);
	if (e != NULL)
	{
		enqueued_at = e->enqueued_at;
		attempts = ++e->attempts;
		strlcpy(e->error, msg, PGTV_ERROR_LEN);
		e->next_attempt = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  (int64) pgtv_retry_delay_ms << Min(attempts - 1, 16));
	}
	LWLockRelease(pgtv_shared->lock);

	{
		Oid			argtypes[4] = {OIDOID, TEXTOID, TEXTOID, INT4OID};
		Datum		args[4] = {ObjectIdGetDatum(t->tview),
			CStringGetTextDatum(full ? "" : key),
			CStringGetTextDatum(msg),
		Int32GetDatum(attempts)};

		SPI_execute_with_args("UPDATE tviews.tview SET last_error = $3 WHERE tview = $1",
							  4, argtypes, args, NULL, false, 0);
		if (attempts >= pgtv_max_retries)
		{
			Oid			ptypes[5] = {OIDOID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID};
			Datum		pargs[5] = {args[0], args[1], args[2], args[3],
			TimestampTzGetDatum(enqueued_at)};

			SPI_execute_with_args("INSERT INTO tviews.failed_key AS f"
								  " (tview, key, full_refresh, error, attempts, enqueued_at)"
								  " VALUES ($1, $2, $2 = '', $3, $4, $5)"
								  " ON CONFLICT (tview, key) DO UPDATE"
								  " SET error = EXCLUDED.error, attempts = EXCLUDED.attempts,"
								  "     enqueued_at = EXCLUDED.enqueued_at, failed_at = now()",
								  5, ptypes, pargs, NULL, false, 0);
			dequeue(t->tview, key, full, PGTV_FAILED, e_gen);
			ereport(WARNING,
					(errmsg("pg_tviews: parked %s of TVIEW %s after %d failed attempts",
							full ? "the full refresh" : psprintf("key %s", key),
							t->name, attempts),
					 errdetail_internal("%s", msg)));
		}
	}
}

/*
 * Run one prepared refresh statement as the TVIEW owner; returns rows
 * changed.
 */
static int64
run_refresh(PgtvTview *t, SPIPlanPtr plan, Datum keys)
{
	PgtvUserContext save;
	Datum		args[1] = {keys};
	int			ret;

	/*
	 * One refresh of a TVIEW at a time (the engine's and manual ones):
	 * a refresh that computed its rows from an older snapshot must not
	 * overwrite rows a newer one wrote.  The lock is taken before the
	 * refresh statement takes its snapshot; readers are not blocked.
	 */
	LockRelationOid(t->tview, ShareRowExclusiveLock);
	pgtv_become_owner(t, &save);
	ret = SPI_execute_plan(plan, keys ? args : NULL, NULL, false, 0);
	pgtv_restore_user(&save);
	return pgtv_refresh_result(ret, t->name);
}

/*
 * Lineage values of dependents, read from a TVIEW's rows with these keys:
 * the input of the cascade.
 */
static List *
read_dep_values(PgtvTview *t, PgtvDep *d, Datum keys)
{
	Datum		args[1] = {keys};
	List	   *vals = NIL;
	SPIPlanPtr	plan = pgtv_plan_dep_values(t, d);
	PgtvUserContext save;
	int			ret;

	/* not read-only: a fresh snapshot sees the rows just refreshed */
	pgtv_become_owner(t, &save);
	ret = SPI_execute_plan(plan, args, NULL, false, 0);
	pgtv_restore_user(&save);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "pg_tviews: could not read %s", t->name);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (v)
			vals = lappend(vals, v);
	}
	return vals;
}

/* Queue the dependents' work derived from lineage values. */
static void
cascade_values(PgtvDep *d, List *vals, XLogRecPtr lsn)
{
	ListCell   *lc;

	if (vals == NIL)
		return;
	if (strcmp(d->rule, "parent") == 0)
	{
		pgtv_queue_parent_keys(d->dep_tview, d->tview_column, vals, lsn);
		return;
	}
	foreach(lc, vals)
	{
		pgtv_enqueue(d->dep, lfirst(lc), false, lsn);
	}
}

static Datum
keys_array(List *keys, int from, int to)
{
	Datum	   *elems = palloc(sizeof(Datum) * (to - from));

	for (int i = from; i < to; i++)
		elems[i - from] = CStringGetTextDatum(((TakenKey *) list_nth(keys, i))->key);
	return PointerGetDatum(construct_array(elems, to - from, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/*
 * Run fn(arg) in a subtransaction.  Returns NULL on success, else the
 * error (the subtransaction rolled back).  A query cancel or shutdown is
 * not the work's fault: it is rethrown, ending the engine's pass.
 */
ErrorData *
pgtv_run_in_subxact(void (*fn) (void *), void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
	}
	PG_END_TRY();
	return edata;
}

/* One refresh statement's work, for pgtv_run_in_subxact(). */
typedef struct RefreshWork
{
	PgtvTview *t;
	List	   *keys;			/* of TakenKey *; NIL: whole TVIEW */
	int			from;
	int			to;
	XLogRecPtr	lsn;			/* of the work, for what it queues */
	int64		changed;		/* out */
} RefreshWork;

/*
 * Refresh keys[from, to), and queue the dependents' keys derived from the
 * rows' lineage values before and after.
 */
static void
refresh_keys_work(void *arg)
{
	RefreshWork *w = arg;
	PgtvTview *t = w->t;
	Datum		arr = keys_array(w->keys, w->from, w->to);
	ListCell   *lc;
	ListCell   *lb;
	List	   *before = NIL;

	foreach(lc, t->deps)
	{
		PgtvDep   *d = lfirst(lc);

		before = lappend(before, strcmp(d->rule, "full") == 0 ? NIL :
						 read_dep_values(t, d, arr));
	}
	w->changed = run_refresh(t, pgtv_plan_keys(t), arr);
	if (w->changed == 0)
		return;
	forboth(lc, t->deps, lb, before)
	{
		PgtvDep   *d = lfirst(lc);

		if (strcmp(d->rule, "full") == 0)
			pgtv_enqueue(d->dep, NULL, true, w->lsn);
		else
		{
			cascade_values(d, lfirst(lb), w->lsn);
			cascade_values(d, read_dep_values(t, d, arr), w->lsn);
		}
	}
}

/* Refresh the whole TVIEW; its dependents are refreshed whole too. */
static void
refresh_full_work(void *arg)
{
	RefreshWork *w = arg;
	ListCell   *lc;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(w->t->tview)};

	w->changed = run_refresh(w->t, pgtv_plan_all(w->t), (Datum) 0);
	foreach(lc, w->t->deps)
		pgtv_enqueue(((PgtvDep *) lfirst(lc))->dep, NULL, true, w->lsn);
	SPI_execute_with_args("UPDATE tviews.tview SET state = 'ready',"
						  " full_refreshes = full_refreshes + 1 WHERE tview = $1",
						  1, argtypes, args, NULL, false, 0);
}

/*
 * Refresh keys[from, to) of a TVIEW; on failure split and retry until the
 * failing keys are isolated.  Returns rows changed.
 */
static int64
refresh_keys(PgtvTview *t, List *keys, int from, int to)
{
	RefreshWork w = {t, keys, from, to,
	((TakenKey *) list_nth(keys, from))->lsn, 0};
	ErrorData  *edata = pgtv_run_in_subxact(refresh_keys_work, &w);

	if (edata != NULL)
	{
		if (to - from > 1)
		{
			int			mid = from + (to - from) / 2;

			return refresh_keys(t, keys, from, mid) +
				refresh_keys(t, keys, mid, to);
		}
		note_failure(t, ((TakenKey *) list_nth(keys, from))->key, false,
					 edata->message, ((TakenKey *) list_nth(keys, from))->gen);
		return 0;
	}
	for (int i = from; i < to; i++)
		dequeue(t->tview, ((TakenKey *) list_nth(keys, i))->key, false, PGTV_DONE,
				((TakenKey *) list_nth(keys, i))->gen);
	return w.changed;
}

/* Refresh a whole TVIEW in a subtransaction. */
static int64
refresh_full(PgtvTview *t, XLogRecPtr lsn, uint32 gen)
{
	RefreshWork w = {t, NIL, 0, 0, lsn, 0};
	ErrorData  *edata = pgtv_run_in_subxact(refresh_full_work, &w);

	if (edata != NULL)
	{
		note_failure(t, NULL, true, edata->message, gen);
		return 0;
	}
	dequeue(t->tview, NULL, true, PGTV_DONE, gen);
	return w.changed;
}

/*
 * Drop queued work of TVIEWs that no longer exist (dropped meanwhile) or
 * are emergency-disabled (marked stale, rebuilt on enable): nobody would
 * apply it, and it would hold the slot back forever.
 */
static void
purge_orphans(List *tvs, TransactionId list_xmin)
{
	HASH_SEQ_STATUS st;
	PgtvQueueEntry *e;

	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&st, pgtv_queue);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		ListCell   *lc;
		bool		known = false;

		if (e->k.dboid != MyDatabaseId)
			continue;
		foreach(lc, tvs)
		{
			if (((PgtvTview *) lfirst(lc))->tview == e->k.tview)
			{
				known = true;
				break;
			}
		}
		/*
		 * Work queued by a transaction (e.g. the one that just re-enabled
		 * the TVIEW) is judged only once that transaction is over and we
		 * look at the catalog again (next pass): our list may predate it.
		 */
		if (!known && TransactionIdIsValid(e->wait_xid))
		{
			if (TransactionIdIsInProgress(e->wait_xid) ||
				!TransactionIdPrecedes(e->wait_xid, list_xmin))
				continue;
		}
		if (!known)
		{
			pgtv_record_recent(e, PGTV_DROPPED, "TVIEW dropped or emergency-disabled");
			hash_search(pgtv_queue, &e->k, HASH_REMOVE, NULL);
		}
	}
	LWLockRelease(pgtv_shared->lock);
}

/*
 * Record a TVIEW's refresh in its catalog row: the status tables' figures.
 */
static void
note_refreshed(PgtvTview *t, TimestampTz start, int64 changed)
{
	static SPIPlanPtr plan = NULL;
	long		secs;
	int			usecs;
	Datum		args[3];

	if (plan == NULL)
	{
		Oid			argtypes[3] = {OIDOID, INT8OID, NUMERICOID};

		plan = pgtv_keep_plan("UPDATE tviews.tview SET last_refreshed = now(),"
							  " last_refresh_duration_ms = $3,"
							  " rows_refreshed = rows_refreshed + $2 WHERE tview = $1",
							  3, argtypes);
	}
	TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
	args[0] = ObjectIdGetDatum(t->tview);
	args[1] = Int64GetDatum(changed);
	args[2] = DirectFunctionCall3(numeric_in,
								  CStringGetDatum(psprintf("%.3f", secs * 1000.0 + usecs / 1000.0)),
								  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "pg_tviews: could not record the refresh of %s", t->name);
}

/*
 * Work the queue of this database once.  Returns the number of keys (or
 * whole refreshes) processed.
 */
int
pgtv_apply_queue(void)
{
	List	   *order;
	ListCell   *lc;
	int			processed = 0;
	TransactionId list_xmin;
	DueWork    *due;
	bool		cascaded = false;

	if (pgtv_queue_count(MyDatabaseId, NULL) == 0)
		return 0;

	/* transactions at or after this xmin may be invisible to the list */
	list_xmin = GetActiveSnapshot()->xmin;
	order = pgtv_tvcache_ordered();
	purge_orphans(order, list_xmin);
	due = palloc0(sizeof(DueWork) * Max(list_length(order), 1));
	take_due(order, 0, due);
	foreach(lc, order)
	{
		PgtvTview  *t = lfirst(lc);
		int			i = foreach_current_index(lc);
		bool		full;
		XLogRecPtr	full_lsn;
		uint32		full_gen;
		List	   *keys;
		TimestampTz start = GetCurrentTimestamp();
		int64		changed = 0;
		int			nkeys;

		/*
		 * A TVIEW refreshed earlier in this pass queued work for the TVIEWs
		 * built on it, which come later in the order: take again.
		 */
		if (cascaded)
		{
			take_due(order, i, due);
			cascaded = false;
		}
		else if (i > 0)
			keep_still_queued(t, &due[i]);
		keys = due[i].keys;
		full = due[i].full;
		full_lsn = due[i].full_lsn;
		full_gen = due[i].full_gen;
		nkeys = list_length(keys);

		if (!full && nkeys == 0)
			continue;
		if (t->deps != NIL)
			cascaded = true;
		if (full)
		{
			changed = refresh_full(t, full_lsn, full_gen);
			/* the full refresh covered the keys too */
			for (int i = 0; i < nkeys; i++)
				dequeue(t->tview, ((TakenKey *) list_nth(keys, i))->key, false,
						PGTV_DONE, ((TakenKey *) list_nth(keys, i))->gen);
			processed += 1 + nkeys;
		}
		else
		{
			for (int from = 0; from < nkeys; from += pgtv_batch_size)
				changed += refresh_keys(t, keys, from,
										Min(from + pgtv_batch_size, nkeys));
			processed += nkeys;
		}

		note_refreshed(t, start, changed);
		LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
		{
			PgtvEngine *e = pgtv_engine_for_db(MyDatabaseId, false);

			if (e)
				e->keys_refreshed += nkeys;
		}
		LWLockRelease(pgtv_shared->lock);
	}
	return processed;
}
