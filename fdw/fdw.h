/*-------------------------------------------------------------------------
 *
 * fdw.h
 *	  pg_tviews_fdw: the engine's live state as foreign tables.
 *
 *	 handler.c  the wrapper: options, planning, scans, EXPLAIN, import
 *	 modify.c   INSERT, UPDATE, DELETE and TRUNCATE through the tables
 *
 * Each status table reads one view in the tviews schema (the catalog, and
 * the shared-memory state through pg_tviews_engines() and
 * pg_tviews_queue_entries()); the view's first column is the row's stable
 * id, which becomes the row's ctid.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TVIEWS_FDW_H
#define PG_TVIEWS_FDW_H

#include "nodes/pg_list.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"

typedef struct StatusTable
{
	const char *name;			/* option status_table, e.g. "queue" */
	const char *foreign_name;	/* imported as, e.g. "pg_tviews_queue" */
	const char *view;			/* tviews.<x>_rows */
	bool		can_insert;
	bool		can_update;
	bool		can_delete;
	bool		can_truncate;
} StatusTable;

/* handler.c */
extern const StatusTable *pgtv_status_table_of(Oid foreigntableid);
extern void pgtv_rowid_to_tid(int64 rowid, ItemPointer tid);
extern int64 pgtv_tid_to_rowid(ItemPointer tid);
extern void pgtv_as_extension_owner(Oid *save_userid, int *save_sec);
extern List *pgtv_fetch_rows(Relation rel, const StatusTable *t,
							 const char *where, int nparams, Oid *types,
							 Datum *values, char *nulls);

/* modify.c */
struct FdwRoutine;
extern void pgtv_fdw_modify_routines(struct FdwRoutine *routine);

#endif							/* PG_TVIEWS_FDW_H */
