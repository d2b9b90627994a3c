/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The one place where PostgreSQL version differences are handled.
 *
 * pg_tviews is developed against PostgreSQL 15 (the shmem_request_hook,
 * the output plugin API with OutputPluginUpdateProgress(ctx, skipped)).
 * Support for other major versions goes here, behind PG_VERSION_NUM.
 *
 * Copyright (c) 2026, pg_tviews developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_TVIEWS_COMPAT_H
#define PG_TVIEWS_COMPAT_H

#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 160000
#error "pg_tviews supports PostgreSQL 15 only"
#endif

#endif							/* PG_TVIEWS_COMPAT_H */
