-- emergency-disable.sql -- stop all pg_tviews activity in this database, now.
--
-- Run it with psql started in the repository root (the runbooks' \i paths
-- start there), connected to the database with the TVIEWs:
--
--     psql -d yourdb -f docs/operations/runbooks/scripts/emergency-disable.sql
--     yourdb=# \i docs/operations/runbooks/scripts/emergency-disable.sql
--
-- It shows the current state, then asks you to type DISABLE.  Only then it
--   1. stops the engine of this database: SELECT pg_tviews_system_disable(reason)
--      (nothing is decoded or applied any more; changes wait in the
--      replication slot, so the slot's lag grows);
--   2. emergency-disables every TVIEW not already disabled, through
--      UPDATE pg_tviews_metadata (each is marked stale and is no longer
--      maintained; earlier-disabled TVIEWs keep their own time and reason);
--   3. drops all pending work: DELETE FROM pg_tviews_queue WHERE processed_at IS NULL;
-- and shows the resulting state and how to undo it.  Anything other than
-- DISABLE aborts without changing anything.
--
-- The reason recorded is psql's variable "reason" if set
-- (psql -v reason='INC-1234: runaway refresh' ...), else a default
-- naming this script and the session user.
--
-- With psql -f, \prompt reads the answer from standard input:
--     echo DISABLE | psql -d yourdb -f docs/operations/runbooks/scripts/emergency-disable.sql
--
-- Needs membership in pg_tviews_admin (or a superuser).  Undo: "Option 2:
-- TVIEW System Reset" in
-- docs/operations/runbooks/04-incident-response/emergency-procedures.md.

\if :{?reason}
\else
\set reason ''
\endif
\set pgtv_answer ''
\set pgtv_confirmed false

\echo
\echo '== pg_tviews emergency disable -- current state of database' :DBNAME
SELECT component, status, detail FROM pg_tviews_health_check();

SELECT entity_name, state, emergency_disabled, pending_count, failed_count, last_error
FROM pg_tviews_metadata
ORDER BY entity_name;

SELECT count(*) AS pending_refreshes
FROM pg_tviews_queue
WHERE processed_at IS NULL;

\echo 'Typing DISABLE will do this in database' :DBNAME
\echo '  1. stop the pg_tviews engine (pg_tviews_system_disable): changes wait in the slot'
\echo '  2. emergency-disable every TVIEW: each is marked stale and no longer maintained'
\echo '  3. drop every pending refresh (DELETE FROM pg_tviews_queue WHERE processed_at IS NULL)'
\prompt 'Type DISABLE to proceed, anything else to abort: ' pgtv_answer
SELECT btrim(:'pgtv_answer') = 'DISABLE' AS pgtv_confirmed \gset

\if :pgtv_confirmed
SELECT coalesce(nullif(:'reason', ''),
                'emergency-disable.sql, run by ' || session_user) AS pgtv_reason \gset

\echo '== 1. stopping the engine'
SELECT pg_tviews_system_disable(:'pgtv_reason') AS engine;
\if :ERROR
\echo 'emergency-disable.sql: pg_tviews_system_disable() failed (see the error above); nothing else was changed.'
\else

\echo '== 2. emergency-disabling every TVIEW'
UPDATE pg_tviews_metadata
SET emergency_disabled = true,
    emergency_disable_time = now(),
    emergency_disable_reason = :'pgtv_reason'
WHERE NOT emergency_disabled;
\if :ERROR
\echo 'emergency-disable.sql: the engine is stopped, but disabling the TVIEWs failed (see the error above).'
\endif

\echo '== 3. dropping pending refreshes'
DELETE FROM pg_tviews_queue WHERE processed_at IS NULL;

\echo
\echo '== resulting state'
SELECT component, status, detail FROM pg_tviews_health_check();

SELECT entity_name, state, emergency_disabled, emergency_disable_time, emergency_disable_reason
FROM pg_tviews_metadata
ORDER BY entity_name;

SELECT count(*) AS pending_refreshes
FROM pg_tviews_queue
WHERE processed_at IS NULL;

\echo 'pg_tviews is stopped in this database.  To undo it, follow "Option 2: TVIEW System Reset"'
\echo 'in docs/operations/runbooks/04-incident-response/emergency-procedures.md, in short:'
\echo '    UPDATE pg_tviews_metadata SET last_error = NULL, emergency_disabled = false,'
\echo '           emergency_disable_time = NULL, emergency_disable_reason = NULL;'
\echo '    SELECT pg_tviews_system_enable();'
\echo 'Re-enabled TVIEWs are rebuilt by the engine; rebuild any that still shows state = stale with'
\echo '    SELECT pg_tviews_refresh(entity_name) FROM pg_tviews_metadata WHERE state = ''stale'';'
\echo '(docs/operations/runbooks/03-manual-refresh/manual-refresh.md).'
\endif
\else
\echo 'Aborted (you typed' :'pgtv_answer' 'instead of DISABLE): nothing was changed.'
\endif
