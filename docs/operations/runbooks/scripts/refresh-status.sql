-- refresh-status.sql -- where refreshing stands, per TVIEW.
--
--     psql -d yourdb -f docs/operations/runbooks/scripts/refresh-status.sql
--
-- Read-only: needs pg_monitor (or pg_tviews_admin).  How to act on it:
-- docs/operations/runbooks/03-manual-refresh/manual-refresh.md.

\echo '== refresh status of every TVIEW'
SELECT entity_name, key_column, state, emergency_disabled, last_refreshed,
       last_refresh_duration_ms, rows_refreshed, full_refreshes,
       pending_count, failed_count, lag_bytes, last_error
FROM pg_tviews_metadata
ORDER BY entity_name;

\echo '== engine progress (decoded and applied WAL positions, work done)'
SELECT database, pid, state, heartbeat, batches, changes, keys_refreshed,
       queued, decoded_lsn, applied_lsn, last_error
FROM pg_tviews_workers
WHERE worker_type = 'engine'
ORDER BY database;

\echo '== pending refreshes per TVIEW'
SELECT entity_name, count(*) AS pending,
       count(*) FILTER (WHERE status = 'retrying') AS retrying,
       min(created_at) AS oldest_pending, max(retry_count) AS max_retry_count
FROM pg_tviews_queue
WHERE processed_at IS NULL
GROUP BY entity_name
ORDER BY entity_name;

\echo '== parked refreshes (gave up after pg_tviews.max_retries attempts)'
SELECT entity_name, primary_key_value, full_refresh, retry_count,
       processed_at AS parked_at, error_message
FROM pg_tviews_queue
WHERE status = 'failed'
ORDER BY entity_name, primary_key_value;

\echo '== what each TVIEW is refreshed from (lineage)'
SELECT entity_name, base_relation, dependency_type, lineage_rule,
       source_column, tview_column
FROM pg_tviews_dependencies
ORDER BY entity_name, base_relation, lineage_rule;
