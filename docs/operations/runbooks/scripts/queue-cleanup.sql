-- queue-cleanup.sql -- drop refresh-queue entries nobody will apply.
--
--     psql -d yourdb -f docs/operations/runbooks/scripts/queue-cleanup.sql
--     psql -d yourdb -v stale_after='15 minutes' -f docs/operations/runbooks/scripts/queue-cleanup.sql
--
-- Drops
--   * every parked entry (status 'failed': given up after
--     pg_tviews.max_retries attempts), and
--   * every pending or retrying entry queued more than :stale_after ago
--     (psql variable, default '1 hour').
-- Rows are addressed by ctid, which is unique and stable in pg_tviews_queue,
-- so exactly the entries listed are deleted.  Done and dropped entries are
-- history and stay.
--
-- A dropped entry is work not done: its TVIEW is marked stale (never
-- silently wrong).  Rebuild stale TVIEWs once the cause is fixed:
-- docs/operations/runbooks/03-manual-refresh/manual-refresh.md.
-- Needs pg_tviews_admin (or a superuser).

\if :{?stale_after}
\else
\set stale_after '1 hour'
\endif

\echo '== queue before cleanup (pending, retrying and parked entries)'
SELECT entity_name, status, count(*) AS entries, min(created_at) AS oldest
FROM pg_tviews_queue
WHERE status IN ('pending', 'retrying', 'failed')
GROUP BY entity_name, status
ORDER BY entity_name, status;

\echo '== entries to drop: parked ones, and pending ones queued more than' :'stale_after' 'ago'
SELECT q.ctid, q.entity_name, q.primary_key_value, q.full_refresh, q.status,
       q.created_at, q.retry_count, q.error_message
FROM pg_tviews_queue q
WHERE q.status = 'failed'
   OR (q.processed_at IS NULL AND q.created_at < now() - :'stale_after'::interval)
ORDER BY q.entity_name, q.primary_key_value;

DELETE FROM pg_tviews_queue
WHERE ctid IN (SELECT q.ctid
               FROM pg_tviews_queue q
               WHERE q.status = 'failed'
                  OR (q.processed_at IS NULL
                      AND q.created_at < now() - :'stale_after'::interval));

\echo '== TVIEWs now stale (or rebuilding): rebuild them once the cause is fixed (03-manual-refresh)'
SELECT entity_name, state, emergency_disabled, pending_count, failed_count, last_error
FROM pg_tviews_metadata
WHERE state <> 'ready'
ORDER BY entity_name;
