/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *	  Committing transactions wake their database's engine.
 *
 * The engine sleeps on its latch between passes.  Waiting for the next
 * poll (pg_tviews.poll_interval) would add up to a whole interval to the
 * commit-to-visible lag of every change, so, as PostgreSQL wakes its
 * walsenders when WAL is flushed, every backend that commits a
 * transaction that wrote something sets the latch of its database's
 * engine.  This is a transaction callback, not a trigger: it runs once per
 * commit, whatever was written, costs a read of shared memory and at most
 * one SetLatch() (a no-op when the latch is already set, as it is under
 * load), and never fails the commit.  The poll stays as the fallback for
 * commits that do not run it (COMMIT PREPARED, asynchronous commit whose
 * WAL is flushed later).
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"

/* did the committing transaction write (it has an xid)? */
static bool xact_wrote = false;

/* the engine process itself does not wake itself */
static bool is_engine = false;

/* where this backend last found its database's engine slot */
static int	engine_hint = -1;

/*
 * The latch of this database's engine, or NULL.  Read without the lock:
 * a torn or stale answer costs at most a spurious wakeup of some process
 * (a latch is always valid shared memory) or a missed one, which the poll
 * covers.
 */
static Latch *
engine_latch(void)
{
	if (pgtv_shared == NULL)
		return NULL;
	if (engine_hint < 0 || engine_hint >= pgtv_shared->nengines ||
		pgtv_shared->engines[engine_hint].dboid != MyDatabaseId)
	{
		engine_hint = -1;
		for (int i = 0; i < pgtv_shared->nengines; i++)
		{
			if (pgtv_shared->engines[i].dboid == MyDatabaseId)
			{
				engine_hint = i;
				break;
			}
		}
		if (engine_hint < 0)
			return NULL;
	}
	return pgtv_shared->engines[engine_hint].latch;
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			xact_wrote = !is_engine && OidIsValid(MyDatabaseId) &&
				TransactionIdIsValid(GetTopTransactionIdIfAny());
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (xact_wrote)
			{
				Latch	   *latch = engine_latch();

				xact_wrote = false;
				if (latch != NULL)
					SetLatch(latch);
			}
			break;
		default:
			xact_wrote = false;
			break;
	}
}

/* From _PG_init (postmaster): every backend inherits the callback. */
void
pgtv_install_wakeup(void)
{
	RegisterXactCallback(xact_callback, NULL);
}

/* The engine worker says who it is: its own commits wake nobody. */
void
pgtv_wakeup_engine_is_me(void)
{
	is_engine = true;
}
