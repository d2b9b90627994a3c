--
-- pg_tviews_fdw: the engine's state as foreign tables.  Their shape, the
-- wrapper, its server and options (and their validation), IMPORT FOREIGN
-- SCHEMA, then what every status table shows for a few TVIEWs after some
-- writes -- deterministic columns only (no pids, LSNs or timestamps: those
-- are checked with IS NOT NULL) --, that every row has a unique ctid that
-- stays the same from one scan to the next, that the runbook idioms work
-- (ROUND(AVG(last_refresh_duration_ms), 0), EXECUTE '... FROM ' ||
-- entity_name), and what EXPLAIN says was pushed down.
--
\set SHOW_CONTEXT never

--
-- The foreign tables CREATE EXTENSION imported, column by column
--
\d pg_tviews_metadata
\d pg_tviews_queue
\d pg_tviews_dependencies
\d pg_tviews_workers
\d pg_tviews_slots
\det+ pg_tviews_*

-- the wrapper and its server (from the catalog: \dew and \des also show
-- the owner, i.e. whoever runs the tests)
SELECT fdwname, fdwhandler::regproc AS handler, fdwvalidator::regproc AS validator,
       fdwoptions
FROM pg_foreign_data_wrapper WHERE fdwname = 'pg_tviews_fdw';
SELECT s.srvname, w.fdwname, s.srvtype, s.srvversion, s.srvoptions
FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
WHERE w.fdwname = 'pg_tviews_fdw';
SELECT c.relname, n.nspname, ft.ftoptions
FROM pg_foreign_table ft
JOIN pg_class c ON c.oid = ft.ftrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_foreign_server s ON s.oid = ft.ftserver
WHERE s.srvname = 'pg_tviews_server'
ORDER BY c.relname;
-- they belong to the extension
SELECT count(*) AS extension_members
FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
WHERE e.extname = 'pg_tviews' AND d.deptype = 'e' AND d.classid = 'pg_class'::regclass
  AND d.objid IN (SELECT ftrelid FROM pg_foreign_table);

--
-- Option validation: the only option is status_table, on a foreign table,
-- naming one of the five status tables
--
CREATE SCHEMA fdw_scratch;
CREATE FOREIGN TABLE fdw_scratch.bad (entity_name text)
    SERVER pg_tviews_server OPTIONS (table_name 'queue');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
CREATE FOREIGN TABLE fdw_scratch.bad (entity_name text)
    SERVER pg_tviews_server OPTIONS (status_table 'bogus');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
CREATE FOREIGN TABLE fdw_scratch.bad (entity_name text)
    SERVER pg_tviews_server OPTIONS (status_table '');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- no options on the server, the wrapper or a user mapping
CREATE SERVER fdw_scratch_server FOREIGN DATA WRAPPER pg_tviews_fdw
    OPTIONS (status_table 'queue');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
ALTER SERVER pg_tviews_server OPTIONS (ADD host 'localhost');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
ALTER FOREIGN DATA WRAPPER pg_tviews_fdw OPTIONS (ADD status_table 'queue');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
CREATE USER MAPPING FOR CURRENT_USER SERVER pg_tviews_server OPTIONS (user 'nobody');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- nothing was created or changed
SELECT (SELECT count(*) FROM pg_foreign_server WHERE srvname = 'fdw_scratch_server') AS servers,
       (SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'pg_tviews_server') AS server_options,
       (SELECT fdwoptions FROM pg_foreign_data_wrapper WHERE fdwname = 'pg_tviews_fdw') AS fdw_options,
       (SELECT count(*) FROM pg_user_mappings WHERE srvname = 'pg_tviews_server') AS mappings,
       to_regclass('fdw_scratch.bad') AS bad_table;

-- a valid option: a second view of the queue with some of its columns
-- (matched by name; a column the status table lacks reads as NULL)
CREATE FOREIGN TABLE fdw_scratch.queue_status (status text, retry_count integer, nonesuch text)
    SERVER pg_tviews_server OPTIONS (status_table 'queue');
SELECT count(*) FILTER (WHERE nonesuch IS NOT NULL) AS nonesuch_set,
       count(*) FILTER (WHERE status IS NULL) AS status_missing
FROM fdw_scratch.queue_status;
-- changing it to a bad value is refused; to another table is fine
ALTER FOREIGN TABLE fdw_scratch.queue_status OPTIONS (SET status_table 'queues');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
ALTER FOREIGN TABLE fdw_scratch.queue_status OPTIONS (ADD status_table 'queue');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- a column of another type than the status table gives
CREATE FOREIGN TABLE fdw_scratch.typed (retry_count text)
    SERVER pg_tviews_server OPTIONS (status_table 'queue');
SELECT * FROM fdw_scratch.typed;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- a foreign table of the server without the option can be created, but
-- not read
CREATE FOREIGN TABLE fdw_scratch.nooption (entity_name text) SERVER pg_tviews_server;
SELECT * FROM fdw_scratch.nooption;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
DROP FOREIGN TABLE fdw_scratch.queue_status, fdw_scratch.typed, fdw_scratch.nooption;

--
-- IMPORT FOREIGN SCHEMA: the server has one remote schema, pg_tviews
--
IMPORT FOREIGN SCHEMA public FROM SERVER pg_tviews_server INTO fdw_scratch;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
IMPORT FOREIGN SCHEMA tviews FROM SERVER pg_tviews_server INTO fdw_scratch;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
IMPORT FOREIGN SCHEMA pg_tviews LIMIT TO (pg_tviews_queue, pg_tviews_slots)
    FROM SERVER pg_tviews_server INTO fdw_scratch;
IMPORT FOREIGN SCHEMA pg_tviews EXCEPT (pg_tviews_queue, pg_tviews_slots)
    FROM SERVER pg_tviews_server INTO fdw_scratch;
\det fdw_scratch.*
-- the imported tables are the same as the extension's
SELECT a.attrelid::regclass::text COLLATE "C" AS foreign_table,
       count(*) AS columns,
       bool_and(b.atttypid = a.atttypid) AS same_types
FROM pg_attribute a
JOIN pg_attribute b ON b.attname = a.attname AND b.attnum = a.attnum
 AND b.attrelid = ('public.' || (SELECT relname FROM pg_class WHERE oid = a.attrelid))::regclass
WHERE a.attrelid IN (SELECT ftrelid FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid
                     WHERE c.relnamespace = 'fdw_scratch'::regnamespace)
  AND a.attnum > 0
GROUP BY a.attrelid ORDER BY 1;
DROP SCHEMA fdw_scratch CASCADE;

--
-- Some TVIEWs and writes: a root and child TVIEW, an oddly named one in a
-- schema with a space, and a TVIEW on both
--
CREATE TABLE tb_fdw_author (pk_author int PRIMARY KEY, name text NOT NULL);
CREATE TABLE tb_fdw_book (pk_book int PRIMARY KEY,
                          fk_author int NOT NULL REFERENCES tb_fdw_author,
                          title text NOT NULL);
INSERT INTO tb_fdw_author VALUES (1, 'Austen'), (2, 'Brontë');
INSERT INTO tb_fdw_book VALUES (10, 1, 'Emma'), (11, 1, 'Persuasion'), (20, 2, 'Villette');
SET client_min_messages = warning;
SELECT pg_tviews_create('tv_fdw_author', $$
    SELECT a.pk_author, a.name,
           (SELECT count(*) FROM tb_fdw_book b WHERE b.fk_author = a.pk_author) AS books
    FROM tb_fdw_author a
$$);
CREATE SCHEMA "fdw space";
SELECT pg_tviews_create('"fdw space"."tv_Odd ""q"" ü"', $$
    SELECT b.pk_book, b.fk_author, b.title FROM tb_fdw_book b
$$, key => 'pk_book');
SELECT pg_tviews_create('tv_fdw_shelf', $$
    SELECT o.pk_book, o.fk_author, o.title, a.name AS author
    FROM "fdw space"."tv_Odd ""q"" ü" o JOIN tv_fdw_author a ON a.pk_author = o.fk_author
$$, key => 'pk_book');
RESET client_min_messages;

INSERT INTO tb_fdw_author VALUES (3, 'Cather');
INSERT INTO tb_fdw_book VALUES (30, 3, 'My Ántonia');
UPDATE tb_fdw_author SET name = 'Jane Austen' WHERE pk_author = 1;
UPDATE tb_fdw_book SET title = 'Jane Eyre' WHERE pk_book = 20;
DELETE FROM tb_fdw_book WHERE pk_book = 11;
SELECT pg_tviews_wait('30s');
SELECT 'tv_fdw_author' AS tview, * FROM tview_diff('tv_fdw_author')
UNION ALL SELECT 'odd', * FROM tview_diff('"fdw space"."tv_Odd ""q"" ü"')
UNION ALL SELECT 'tv_fdw_shelf', * FROM tview_diff('tv_fdw_shelf');

-- the database and the user running the tests, as constants
SELECT current_database() AS db, current_user AS me \gset

--
-- pg_tviews_metadata: one row per TVIEW
--
SELECT entity_name, key_column, key_type, state, last_error,
       owner = :'me' AS owned_by_me, full_refreshes >= 1 AS populated,
       rows_refreshed > 0 AS refreshed, pending_count, failed_count, lag_bytes,
       emergency_disabled, emergency_disable_time, emergency_disable_reason
FROM pg_tviews_metadata ORDER BY entity_name COLLATE "C";
-- the definition is the backing view's query, fully qualified (printed
-- again on renames), runnable as it stands: it returns the TVIEW's rows
SELECT m.entity_name, m.definition = t.definition AS same_definition
FROM pg_tviews_metadata m JOIN tviews.tview t ON t.tview::text = m.entity_name
ORDER BY m.entity_name COLLATE "C";
DO $$
DECLARE
    m record;
    n bigint;
BEGIN
    FOR m IN SELECT entity_name, definition FROM pg_tviews_metadata ORDER BY 1 LOOP
        EXECUTE format('SELECT count(*) FROM ((TABLE %1$s EXCEPT ALL SELECT * FROM (%2$s) d)'
                       ' UNION ALL (SELECT * FROM (%2$s) d EXCEPT ALL TABLE %1$s)) x',
                       m.entity_name, m.definition) INTO n;
        RAISE NOTICE '%: % rows differ from its definition', m.entity_name, n;
    END LOOP;
END
$$;
SELECT entity_name, created_at IS NOT NULL AS has_created_at,
       last_refreshed >= created_at AS refreshed_after_creation,
       last_refresh_duration_ms >= 0 AS has_duration
FROM pg_tviews_metadata ORDER BY entity_name COLLATE "C";
-- the same as the catalog says
SELECT count(*) AS tviews, count(m.entity_name) AS in_metadata
FROM tviews.tview t FULL JOIN pg_tviews_metadata m ON m.entity_name = t.tview::text;
-- numeric: the runbook's averages work
SELECT pg_typeof(last_refresh_duration_ms) FROM pg_tviews_metadata LIMIT 1;
SELECT ROUND(AVG(last_refresh_duration_ms), 0) IS NOT NULL AS avg_ok,
       pg_typeof(ROUND(AVG(last_refresh_duration_ms), 0)) AS avg_type
FROM pg_tviews_metadata;
-- entity_name is a usable relation name, odd ones quoted
DO $$
DECLARE
    r record;
    n bigint;
BEGIN
    FOR r IN SELECT entity_name FROM pg_tviews_metadata ORDER BY entity_name COLLATE "C" LOOP
        EXECUTE 'SELECT count(*) FROM ' || r.entity_name INTO n;
        RAISE NOTICE '% has % rows', r.entity_name, n;
    END LOOP;
END
$$;
-- the runbook's integrity check, unmodified
DO $$
DECLARE
    tview_record RECORD;
    integrity_issues INTEGER := 0;
BEGIN
    FOR tview_record IN SELECT entity_name FROM pg_tviews_metadata LIMIT 5 LOOP
        BEGIN
            EXECUTE 'SELECT COUNT(*) FROM ' || tview_record.entity_name || ' LIMIT 1';
        EXCEPTION WHEN OTHERS THEN
            integrity_issues := integrity_issues + 1;
            RAISE NOTICE 'Integrity issue with TVIEW: % - %', tview_record.entity_name, SQLERRM;
        END;
    END LOOP;

    IF integrity_issues > 0 THEN
        RAISE EXCEPTION 'Data integrity issues detected in % TVIEWs. Do not proceed with restart.', integrity_issues;
    END IF;
END $$;

--
-- pg_tviews_dependencies: one row per base relation occurrence
--
SELECT entity_name, base_relation, dependency_type, parent_tview, child_tview,
       lineage_rule, source_column, tview_column, columns_used, location
FROM pg_tviews_dependencies
ORDER BY entity_name COLLATE "C", base_relation COLLATE "C", location COLLATE "C";
DO $$
DECLARE
    r record;
    n bigint;
BEGIN
    FOR r IN SELECT base_relation FROM pg_tviews_dependencies
             GROUP BY base_relation ORDER BY base_relation COLLATE "C" LOOP
        EXECUTE 'SELECT count(*) FROM ' || r.base_relation INTO n;
        RAISE NOTICE 'base relation % has % rows', r.base_relation, n;
    END LOOP;
END
$$;

--
-- pg_tviews_queue: the refreshes done for the writes above (processed,
-- none pending)
--
SELECT * FROM (
    SELECT DISTINCT entity_name, primary_key_value, full_refresh, priority, status,
           processed_at IS NOT NULL AS processed, processed_at >= created_at AS in_order,
           error_message, retry_count, next_attempt_at, source_lsn IS NOT NULL AS has_lsn
    FROM pg_tviews_queue
    WHERE entity_name IN (SELECT entity_name FROM pg_tviews_metadata) AND NOT full_refresh) q
ORDER BY entity_name COLLATE "C", primary_key_value COLLATE "C";
SELECT count(*) AS pending FROM pg_tviews_queue WHERE processed_at IS NULL;

--
-- pg_tviews_workers: the launcher and this database's engine
--
SELECT worker_type, :'db' = database AS this_database, pid IS NOT NULL AS has_pid,
       state IN ('running', 'idle', 'streaming', 'applying') AS running,
       started_at IS NOT NULL AS has_start,
       CASE worker_type WHEN 'engine' THEN heartbeat IS NOT NULL AND restarts >= 0
                                           AND batches > 0 AND changes > 0 AND keys_refreshed > 0
                                           AND queued = 0 AND applied_lsn <= decoded_lsn END AS engine_counters
FROM pg_tviews_workers
WHERE worker_type = 'launcher' OR :'db' = database
ORDER BY worker_type;
-- the engine is the process of that pid, and holds the slot
SELECT count(*) AS engine_backends
FROM pg_tviews_workers w JOIN pg_stat_activity a ON a.pid = w.pid
WHERE w.database = :'db' AND a.backend_type = 'pg_tviews engine';

--
-- pg_tviews_slots: this database's slot
--
SELECT slot_name = pg_tviews_slot_name() AS engine_slot, :'db' = database AS this_database,
       active, active_pid = (SELECT pid FROM pg_tviews_workers WHERE :'db' = database) AS held_by_engine,
       restart_lsn <= confirmed_flush_lsn AS lsns_in_order, lag_bytes >= 0 AS has_lag,
       lag_seconds >= 0 AS has_lag_seconds, wal_status, engine_paused
FROM pg_tviews_slots WHERE :'db' = database;

--
-- ctid: unique across rows, and the same row has the same ctid in the
-- next scan
--
SELECT 'metadata' AS status_table, count(*) > 0 AS has_rows, count(*) = count(DISTINCT ctid) AS unique_ctid FROM pg_tviews_metadata
UNION ALL SELECT 'queue', count(*) > 0, count(*) = count(DISTINCT ctid) FROM pg_tviews_queue
UNION ALL SELECT 'dependencies', count(*) > 0, count(*) = count(DISTINCT ctid) FROM pg_tviews_dependencies
UNION ALL SELECT 'workers', count(*) > 0, count(*) = count(DISTINCT ctid) FROM pg_tviews_workers
UNION ALL SELECT 'slots', count(*) > 0, count(*) = count(DISTINCT ctid) FROM pg_tviews_slots;
SELECT count(*) FILTER (WHERE ctid = '(0,0)') AS invalid_ctids
FROM (SELECT ctid FROM pg_tviews_metadata UNION ALL SELECT ctid FROM pg_tviews_queue
      UNION ALL SELECT ctid FROM pg_tviews_dependencies UNION ALL SELECT ctid FROM pg_tviews_workers
      UNION ALL SELECT ctid FROM pg_tviews_slots) c;
CREATE TEMP TABLE first_scan AS
SELECT 'metadata' AS t, ctid AS tid, entity_name AS a, NULL AS b, NULL AS c FROM pg_tviews_metadata
UNION ALL SELECT 'queue', ctid, entity_name, primary_key_value, status FROM pg_tviews_queue
UNION ALL SELECT 'dependencies', ctid, entity_name, base_relation, location FROM pg_tviews_dependencies
UNION ALL SELECT 'workers', ctid, worker_type, database, NULL FROM pg_tviews_workers
UNION ALL SELECT 'slots', ctid, slot_name, database, NULL FROM pg_tviews_slots;
CREATE TEMP TABLE second_scan AS
SELECT 'metadata' AS t, ctid AS tid, entity_name AS a, NULL AS b, NULL AS c FROM pg_tviews_metadata
UNION ALL SELECT 'queue', ctid, entity_name, primary_key_value, status FROM pg_tviews_queue
UNION ALL SELECT 'dependencies', ctid, entity_name, base_relation, location FROM pg_tviews_dependencies
UNION ALL SELECT 'workers', ctid, worker_type, database, NULL FROM pg_tviews_workers
UNION ALL SELECT 'slots', ctid, slot_name, database, NULL FROM pg_tviews_slots;
SELECT t, count(*) > 0 AS has_rows,
       count(*) FILTER (WHERE (f.a, f.b, f.c) IS DISTINCT FROM (s.a, s.b, s.c)) AS changed
FROM first_scan f FULL JOIN second_scan s USING (t, tid)
GROUP BY t ORDER BY t;
-- a row found by its ctid is that row
SELECT m.entity_name
FROM pg_tviews_metadata m
WHERE m.ctid = (SELECT tid FROM first_scan WHERE t = 'metadata' AND a = 'tv_fdw_shelf');
DROP TABLE first_scan, second_scan;

--
-- Pushed-down conditions: entity_name = <value> and processed_at IS NULL
-- narrow the status table's query (and are still checked locally)
--
EXPLAIN (COSTS OFF, VERBOSE)
SELECT entity_name, state FROM pg_tviews_metadata WHERE entity_name = 'tv_fdw_author';
SELECT entity_name, state FROM pg_tviews_metadata WHERE entity_name = 'tv_fdw_author';
EXPLAIN (COSTS OFF, VERBOSE)
SELECT entity_name, primary_key_value FROM pg_tviews_queue WHERE processed_at IS NULL;
EXPLAIN (COSTS OFF, VERBOSE)
SELECT count(*) FROM pg_tviews_queue
WHERE processed_at IS NULL AND entity_name = 'tv_fdw_author' AND priority = 'high';
EXPLAIN (COSTS OFF, VERBOSE)
SELECT base_relation FROM pg_tviews_dependencies WHERE 'tv_fdw_shelf' = entity_name;
SELECT base_relation FROM pg_tviews_dependencies WHERE 'tv_fdw_shelf' = entity_name
ORDER BY base_relation COLLATE "C";
-- the odd name, pushed down as it is
SELECT entity_name, key_column FROM pg_tviews_metadata
WHERE entity_name = '"fdw space"."tv_Odd ""q"" ü"';
-- a parameter of a prepared statement, custom and generic plans
PREPARE by_entity(text) AS
    SELECT entity_name, lineage_rule, base_relation FROM pg_tviews_dependencies
    WHERE entity_name = $1 ORDER BY base_relation COLLATE "C";
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE by_entity('tv_fdw_author');
EXECUTE by_entity('tv_fdw_author');
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE by_entity('tv_fdw_author');
EXECUTE by_entity('tv_fdw_author');
EXECUTE by_entity('"fdw space"."tv_Odd ""q"" ü"');
EXECUTE by_entity(NULL);
RESET plan_cache_mode;
DEALLOCATE by_entity;
-- a value from a subquery and a correlated reference: parameters of the
-- scan, evaluated at run time, once per rescan
EXPLAIN (COSTS OFF)
SELECT m.entity_name,
       (SELECT count(*) FROM pg_tviews_dependencies d WHERE d.entity_name = m.entity_name) AS deps
FROM pg_tviews_metadata m;
SELECT m.entity_name,
       (SELECT count(*) FROM pg_tviews_dependencies d WHERE d.entity_name = m.entity_name) AS deps
FROM pg_tviews_metadata m ORDER BY m.entity_name COLLATE "C";

-- nothing pushable: Pushed Down: none
EXPLAIN (COSTS OFF) SELECT * FROM pg_tviews_queue;
EXPLAIN (COSTS OFF, VERBOSE)
SELECT entity_name FROM pg_tviews_metadata
WHERE entity_name LIKE 'tv_fdw%' OR state = 'stale';
EXPLAIN (COSTS OFF)
SELECT count(*) FROM pg_tviews_queue WHERE processed_at IS NOT NULL;
EXPLAIN (COSTS OFF)
SELECT entity_name FROM pg_tviews_dependencies WHERE entity_name = base_relation;
EXPLAIN (COSTS OFF)
SELECT entity_name FROM pg_tviews_metadata WHERE entity_name = ANY ('{tv_fdw_author}');
-- pushed or not, the same rows
SELECT (SELECT count(*) FROM pg_tviews_dependencies WHERE entity_name = 'tv_fdw_shelf') AS pushed,
       (SELECT count(*) FROM pg_tviews_dependencies WHERE entity_name || '' = 'tv_fdw_shelf') AS local;
-- a comparison under a nondeterministic collation is the collation's, not
-- the status table's: 'TV_FDW_AUTHOR' matches tv_fdw_author
CREATE COLLATION fdw_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
SELECT entity_name FROM pg_tviews_metadata WHERE entity_name = 'TV_FDW_AUTHOR' COLLATE fdw_ci;
SELECT entity_name FROM pg_tviews_metadata WHERE entity_name || '' = 'TV_FDW_AUTHOR' COLLATE fdw_ci;
DROP COLLATION fdw_ci;

--
-- Clean up
--
DROP TABLE tv_fdw_shelf;
DROP TABLE "fdw space"."tv_Odd ""q"" ü", tv_fdw_author;
DROP SCHEMA "fdw space";
DROP TABLE tb_fdw_book, tb_fdw_author;
SELECT count(*) AS metadata_rows FROM pg_tviews_metadata;
SELECT count(*) AS dependency_rows FROM pg_tviews_dependencies;
