/*-------------------------------------------------------------------------
 *
 * collect.c
 *	  From decoded changes to queued refresh work.
 *
 * While WAL is decoded, the decoder's binary messages arrive here (from
 * inside logical decoding, under a historic snapshot: no catalog access,
 * no SPI).  They are reduced to what lineage needs -- per base relation,
 * the distinct values its lineage columns had, old and new, and whether
 * it changed at all or was truncated -- in memory bounded per relation by
 * pg_tviews.max_changes_per_relation: past it, the relation counts as
 * "changed in bulk" and its TVIEWs are refreshed whole.  Correct first.
 *
 * After decoding, inside the engine's transaction, pgtv_collect_flush()
 * applies the lineage rules of tviews.source: a root or child value is
 * a TVIEW key; a parent value is looked up in the TVIEW column it matches;
 * a relation without lineage, truncated or changed in bulk queues a
 * whole-TVIEW refresh.  Every queue entry carries the commit LSN of the
 * oldest transaction behind it.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"
#include "pg_tviews/wire.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* Longest lineage value kept as such; longer ones count as bulk change. */
#define VALUE_LEN	PGTV_KEY_LEN

/* A relation described by a RELATION message: its column names. */
typedef struct CollRelDesc
{
	Oid			relid;			/* hash key */
	int			ncolumns;
	char	  (*names)[NAMEDATALEN];
	uint8	   *flags;
} CollRelDesc;

/* What happened to a relation in this batch. */
typedef struct CollRel
{
	Oid			relid;			/* hash key */
	bool		bulk;			/* truncated, too many values, or unknown
								 * old values: refresh dependents whole */
	int			nvalues;
	XLogRecPtr	first_lsn;		/* commit LSN of the first change */
} CollRel;

/* One distinct lineage value of a relation's column. */
typedef struct CollValueKey
{
	Oid			relid;
	NameData	column;
	char		value[VALUE_LEN];
} CollValueKey;

typedef struct CollValue
{
	CollValueKey k;				/* hash key */
	XLogRecPtr	lsn;			/* oldest commit LSN */
} CollValue;

static MemoryContext desc_cxt = NULL;	/* relation descriptions: session */
static MemoryContext batch_cxt = NULL;	/* per batch */
static HTAB *descs = NULL;
static HTAB *rels = NULL;
static HTAB *values = NULL;
static XLogRecPtr cur_commit_lsn = InvalidXLogRecPtr;
static TransactionId cur_xid = InvalidTransactionId;
static bool cur_relevant = false;	/* current txn changed a tracked table */
static TransactionId *committed_xids = NULL;	/* relevant committed xids */
static int	ncommitted = 0;
static int	maxcommitted = 0;
static long nchanges = 0;

void
pgtv_collect_reset(void)
{
	HASHCTL		ctl;

	if (desc_cxt == NULL)
	{
		desc_cxt = AllocSetContextCreate(TopMemoryContext, "pg_tviews relation descriptions",
										 ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CollRelDesc);
		ctl.hcxt = desc_cxt;
		descs = hash_create("pg_tviews relation descriptions", 64, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		batch_cxt = AllocSetContextCreate(TopMemoryContext, "pg_tviews batch",
										  ALLOCSET_DEFAULT_SIZES);
	}
	MemoryContextReset(batch_cxt);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(CollRel);
	ctl.hcxt = batch_cxt;
	rels = hash_create("pg_tviews changed relations", 64, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(CollValueKey);
	ctl.entrysize = sizeof(CollValue);
	ctl.hcxt = batch_cxt;
	values = hash_create("pg_tviews changed values", 1024, &ctl,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	nchanges = 0;
	committed_xids = NULL;		/* was in batch_cxt */
	ncommitted = maxcommitted = 0;
}

/*
 * Pause decoding when this batch already holds a lot of values: apply
 * first (backpressure), then go on.
 */
bool
pgtv_collect_is_full(void)
{
	return values != NULL && hash_get_num_entries(values) >= pgtv_batch_size;
}

/* Row changes decoded in this batch. */
long
pgtv_collect_nchanges(void)
{
	return nchanges;
}

static CollRel *
rel_entry(Oid relid)
{
	bool		found;
	CollRel    *r = hash_search(rels, &relid, HASH_ENTER, &found);

	if (!found)
	{
		r->bulk = false;
		r->nvalues = 0;
		r->first_lsn = cur_commit_lsn;
	}
	return r;
}

static void
remember_desc(PgtvWireRelation *wr)
{
	bool		found;
	CollRelDesc *d = hash_search(descs, &wr->relid, HASH_ENTER, &found);
	MemoryContext old = MemoryContextSwitchTo(desc_cxt);

	if (found)
	{
		pfree(d->names);
		pfree(d->flags);
	}
	d->ncolumns = wr->ncolumns;
	d->names = palloc0(sizeof(NameData) * Max(wr->ncolumns, 1));
	d->flags = palloc0(Max(wr->ncolumns, 1));
	for (int i = 0; i < wr->ncolumns; i++)
	{
		strlcpy(d->names[i], wr->columns[i].name, NAMEDATALEN);
		d->flags[i] = wr->columns[i].flags;
	}
	MemoryContextSwitchTo(old);
}

/* Record the lineage values of a tuple. */
static void
add_tuple(CollRel *r, CollRelDesc *d, PgtvWireTuple *tup)
{
	for (int i = 0; i < tup->nvalues && !r->bulk; i++)
	{
		PgtvWireValue *v = &tup->values[i];
		CollValueKey k;
		CollValue  *cv;
		bool		found;

		if (v->colno >= d->ncolumns)
			elog(ERROR, "pg_tviews: column %u out of range for relation %u",
				 v->colno, r->relid);
		if (v->kind == PGTV_VAL_NULL)
			continue;			/* NULL matches no key */
		if (v->kind == PGTV_VAL_UNCHANGED_TOAST || v->len >= VALUE_LEN)
		{
			r->bulk = true;
			break;
		}
		memset(&k, 0, sizeof(k));
		k.relid = r->relid;
		namestrcpy(&k.column, d->names[v->colno]);
		memcpy(k.value, v->text, v->len);
		cv = hash_search(values, &k, HASH_ENTER, &found);
		if (!found)
		{
			cv->lsn = cur_commit_lsn;
			if (++r->nvalues > pgtv_max_changes_per_relation)
				r->bulk = true;
		}
	}
}

/*
 * Does a tuple lack lineage columns whose old value we need?  An UPDATE
 * without old tuple only tells us the replica identity did not change;
 * any lineage column outside the identity may have.
 */
static bool
old_values_unknown(CollRelDesc *d)
{
	for (int i = 0; i < d->ncolumns; i++)
	{
		if ((d->flags[i] & PGTV_COLFLAG_LINEAGE) &&
			!(d->flags[i] & PGTV_COLFLAG_IDENTITY))
			return true;
	}
	return false;
}

/*
 * One decoder message (called from within logical decoding).
 */
void
pgtv_collect_message(const char *data, int len)
{
	MemoryContext old = MemoryContextSwitchTo(batch_cxt);
	PgtvWireMessage m;
	CollRelDesc *d;
	CollRel    *r;

	pgtv_wire_read(data, len, &m);
	switch (m.type)
	{
		case PGTV_MSG_RELATION:
			remember_desc(&m.relation);
			break;
		case PGTV_MSG_BEGIN:
			cur_commit_lsn = m.lsn;
			cur_xid = m.xid;
			cur_relevant = false;
			break;
		case PGTV_MSG_COMMIT:
			if (cur_relevant)
			{
				if (ncommitted == maxcommitted)
				{
					maxcommitted = Max(64, maxcommitted * 2);
					committed_xids = committed_xids ?
						repalloc(committed_xids, sizeof(TransactionId) * maxcommitted) :
						palloc(sizeof(TransactionId) * maxcommitted);
				}
				committed_xids[ncommitted++] = cur_xid;
			}
			break;
		case PGTV_MSG_INSERT:
		case PGTV_MSG_UPDATE:
		case PGTV_MSG_DELETE:
			d = hash_search(descs, &m.relid, HASH_FIND, NULL);
			if (d == NULL)
				elog(ERROR, "pg_tviews: change of relation %u before its description",
					 m.relid);
			r = rel_entry(m.relid);
			nchanges++;
			cur_relevant = true;
			if (m.type != PGTV_MSG_DELETE)
				add_tuple(r, d, &m.new_tuple);
			if (m.has_old)
				add_tuple(r, d, &m.old_tuple);
			else if (m.type == PGTV_MSG_UPDATE && old_values_unknown(d))
				r->bulk = true;
			else if (m.type == PGTV_MSG_DELETE)
				r->bulk = true; /* no old tuple at all (REPLICA IDENTITY NOTHING) */
			break;
		case PGTV_MSG_TRUNCATE:
			for (int i = 0; i < m.nrelids; i++)
				rel_entry(m.relids[i])->bulk = true;
			cur_relevant = true;
			break;
		default:
			break;				/* messages, streams: not requested */
	}
	MemoryContextSwitchTo(old);
}

/*
 * Wait until every decoded transaction is visible to new snapshots.
 *
 * A commit record reaches the WAL (and so the decoder) before the
 * committing backend leaves the proc array; a refresh whose snapshot was
 * taken in between would recompute rows without the very changes that
 * queued them, and the keys would leave the queue stale.  The
 * transaction's lock on its own xid is released only after it has become
 * visible, so waiting for that lock closes the window.  (Almost always
 * the transactions are long gone and this costs a lookup each.)
 */
void
pgtv_collect_wait_visible(void)
{
	for (int i = 0; i < ncommitted; i++)
	{
		TransactionId xid = committed_xids[i];

		if (TransactionIdIsInProgress(xid))
			XactLockTableWait(xid, NULL, NULL, XLTW_None);
	}
}

/* ---------- applying lineage rules (in a transaction, with SPI) ---------- */

/*
 * Parent rule: queue the keys of TVIEW t's rows that the values of its
 * column tvcol affect (here, and in apply.c's cascade to TVIEWs built on
 * TVIEWs).  Returns the number queued.
 */
int
pgtv_queue_parent_keys(PgtvTview *t, const char *tvcol, List *vals, XLogRecPtr lsn)
{
	Datum	   *elems = palloc(sizeof(Datum) * list_length(vals));
	int			n = 0;
	ListCell   *lc;
	Datum		args[1];
	SPIPlanPtr	plan = pgtv_plan_parent_lookup(t, tvcol);
	PgtvUserContext save;
	int			ret;
	int			queued = 0;

	foreach(lc, vals)
		elems[n++] = CStringGetTextDatum(lfirst(lc));
	args[0] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
											  TYPALIGN_INT));
	pgtv_become_owner(t, &save);
	ret = SPI_execute_plan(plan, args, NULL, false, 0);
	pgtv_restore_user(&save);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "pg_tviews: parent lookup of %s failed", t->name);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *key = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (key)
		{
			pgtv_enqueue(t->tview, key, false, lsn);
			queued++;
		}
	}
	return queued;
}

/* A parent lookup, for pgtv_run_in_subxact(). */
typedef struct ParentWork
{
	PgtvTview  *t;
	const char *tvcol;
	List	   *vals;
	XLogRecPtr	lsn;
	int			queued;
} ParentWork;

static void
parent_work(void *arg)
{
	ParentWork *w = arg;

	w->queued = pgtv_queue_parent_keys(w->t, w->tvcol, w->vals, w->lsn);
}

/*
 * Parent rule, isolated: the lookup reads the definition as the TVIEW's
 * owner, and can fail (a privilege revoked, a function raising).  That
 * must not stop the engine for every TVIEW: refresh that TVIEW whole
 * instead -- its refresh fails the same way and is retried, parked and
 * reported in the status tables like any failing refresh.
 */
static int
queue_parent_keys_safely(PgtvTview *t, const char *tvcol, List *vals, XLogRecPtr lsn)
{
	ParentWork	w = {t, tvcol, vals, lsn, 0};
	ErrorData  *edata = pgtv_run_in_subxact(parent_work, &w);

	if (edata == NULL)
		return w.queued;
	ereport(LOG,
			(errmsg("pg_tviews: parent lookup of TVIEW %s failed, refreshing it whole: %s",
					t->name, edata->message)));
	pgtv_enqueue(t->tview, NULL, true, lsn);
	return 1;
}

/*
 * Turn the batch into queue entries, by the lineage rules of each changed
 * table (tvcache.c).  Returns the number queued.
 */
int
pgtv_collect_flush(void)
{
	int			queued = 0;
	HASH_SEQ_STATUS st;
	CollRel    *r;

	if (rels == NULL || hash_get_num_entries(rels) == 0)
		return 0;

	hash_seq_init(&st, rels);
	while ((r = hash_seq_search(&st)) != NULL)
	{
		ListCell   *lc;

		foreach(lc, pgtv_tvcache_rules(r->relid))
		{
			PgtvRule   *rule = lfirst(lc);
			HASH_SEQ_STATUS vs;
			CollValue  *cv;
			List	   *parent_vals = NIL;
			bool		parent = strcmp(rule->rule, "parent") == 0;

			if (r->bulk || strcmp(rule->rule, "full") == 0 || rule->source_column == NULL)
			{
				pgtv_enqueue(rule->tview->tview, NULL, true, r->first_lsn);
				queued++;
				continue;
			}
			hash_seq_init(&vs, values);
			while ((cv = hash_seq_search(&vs)) != NULL)
			{
				if (cv->k.relid != r->relid ||
					strcmp(NameStr(cv->k.column), rule->source_column) != 0)
					continue;
				if (parent)
					parent_vals = lappend(parent_vals, cv->k.value);
				else
				{
					pgtv_enqueue(rule->tview->tview, cv->k.value, false, cv->lsn);
					queued++;
				}
			}
			if (parent_vals != NIL)
				queued += queue_parent_keys_safely(rule->tview, rule->tview_column,
												   parent_vals, r->first_lsn);
		}
	}
	return queued;
}
