/*-------------------------------------------------------------------------
 *
 * apply.c
 *	  Set-based refresh of queued keys, in dependency order.
 *
 * For each TVIEW, TVIEWs built on other TVIEWs after those they read, the
 * due keys are refreshed by one statement per pg_tviews.batch_size keys
 * (tviews.refresh_sql(tview, 'keys')): recompute the rows of those
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
#include "storage/procarray.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* A TVIEW as the engine needs it for one pass. */
typedef struct ApplyTview
{
	Oid			tview;
	Oid			owner;
	char	   *name;			/* qualified, quoted */
	char	   *key_column;
	char	   *key_type;		/* format_type of the key */
	char	   *sql_keys;		/* refresh_sql(tview, 'keys') */
	char	   *sql_all;		/* refresh_sql(tview, 'all') */
	List	   *deps;			/* of ApplyDep *: TVIEWs reading this one */
	int			nparents;		/* TVIEWs this one reads (for ordering) */
	bool		done;
} ApplyTview;

/* A dependent TVIEW's lineage rule on another TVIEW. */
typedef struct ApplyDep
{
	Oid			dep;			/* dependent TVIEW */
	char	   *rule;
	char	   *source_column;	/* column of the source TVIEW */
	char	   *tview_column;	/* column of the dependent */
	char	   *dep_key;		/* dependent's key column */
} ApplyDep;

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

static char *
spi_text(HeapTuple tup, TupleDesc desc, int col)
{
	return SPI_getvalue(tup, desc, col);
}

/* All TVIEWs of this database with their refresh statements and edges. */
static List *
load_tviews(void)
{
	List	   *tvs = NIL;
	SPITupleTable *tt;
	uint64		n;

	if (SPI_execute("SELECT t.tview::oid, c.relowner, t.tview::text, t.key_column::text,"
					"       tviews.refresh_sql(t.tview, 'keys'),"
					"       tviews.refresh_sql(t.tview, 'all'), format_type(t.key_type, NULL)"
					"  FROM tviews.tview t JOIN pg_class c ON c.oid = t.tview"
					" WHERE NOT t.emergency_disabled"
					" ORDER BY t.tview::oid", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_tviews: could not read TVIEWs");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		ApplyTview *t = palloc0(sizeof(ApplyTview));
		bool		isnull;

		t->tview = DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		t->owner = DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));
		t->name = spi_text(tt->vals[i], tt->tupdesc, 3);
		t->key_column = spi_text(tt->vals[i], tt->tupdesc, 4);
		t->sql_keys = spi_text(tt->vals[i], tt->tupdesc, 5);
		t->sql_all = spi_text(tt->vals[i], tt->tupdesc, 6);
		t->key_type = spi_text(tt->vals[i], tt->tupdesc, 7);
		tvs = lappend(tvs, t);
	}

	if (SPI_execute("SELECT s.source::oid, s.tview::oid, s.rule, s.source_column::text,"
					"       s.tview_column::text, t.key_column::text"
					"  FROM tviews.source s JOIN tviews.tview t USING (tview)"
					" WHERE s.source_is_tview", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_tviews: could not read TVIEW dependencies");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		Oid			src = DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		Oid			dep = DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));
		ListCell   *lc;

		foreach(lc, tvs)
		{
			ApplyTview *t = lfirst(lc);

			if (t->tview == src)
			{
				ApplyDep   *d = palloc0(sizeof(ApplyDep));

				d->dep = dep;
				d->rule = spi_text(tt->vals[i], tt->tupdesc, 3);
				d->source_column = spi_text(tt->vals[i], tt->tupdesc, 4);
				d->tview_column = spi_text(tt->vals[i], tt->tupdesc, 5);
				d->dep_key = spi_text(tt->vals[i], tt->tupdesc, 6);
				t->deps = lappend(t->deps, d);
			}
			if (t->tview == dep)
				t->nparents++;
		}
	}
	return tvs;
}

/*
 * Dependency order (Kahn).  A cycle cannot be created through the SQL
 * API, but a hand-edited catalog could hold one: refuse it loudly.
 */
static List *
order_tviews(List *tvs)
{
	List	   *order = NIL;
	bool		progress = true;

	while (progress)
	{
		ListCell   *lc;

		progress = false;
		foreach(lc, tvs)
		{
			ApplyTview *t = lfirst(lc);
			ListCell   *ld;

			if (t->done || t->nparents > 0)
				continue;
			t->done = true;
			order = lappend(order, t);
			progress = true;
			foreach(ld, t->deps)
			{
				ApplyDep   *d = lfirst(ld);
				ListCell   *lx;

				foreach(lx, tvs)
				{
					ApplyTview *x = lfirst(lx);

					if (x->tview == d->dep)
						x->nparents--;
				}
			}
		}
	}
	if (list_length(order) != list_length(tvs))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_RECURSION),
				 errmsg("pg_tviews: TVIEW dependencies form a cycle"),
				 errhint("Check tviews.source for rows with source_is_tview.")));
	return order;
}

/*
 * Take the due entries of a TVIEW: its keys, and whether a whole refresh
 * is due.
 */
static List *
take_due(Oid tview, bool *full, XLogRecPtr *full_lsn, uint32 *full_gen)
{
	HASH_SEQ_STATUS st;
	PgtvQueueEntry *e;
	List	   *keys = NIL;
	TimestampTz now = GetCurrentTimestamp();

	*full = false;
	LWLockAcquire(pgtv_shared->lock, LW_SHARED);
	hash_seq_init(&st, pgtv_queue);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		if (e->k.dboid != MyDatabaseId || e->k.tview != tview ||
			e->next_attempt > now)
			continue;
		/* queued by a transaction whose writes we must see: not yet */
		if (TransactionIdIsValid(e->wait_xid) &&
			TransactionIdIsInProgress(e->wait_xid))
			continue;
		if (e->k.full)
		{
			*full = true;
			*full_lsn = e->source_lsn;
			*full_gen = e->gen;
		}
		else
		{
			TakenKey   *k = palloc(sizeof(TakenKey));

			memcpy(k->key, e->k.key, PGTV_KEY_LEN);
			k->lsn = e->source_lsn;
			k->priority = e->priority;
			k->seq = e->seq;
			k->gen = e->gen;
			keys = lappend(keys, k);
		}
	}
	LWLockRelease(pgtv_shared->lock);
	list_sort(keys, taken_cmp);
	return keys;
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
note_failure(ApplyTview *t, const char *key, bool full, const char *msg,
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

/* Run one refresh statement as the TVIEW owner; returns rows changed. */
static int64
run_refresh(ApplyTview *t, const char *sql, Datum keys)
{
	Oid			save_userid;
	int			save_sec;
	int64		changed = 0;
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1] = {keys};
	int			ret;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(t->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);

	/*
	 * One refresh of a TVIEW at a time (the engine's and manual ones):
	 * a refresh that computed its rows from an older snapshot must not
	 * overwrite rows a newer one wrote.  The lock is taken before the
	 * refresh statement takes its snapshot; readers are not blocked.
	 */
	SPI_execute(psprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", t->name), false, 0);
	ret = SPI_execute_with_args(sql, keys ? 1 : 0, argtypes, args, NULL, false, 0);
	SetUserIdAndSecContext(save_userid, save_sec);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "pg_tviews: refresh statement of %s returned %d", t->name, ret);
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			changed = DatumGetInt64(d);
	}
	return changed;
}

/*
 * Lineage values of dependents, read from a TVIEW's rows with these keys
 * (all rows when keys is 0): the input of the cascade.
 */
static List *
read_dep_values(ApplyTview *t, ApplyDep *d, Datum keys)
{
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1] = {keys};
	List	   *vals = NIL;
	char	   *sql;

	sql = psprintf("SELECT DISTINCT %s::text FROM %s WHERE %s = ANY ($1::%s[])",
				   quote_identifier(d->source_column), t->name,
				   quote_identifier(t->key_column), t->key_type);
	/* not read-only: a fresh snapshot sees the rows just refreshed */
	if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
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
cascade_values(ApplyDep *d, List *vals, XLogRecPtr lsn)
{
	ListCell   *lc;

	if (vals == NIL)
		return;
	if (strcmp(d->rule, "parent") == 0)
	{
		Datum	   *elems = palloc(sizeof(Datum) * list_length(vals));
		int			n = 0;
		Oid			argtypes[1] = {TEXTARRAYOID};
		Datum		args[1];
		char	   *sql;

		foreach(lc, vals)
			elems[n++] = CStringGetTextDatum(lfirst(lc));
		args[0] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
		sql = pgtv_parent_lookup_sql(d->dep, d->dep_key, d->tview_column);
		if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "pg_tviews: cascade lookup failed");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			char	   *k = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

			if (k && !pgtv_enqueue(d->dep, k, false, lsn))
				pgtv_enqueue(d->dep, NULL, true, lsn);
		}
		return;
	}
	foreach(lc, vals)
	{
		if (!pgtv_enqueue(d->dep, lfirst(lc), false, lsn))
			pgtv_enqueue(d->dep, NULL, true, lsn);
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
static ErrorData *
run_in_subxact(void (*fn) (void *), void *arg)
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

/* One refresh statement's work, for run_in_subxact(). */
typedef struct RefreshWork
{
	ApplyTview *t;
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
	ApplyTview *t = w->t;
	Datum		arr = keys_array(w->keys, w->from, w->to);
	ListCell   *lc;
	ListCell   *lb;
	List	   *before = NIL;

	foreach(lc, t->deps)
	{
		ApplyDep   *d = lfirst(lc);

		before = lappend(before, strcmp(d->rule, "full") == 0 ? NIL :
						 read_dep_values(t, d, arr));
	}
	w->changed = run_refresh(t, t->sql_keys, arr);
	if (w->changed == 0)
		return;
	forboth(lc, t->deps, lb, before)
	{
		ApplyDep   *d = lfirst(lc);

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

	w->changed = run_refresh(w->t, w->t->sql_all, (Datum) 0);
	foreach(lc, w->t->deps)
		pgtv_enqueue(((ApplyDep *) lfirst(lc))->dep, NULL, true, w->lsn);
	SPI_execute_with_args("UPDATE tviews.tview SET state = 'ready',"
						  " full_refreshes = full_refreshes + 1 WHERE tview = $1",
						  1, argtypes, args, NULL, false, 0);
}

/*
 * Refresh keys[from, to) of a TVIEW; on failure split and retry until the
 * failing keys are isolated.  Returns rows changed.
 */
static int64
refresh_keys(ApplyTview *t, List *keys, int from, int to)
{
	RefreshWork w = {t, keys, from, to,
	((TakenKey *) list_nth(keys, from))->lsn, 0};
	ErrorData  *edata = run_in_subxact(refresh_keys_work, &w);

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
refresh_full(ApplyTview *t, XLogRecPtr lsn, uint32 gen)
{
	RefreshWork w = {t, NIL, 0, 0, lsn, 0};
	ErrorData  *edata = run_in_subxact(refresh_full_work, &w);

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
			if (((ApplyTview *) lfirst(lc))->tview == e->k.tview)
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

	if (pgtv_queue_count(MyDatabaseId, NULL) == 0)
		return 0;

	/* transactions at or after this xmin may be invisible to the list */
	list_xmin = GetActiveSnapshot()->xmin;
	order = load_tviews();
	purge_orphans(order, list_xmin);
	order = order_tviews(order);
	foreach(lc, order)
	{
		ApplyTview *t = lfirst(lc);
		bool		full;
		XLogRecPtr	full_lsn = InvalidXLogRecPtr;
		uint32		full_gen = 0;
		List	   *keys = take_due(t->tview, &full, &full_lsn, &full_gen);
		TimestampTz start = GetCurrentTimestamp();
		int64		changed = 0;
		int			nkeys = list_length(keys);

		if (!full && nkeys == 0)
			continue;
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

		{
			Oid			argtypes[3] = {OIDOID, INT8OID, NUMERICOID};
			long		secs;
			int			usecs;
			Datum		args[3];

			TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
			args[0] = ObjectIdGetDatum(t->tview);
			args[1] = Int64GetDatum(changed);
			args[2] = DirectFunctionCall3(numeric_in,
										  CStringGetDatum(psprintf("%.3f", secs * 1000.0 + usecs / 1000.0)),
										  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
			SPI_execute_with_args("UPDATE tviews.tview SET last_refreshed = now(),"
								  " last_refresh_duration_ms = $3,"
								  " rows_refreshed = rows_refreshed + $2 WHERE tview = $1",
								  3, argtypes, args, NULL, false, 0);
		}
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
