/*-------------------------------------------------------------------------
 *
 * pg_tviews.c
 *	  Entry point of the pg_tviews extension library.
 *
 * pg_tviews must be loaded through shared_preload_libraries: the refresh
 * engine needs shared memory and background workers, which can only be
 * set up while the postmaster starts.  Loading it any other way is an
 * error with a hint, not a half-working extension.
 *
 * All configuration parameters live under the "pg_tviews." prefix, which
 * is reserved here so that a misspelt pg_tviews.* setting is reported
 * instead of silently ignored.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"
#include "pg_tviews/compat.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_tviews must be loaded via shared_preload_libraries"),
				 errhint("Add pg_tviews to shared_preload_libraries in postgresql.conf and restart the server.")));

	MarkGUCPrefixReserved("pg_tviews");
}
