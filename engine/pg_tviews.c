/*-------------------------------------------------------------------------
 *
 * pg_tviews.c
 *	  Entry point of the pg_tviews extension library.
 *
 * pg_tviews must be loaded through shared_preload_libraries: the refresh
 * engine needs shared memory (the refresh queue, per-database engine
 * state) and background workers (a launcher and one engine per database),
 * which can only be set up while the postmaster starts.  Loading it any
 * other way is an error with a hint, not a half-working extension.
 *
 * All configuration parameters live under the "pg_tviews." prefix, which
 * is reserved so that a misspelt pg_tviews.* setting is reported instead
 * of silently ignored.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engine.h"
#include "pg_tviews/compat.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

int			pgtv_max_databases = 8;
int			pgtv_queue_size = 65536;
int			pgtv_batch_size = 10000;
int			pgtv_poll_interval_ms = 10;
int			pgtv_max_retries = 5;
int			pgtv_retry_delay_ms = 1000;
int			pgtv_max_changes_per_relation = 100000;
int			pgtv_restart_interval_s = 1;
int			pgtv_work_mem_kb = 65536;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	pgtv_shmem_request();
}

static void
shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	pgtv_shmem_startup();
}

static void
define_gucs(void)
{
	DefineCustomIntVariable("pg_tviews.max_databases",
							"Maximum number of databases with a pg_tviews engine.",
							"Each engine is a background worker and needs a replication slot.",
							&pgtv_max_databases, 8, 1, 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_tviews.queue_size",
							"Capacity of the shared refresh queue, in (TVIEW, key) entries.",
							"When full, TVIEWs are refreshed whole instead of key by key, and decoding pauses.",
							&pgtv_queue_size, 65536, 1024, INT_MAX / 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_tviews.batch_size",
							"Maximum number of keys refreshed by one statement.",
							NULL,
							&pgtv_batch_size, 10000, 1, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_tviews.poll_interval",
							"How often an idle engine checks for new WAL.",
							"Bounds the delay between a commit and the start of its refresh.",
							&pgtv_poll_interval_ms, 10, 1, 10000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_tviews.max_retries",
							"Attempts at refreshing a failing key before it is parked.",
							NULL,
							&pgtv_max_retries, 5, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_tviews.retry_delay",
							"Delay before the first retry of a failing key; doubles with each attempt.",
							NULL,
							&pgtv_retry_delay_ms, 1000, 1, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_tviews.max_changes_per_relation",
							"Distinct changed values per base relation kept per batch before its TVIEWs are refreshed whole.",
							"Bounds engine memory for huge transactions.",
							&pgtv_max_changes_per_relation, 100000, 100, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_tviews.restart_interval",
							"Seconds before a stopped engine worker is restarted.",
							NULL,
							&pgtv_restart_interval_s, 1, 1, 3600,
							PGC_POSTMASTER, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_tviews.work_mem",
							"work_mem of the engine's refresh statements.",
							"A batch refreshes up to pg_tviews.batch_size keys in one statement; its sorts and hashes use this much memory before spilling to disk. -1 uses work_mem.",
							&pgtv_work_mem_kb, 65536, -1, MAX_KILOBYTES,
							PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	MarkGUCPrefixReserved("pg_tviews");
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_tviews must be loaded via shared_preload_libraries"),
				 errhint("Add pg_tviews to shared_preload_libraries in postgresql.conf and restart the server.")));

	define_gucs();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;

	pgtv_install_ddl_hook();
	pgtv_install_wakeup();
	pgtv_register_launcher();
}
