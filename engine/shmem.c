/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared state of pg_tviews: one engine slot per database and the
 *	  refresh queue.
 *
 * The queue is a shared hash table keyed by (database, TVIEW, key), so a
 * hot row updated a thousand times between two batches is one entry: the
 * deduplication the design asks for.  An entry remembers the commit LSN
 * of the oldest change that put it there; the engine never confirms its
 * slot past the oldest entry still queued, which is what makes a crash at
 * any point lose nothing.  The queue is bounded (pg_tviews.queue_size):
 * when it is full, a TVIEW's keys are replaced by one whole-TVIEW entry
 * (correct, coarser) rather than dropped, and decoding pauses until the
 * engine has worked the queue down.
 *
 * Everything is protected by one LWLock; the work done under it is small
 * (hash lookups, counter updates).
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"

#include "access/transam.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

PgtvShared *pgtv_shared = NULL;
HTAB	   *pgtv_queue = NULL;

static Size
shared_size(void)
{
	return add_size(offsetof(PgtvShared, engines),
					mul_size(sizeof(PgtvEngine), pgtv_max_databases));
}

/* shmem_request_hook: reserve our memory and lock */
void
pgtv_shmem_request(void)
{
	RequestAddinShmemSpace(shared_size());
	RequestAddinShmemSpace(hash_estimate_size(pgtv_queue_size,
											  sizeof(PgtvQueueEntry)));
	RequestNamedLWLockTranche("pg_tviews", 1);
}

/* shmem_startup_hook: create or attach */
void
pgtv_shmem_startup(void)
{
	bool		found;
	HASHCTL		ctl;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pgtv_shared = ShmemInitStruct("pg_tviews shared state", shared_size(),
								  &found);
	if (!found)
	{
		memset(pgtv_shared, 0, shared_size());
		pgtv_shared->lock = &(GetNamedLWLockTranche("pg_tviews"))->lock;
		ConditionVariableInit(&pgtv_shared->applied_cv);
		pgtv_shared->nengines = pgtv_max_databases;
		pgtv_shared->next_seq = 1;
	}
	ctl.keysize = sizeof(PgtvQueueKey);
	ctl.entrysize = sizeof(PgtvQueueEntry);
	pgtv_queue = ShmemInitHash("pg_tviews refresh queue",
							   pgtv_queue_size, pgtv_queue_size,
							   &ctl, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * The engine slot of a database; with create, claim a free one (NULL if
 * none is left).  Caller holds pgtv_shared->lock exclusively when create.
 */
PgtvEngine *
pgtv_engine_for_db(Oid dboid, bool create)
{
	PgtvEngine *free_slot = NULL;

	for (int i = 0; i < pgtv_shared->nengines; i++)
	{
		PgtvEngine *e = &pgtv_shared->engines[i];

		if (e->dboid == dboid && e->state != PGTV_ENGINE_FREE)
			return e;
		if (free_slot == NULL && e->state == PGTV_ENGINE_FREE)
			free_slot = e;
	}
	/*
	 * No free slot: take one of a database found without the extension
	 * (it only remembers when that was checked).
	 */
	if (create && free_slot == NULL)
	{
		for (int i = 0; i < pgtv_shared->nengines; i++)
		{
			PgtvEngine *e = &pgtv_shared->engines[i];

			if (e->state == PGTV_ENGINE_NO_EXTENSION && e->pid == 0 &&
				(free_slot == NULL || e->checked_at < free_slot->checked_at))
				free_slot = e;
		}
	}
	if (!create || free_slot == NULL)
		return NULL;
	memset(free_slot, 0, sizeof(PgtvEngine));
	free_slot->dboid = dboid;
	free_slot->state = PGTV_ENGINE_STOPPED;
	return free_slot;
}

/*
 * Queue a key (or, with full, the whole TVIEW) of this database.  Keeps the
 * oldest source LSN of duplicates.  A key that does not fit -- longer than
 * PGTV_KEY_LEN, or the queue is full -- queues a whole-TVIEW refresh
 * instead, for which room is always made by evicting that TVIEW's keys.
 */
void
pgtv_enqueue(Oid tview, const char *key, bool full, XLogRecPtr lsn)
{
	pgtv_enqueue_after(tview, key, full, lsn, InvalidTransactionId);
}

/*
 * As pgtv_enqueue(), for work queued from inside a transaction whose own
 * writes the refresh must see (a manual refresh queueing its dependents):
 * the entry is not due before wait_xid has ended.
 */
void
pgtv_enqueue_after(Oid tview, const char *key, bool full, XLogRecPtr lsn,
				   TransactionId wait_xid)
{
	PgtvQueueKey k;
	PgtvQueueEntry *e;
	bool		found;

	memset(&k, 0, sizeof(k));
	k.dboid = MyDatabaseId;
	k.tview = tview;
	k.full = full;
	if (!full)
	{
		if (strlen(key) >= PGTV_KEY_LEN)
		{
			pgtv_enqueue_after(tview, NULL, true, lsn, wait_xid);
			return;
		}
		strlcpy(k.key, key, PGTV_KEY_LEN);
	}

	LWLockAcquire(pgtv_shared->lock, LW_EXCLUSIVE);
	e = hash_search(pgtv_queue, &k, HASH_ENTER_NULL, &found);
	if (e == NULL && full)
	{
		/* make room: this TVIEW's own keys are subsumed by the full entry */
		HASH_SEQ_STATUS st;
		PgtvQueueEntry *x;
		XLogRecPtr	oldest = lsn;

		hash_seq_init(&st, pgtv_queue);
		while ((x = hash_seq_search(&st)) != NULL)
		{
			if (x->k.dboid == MyDatabaseId && x->k.tview == tview && !x->k.full)
			{
				if (x->source_lsn < oldest)
					oldest = x->source_lsn;
				hash_search(pgtv_queue, &x->k, HASH_REMOVE, NULL);
			}
		}
		lsn = oldest;
		e = hash_search(pgtv_queue, &k, HASH_ENTER_NULL, &found);
	}
	if (e == NULL)
	{
		LWLockRelease(pgtv_shared->lock);
		if (full)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("pg_tviews refresh queue is full"),
					 errhint("Increase pg_tviews.queue_size.")));
		pgtv_enqueue_after(tview, NULL, true, lsn, wait_xid);
		return;
	}
	if (!found)
	{
		e->gen = 0;
		e->seq = pgtv_shared->next_seq++;
		e->priority = PGTV_PRIO_NORMAL;
		e->source_lsn = lsn;
		e->enqueued_at = GetCurrentTimestamp();
		e->next_attempt = 0;
		e->attempts = 0;
		e->wait_xid = InvalidTransactionId;
		e->error[0] = '\0';
	}
	else
	{
		/* queued again: whoever is refreshing it now must not drop it */
		e->gen++;
		if (lsn < e->source_lsn)
			e->source_lsn = lsn;
	}
	if (TransactionIdIsValid(wait_xid))
		e->wait_xid = wait_xid;
	LWLockRelease(pgtv_shared->lock);
}

/*
 * Number of queued entries of a database, and the oldest source LSN among
 * them (InvalidXLogRecPtr when empty).
 */
int
pgtv_queue_count(Oid dboid, XLogRecPtr *oldest_lsn)
{
	HASH_SEQ_STATUS st;
	PgtvQueueEntry *e;
	int			n = 0;
	XLogRecPtr	oldest = InvalidXLogRecPtr;

	LWLockAcquire(pgtv_shared->lock, LW_SHARED);
	hash_seq_init(&st, pgtv_queue);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		if (e->k.dboid != dboid)
			continue;
		n++;
		if (oldest == InvalidXLogRecPtr || e->source_lsn < oldest)
			oldest = e->source_lsn;
	}
	LWLockRelease(pgtv_shared->lock);
	if (oldest_lsn)
		*oldest_lsn = oldest;
	return n;
}

/*
 * Remember a processed queue entry in the ring of recent ones (for the
 * status tables).  Caller holds pgtv_shared->lock exclusively.
 */
void
pgtv_record_recent(PgtvQueueEntry *e, PgtvOutcome outcome, const char *error)
{
	PgtvRecent *r = &pgtv_shared->recent[pgtv_shared->recent_next];

	pgtv_shared->recent_next = (pgtv_shared->recent_next + 1) % PGTV_RECENT_SIZE;
	r->seq = e->seq;
	r->dboid = e->k.dboid;
	r->tview = e->k.tview;
	r->full = e->k.full;
	memcpy(r->key, e->k.key, PGTV_KEY_LEN);
	r->source_lsn = e->source_lsn;
	r->enqueued_at = e->enqueued_at;
	r->processed_at = GetCurrentTimestamp();
	r->attempts = e->attempts;
	r->priority = e->priority;
	r->outcome = outcome;
	strlcpy(r->error, error ? error : e->error, PGTV_ERROR_LEN);
}
