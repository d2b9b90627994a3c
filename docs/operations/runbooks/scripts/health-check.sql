-- health-check.sql -- one-screen health report of pg_tviews in this database.
--
--     psql -d yourdb -f docs/operations/runbooks/scripts/health-check.sql
--
-- Read-only: needs pg_monitor (or pg_tviews_admin).  What to do with each
-- finding: docs/operations/runbooks/01-health-monitoring/tview-health-check.md.

\echo '== overall: one row per component (ok, warning or critical)'
SELECT component, status, detail
FROM pg_tviews_health_check();

\echo '== workers: the launcher, and one engine per database with pg_tviews'
SELECT worker_type, database, pid, state, started_at, heartbeat, restarts,
       batches, keys_refreshed, queued, last_error
FROM pg_tviews_workers
ORDER BY worker_type, database;

\echo '== replication slots of the engines'
SELECT slot_name, database, active, active_pid, lag_bytes,
       pg_size_pretty(lag_bytes) AS lag, lag_seconds, wal_status, engine_paused
FROM pg_tviews_slots
ORDER BY slot_name;

\echo '== TVIEWs'
SELECT entity_name, state, emergency_disabled, last_refreshed,
       last_refresh_duration_ms, pending_count, failed_count, lag_bytes, last_error
FROM pg_tviews_metadata
ORDER BY entity_name;

\echo '== refresh queue: entries by TVIEW and status (done and dropped ones are recent history)'
SELECT entity_name, status, count(*) AS entries, min(created_at) AS oldest,
       max(retry_count) AS max_retry_count
FROM pg_tviews_queue
GROUP BY entity_name, status
ORDER BY entity_name, status;
