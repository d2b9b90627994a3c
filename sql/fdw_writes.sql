--
-- Writes through the status tables act on the engine:
--   UPDATE pg_tviews_metadata: emergency disable / enable of a TVIEW
--     (persistent, the TVIEW goes stale and is rebuilt on enable), and
--     clearing last_error; other columns are read-only;
--   the queue, while the engine is paused (pg_tviews_system_disable):
--     INSERT enqueues, UPDATE reprioritises or retries, DELETE (also by
--     ctid and with RETURNING) and TRUNCATE drop pending work and mark its
--     TVIEWs stale; pg_tviews_refresh() and pg_tviews_system_enable()
--     bring everything back, exactly;
--   privileges: reads for pg_monitor, writes for pg_tviews_admin, nothing
--     for others.
-- Only deterministic output: pids, LSNs and times are tested, not shown.
--
\set SHOW_CONTEXT never

CREATE TABLE tb_wr_team (pk_team int PRIMARY KEY, name text NOT NULL);
CREATE TABLE tb_wr_player (pk_player int PRIMARY KEY,
                           fk_team int NOT NULL REFERENCES tb_wr_team,
                           name text NOT NULL, score int NOT NULL DEFAULT 0);
CREATE TABLE tb_wr_ratio (pk_ratio int PRIMARY KEY, num int NOT NULL, den int NOT NULL);
INSERT INTO tb_wr_team VALUES (1, 'red'), (2, 'blue');
INSERT INTO tb_wr_player VALUES (10, 1, 'ann', 3), (11, 1, 'bo', 5), (20, 2, 'cy', 7);
INSERT INTO tb_wr_ratio VALUES (1, 10, 2), (2, 9, 3), (3, 8, 4);
SET client_min_messages = warning;
SELECT pg_tviews_create('tv_wr_team', $$
    SELECT t.pk_team, t.name,
           (SELECT count(*) FROM tb_wr_player p WHERE p.fk_team = t.pk_team) AS players,
           (SELECT coalesce(sum(p.score), 0) FROM tb_wr_player p WHERE p.fk_team = t.pk_team) AS score
    FROM tb_wr_team t
$$);
SELECT pg_tviews_create('tv_wr_player', $$
    SELECT p.pk_player, p.fk_team, p.name, p.score, t.name AS team
    FROM tb_wr_player p JOIN tb_wr_team t ON t.pk_team = p.fk_team
$$);
-- a refresh of this one fails when den is 0
SELECT pg_tviews_create('tv_wr_ratio', $$
    SELECT r.pk_ratio, r.num / r.den AS ratio FROM tb_wr_ratio r
$$);
RESET client_min_messages;

CREATE VIEW wr_all_diffs AS
SELECT 'tv_wr_player' AS tview, * FROM tview_diff('tv_wr_player')
UNION ALL SELECT 'tv_wr_ratio', * FROM tview_diff('tv_wr_ratio')
UNION ALL SELECT 'tv_wr_team', * FROM tview_diff('tv_wr_team');

-- the state of the TVIEWs, as the runbooks look at it
CREATE VIEW wr_status AS
SELECT entity_name, state, last_error, pending_count, failed_count, emergency_disabled,
       emergency_disable_time IS NOT NULL AS has_disable_time, emergency_disable_reason
FROM pg_tviews_metadata ORDER BY entity_name COLLATE "C";

-- wait (up to 30 s) for the engine of this database to be in a state
CREATE FUNCTION wr_wait_engine(wanted text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    FOR i IN 1 .. 3000 LOOP
        SELECT w.state INTO s FROM pg_tviews_workers w
         WHERE w.worker_type = 'engine' AND w.database = current_database();
        EXIT WHEN s = wanted OR (wanted = 'running' AND s IN ('idle', 'streaming', 'applying'));
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN CASE WHEN s IN ('idle', 'streaming', 'applying') THEN 'running' ELSE s END;
END
$$;

SELECT pg_tviews_wait('30s');
SELECT * FROM wr_status;

--
-- Emergency disable of one TVIEW: it goes stale, and changes of its base
-- tables are not applied while it is disabled
--
UPDATE pg_tviews_metadata
   SET emergency_disabled = true,
       emergency_disable_time = '2026-01-02 03:04:05+00',
       emergency_disable_reason = 'fdw_writes: team totals are wrong'
 WHERE entity_name = 'tv_wr_team';
SELECT entity_name, state, emergency_disabled, emergency_disable_time, emergency_disable_reason
FROM pg_tviews_metadata WHERE entity_name = 'tv_wr_team';
-- the catalog holds it (it survives restarts: see test/t/041_emergency_restart.pl)
SELECT tview, state, emergency_disabled, emergency_disable_reason
FROM tviews.tview WHERE tview = 'tv_wr_team'::regclass;
-- the health check says so
SELECT component, status,
       CASE WHEN component = 'tviews' THEN regexp_replace(detail, '^\d+ TVIEWs: ', '') END AS detail
FROM pg_tviews_health_check();

UPDATE tb_wr_team SET name = 'crimson' WHERE pk_team = 1;
INSERT INTO tb_wr_player VALUES (12, 1, 'di', 11);
UPDATE tb_wr_player SET score = score + 100 WHERE pk_player = 20;
SELECT pg_tviews_wait('30s');
-- tv_wr_player follows; tv_wr_team keeps what it had
SELECT * FROM wr_all_diffs;
SELECT * FROM tv_wr_team ORDER BY pk_team;
SELECT * FROM wr_status;

-- enabled again: the TVIEW is rebuilt from its definition
UPDATE pg_tviews_metadata SET emergency_disabled = false WHERE entity_name = 'tv_wr_team';
SELECT pg_tviews_wait('30s');
SELECT entity_name, state, emergency_disabled, emergency_disable_time, emergency_disable_reason
FROM pg_tviews_metadata WHERE entity_name = 'tv_wr_team';
SELECT * FROM wr_all_diffs;
SELECT * FROM tv_wr_team ORDER BY pk_team;
-- and maintained again
UPDATE tb_wr_player SET fk_team = 2 WHERE pk_player = 11;
SELECT pg_tviews_wait('30s');
SELECT * FROM wr_all_diffs;
-- (whatever happened above, later sections start from current TVIEWs)
SELECT pg_tviews_refresh('tv_wr_team') >= 0 AS refreshed;

-- the runbook's statements, unmodified: disable everything ...
UPDATE pg_tviews_metadata
SET emergency_disabled = true,
    emergency_disable_time = NOW(),
    emergency_disable_reason = 'Critical incident response';
SELECT * FROM wr_status;
UPDATE tb_wr_ratio SET num = 90 WHERE pk_ratio = 2;
UPDATE tb_wr_player SET score = 0 WHERE pk_player = 10;
SELECT pg_tviews_wait('30s');
SELECT * FROM wr_all_diffs;
-- ... and reset it
UPDATE pg_tviews_metadata
SET last_error = NULL,
    emergency_disabled = false,
    emergency_disable_time = NULL,
    emergency_disable_reason = NULL;
SELECT pg_tviews_wait('30s');
SELECT * FROM wr_status;
SELECT * FROM wr_all_diffs;
SELECT pg_tviews_refresh('tv_wr_team') >= 0 AND pg_tviews_refresh('tv_wr_player') >= 0
       AND pg_tviews_refresh('tv_wr_ratio') >= 0 AS refreshed;

--
-- Read-only columns, and bad values
--
UPDATE pg_tviews_metadata SET state = 'ready' WHERE entity_name = 'tv_wr_team';
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
UPDATE pg_tviews_metadata SET definition = 'SELECT 1' WHERE entity_name = 'tv_wr_team';
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
UPDATE pg_tviews_metadata SET emergency_disabled = NULL WHERE entity_name = 'tv_wr_team';
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
UPDATE pg_tviews_metadata SET emergency_disable_time = 'not a time' WHERE entity_name = 'tv_wr_team';
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- no INSERT, DELETE or TRUNCATE on pg_tviews_metadata, no writes to the others
INSERT INTO pg_tviews_metadata (entity_name) VALUES ('tv_wr_team');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
DELETE FROM pg_tviews_metadata WHERE entity_name = 'tv_wr_team';
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
TRUNCATE pg_tviews_metadata;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
UPDATE pg_tviews_dependencies SET lineage_rule = 'full';
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
DELETE FROM pg_tviews_workers;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
TRUNCATE pg_tviews_slots;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
SELECT * FROM wr_status;

--
-- last_error: set by a failing refresh, cleared by UPDATE ... = NULL.
-- Fewer, faster retries for this test (server settings, restored below).
--
ALTER SYSTEM SET pg_tviews.max_retries = 2;
ALTER SYSTEM SET pg_tviews.retry_delay = 10;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
UPDATE tb_wr_ratio SET den = 0 WHERE pk_ratio = 2;
-- retried, then parked: the engine has caught up
SELECT pg_tviews_wait('30s');
SELECT entity_name, state, last_error, pending_count, failed_count
FROM pg_tviews_metadata WHERE entity_name = 'tv_wr_ratio';
SELECT entity_name, primary_key_value, full_refresh, priority, status, error_message, retry_count,
       processed_at IS NOT NULL AS processed
FROM pg_tviews_queue WHERE status = 'failed';
SELECT component, status, detail FROM pg_tviews_health_check() WHERE component = 'queue';
SELECT component, status, regexp_replace(detail, '^\d+ TVIEWs: ', '') AS detail
FROM pg_tviews_health_check() WHERE component = 'tviews';
-- only cleared, never set
UPDATE pg_tviews_metadata SET last_error = 'x' WHERE entity_name = 'tv_wr_ratio';
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
UPDATE pg_tviews_metadata SET last_error = NULL WHERE entity_name = 'tv_wr_ratio';
SELECT entity_name, last_error, failed_count FROM pg_tviews_metadata WHERE entity_name = 'tv_wr_ratio';
-- retry the parked refresh (retry_count = 0) while it still fails: it
-- fails again, and says so again
UPDATE pg_tviews_queue SET retry_count = 0 WHERE status = 'failed' AND entity_name = 'tv_wr_ratio';
SELECT pg_tviews_wait('30s');
SELECT entity_name, last_error, failed_count FROM pg_tviews_metadata WHERE entity_name = 'tv_wr_ratio';
SELECT primary_key_value, status, error_message, retry_count
FROM pg_tviews_queue WHERE status = 'failed';
-- fixed, and retried: done
UPDATE tb_wr_ratio SET den = 1 WHERE pk_ratio = 2;
SELECT pg_tviews_wait('30s');
UPDATE pg_tviews_queue SET retry_count = 0 WHERE status = 'failed' AND entity_name = 'tv_wr_ratio';
SELECT pg_tviews_wait('30s');
SELECT count(*) AS parked FROM pg_tviews_queue WHERE status = 'failed';
UPDATE pg_tviews_metadata SET last_error = NULL WHERE last_error IS NOT NULL;
SELECT * FROM wr_status;
SELECT * FROM wr_all_diffs;
ALTER SYSTEM RESET pg_tviews.max_retries;
ALTER SYSTEM RESET pg_tviews.retry_delay;
SELECT pg_reload_conf();

--
-- The queue, with the engine paused: nothing is decoded or applied, so
-- what is queued by hand stays pending
--
SELECT pg_tviews_system_disable('fdw_writes: queue maintenance');
SELECT wr_wait_engine('paused');
SELECT enabled, reason FROM tviews.engine;
SELECT engine_paused FROM pg_tviews_slots WHERE database = current_database();
SELECT component, status, detail FROM pg_tviews_health_check() WHERE component = 'engine';
-- changes while paused wait in the slot
UPDATE tb_wr_player SET score = score + 1;
UPDATE tb_wr_team SET name = 'navy' WHERE pk_team = 2;
SELECT pg_tviews_wait('0.5s');
SELECT lag_bytes > 0 AS lagging FROM pg_tviews_slots WHERE database = current_database();

-- INSERT enqueues a key, or (NULL key) the whole TVIEW
INSERT INTO pg_tviews_queue (entity_name, primary_key_value)
VALUES ('tv_wr_player', '10'), ('tv_wr_player', '11'), ('tv_wr_player', '12'), ('tv_wr_team', '1');
INSERT INTO pg_tviews_queue (entity_name, primary_key_value, priority)
VALUES ('tv_wr_ratio', '3', 'low');
INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tv_wr_ratio', NULL);
-- a key already queued is queued once
INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tv_wr_player', '10');
-- not a TVIEW, a bad priority, a column that cannot be set
INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tv_nonesuch', '1');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tb_wr_team', '1');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
INSERT INTO pg_tviews_queue (entity_name, primary_key_value, priority) VALUES ('tv_wr_team', '2', 'urgent');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
INSERT INTO pg_tviews_queue (entity_name, primary_key_value, status) VALUES ('tv_wr_team', '2', 'done');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
CREATE VIEW wr_pending AS
SELECT entity_name, primary_key_value, full_refresh, priority, status, retry_count, error_message,
       created_at IS NOT NULL AS has_created_at, source_lsn IS NOT NULL AS has_lsn
FROM pg_tviews_queue WHERE processed_at IS NULL
ORDER BY entity_name COLLATE "C", primary_key_value COLLATE "C";
SELECT * FROM wr_pending;
SELECT entity_name, pending_count FROM pg_tviews_metadata ORDER BY entity_name COLLATE "C";

-- UPDATE: reprioritise, retry now
UPDATE pg_tviews_queue SET priority = 'high'
 WHERE entity_name = 'tv_wr_player' AND primary_key_value = '12';
UPDATE pg_tviews_queue SET priority = 'bogus' WHERE entity_name = 'tv_wr_player';
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
UPDATE pg_tviews_queue SET priority = NULL WHERE entity_name = 'tv_wr_player';
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
UPDATE pg_tviews_queue SET retry_count = 0 WHERE processed_at IS NULL;
UPDATE pg_tviews_queue SET retry_count = 3 WHERE processed_at IS NULL;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
UPDATE pg_tviews_queue SET entity_name = 'tv_wr_team' WHERE processed_at IS NULL;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
SELECT * FROM wr_pending;

-- DELETE by ctid hits exactly the rows selected.  (Both scans narrowed
-- to pending rows: over the whole history, see fdw_scan_memory.)
DELETE FROM pg_tviews_queue
 WHERE processed_at IS NULL
   AND ctid IN (SELECT q.ctid FROM pg_tviews_queue q
                 WHERE q.processed_at IS NULL
                   AND q.entity_name = 'tv_wr_player' AND q.primary_key_value IN ('10', '12'));
SELECT * FROM wr_pending;
SELECT entity_name, primary_key_value, status, error_message
FROM pg_tviews_queue WHERE status = 'dropped' AND error_message = 'dropped by hand'
ORDER BY entity_name COLLATE "C", primary_key_value COLLATE "C";
-- processed rows are history: deleting them does nothing
WITH d AS (DELETE FROM pg_tviews_queue
           WHERE entity_name = 'tv_wr_player' AND status IN ('dropped', 'done') RETURNING 1)
SELECT count(*) AS deleted FROM d;
SELECT count(*) AS still_there FROM pg_tviews_queue
WHERE status = 'dropped' AND error_message = 'dropped by hand';
-- DELETE ... RETURNING gives the rows as they were
WITH d AS (
    DELETE FROM pg_tviews_queue WHERE entity_name = 'tv_wr_ratio'
    RETURNING entity_name, primary_key_value, full_refresh, priority, status)
SELECT * FROM d ORDER BY primary_key_value COLLATE "C";
-- the runbook's way: every pending refresh
INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tv_wr_player', '20');
DELETE FROM pg_tviews_queue WHERE processed_at IS NULL;
SELECT * FROM wr_pending;
-- TRUNCATE drops it all
INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tv_wr_team', '2'), ('tv_wr_team', NULL);
SELECT count(*) AS pending FROM pg_tviews_queue WHERE processed_at IS NULL;
TRUNCATE pg_tviews_queue;
SELECT * FROM wr_pending;
-- the TVIEWs whose work was dropped are stale, and the health check says so
SELECT * FROM wr_status;
SELECT component, status, regexp_replace(detail, '^\d+ TVIEWs: ', '') AS detail
FROM pg_tviews_health_check() WHERE component = 'tviews';
-- pg_tviews_refresh() makes them ready (the engine still paused)
SELECT entity_name, pg_tviews_refresh(entity_name) >= 0 AS refreshed
FROM (SELECT entity_name FROM pg_tviews_metadata WHERE state = 'stale') s
ORDER BY entity_name COLLATE "C";
SELECT * FROM wr_status;

-- enabled again: the changes kept in the slot are applied, exactly
SELECT pg_tviews_system_enable();
SELECT wr_wait_engine('running');
SELECT enabled, reason FROM tviews.engine;
SELECT pg_tviews_wait('30s');
SELECT * FROM wr_all_diffs;
SELECT * FROM wr_status;
SELECT engine_paused FROM pg_tviews_slots WHERE database = current_database();
SELECT component, status FROM pg_tviews_health_check();

--
-- Privileges: nothing for a plain user, reads for pg_monitor, writes for
-- pg_tviews_admin
--
CREATE ROLE regress_fdw_plain;
CREATE ROLE regress_fdw_monitor;
GRANT pg_monitor TO regress_fdw_monitor;
CREATE ROLE regress_fdw_admin;
GRANT pg_tviews_admin TO regress_fdw_admin;

SET ROLE regress_fdw_plain;
SELECT count(*) FROM pg_tviews_metadata;
SELECT count(*) FROM pg_tviews_queue;
SELECT count(*) FROM pg_tviews_dependencies;
SELECT count(*) FROM pg_tviews_workers;
SELECT count(*) FROM pg_tviews_slots;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
UPDATE pg_tviews_metadata SET emergency_disabled = true;
INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tv_wr_player', '10');
UPDATE pg_tviews_queue SET priority = 'high';
DELETE FROM pg_tviews_queue;
TRUNCATE pg_tviews_queue;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
SELECT pg_tviews_system_disable('plain user');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
SELECT pg_tviews_system_enable();
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
RESET ROLE;

SET ROLE regress_fdw_monitor;
SELECT (SELECT count(*) FROM pg_tviews_metadata) AS metadata,
       (SELECT count(*) > 0 FROM pg_tviews_queue) AS queue,
       (SELECT count(*) FROM pg_tviews_dependencies) AS dependencies,
       (SELECT count(*) FROM pg_tviews_workers WHERE worker_type = 'engine' AND database = current_database()) AS workers,
       (SELECT count(*) FROM pg_tviews_slots WHERE database = current_database()) AS slots;
SELECT entity_name, state FROM pg_tviews_metadata ORDER BY entity_name COLLATE "C";
SELECT component FROM pg_tviews_health_check();
UPDATE pg_tviews_metadata SET last_error = NULL WHERE entity_name = 'tv_wr_team';
INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tv_wr_player', '10');
UPDATE pg_tviews_queue SET priority = 'high' WHERE processed_at IS NULL;
DELETE FROM pg_tviews_queue WHERE processed_at IS NULL;
TRUNCATE pg_tviews_queue;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
SELECT pg_tviews_system_disable('monitor');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
RESET ROLE;
-- (the engine runs whatever the two calls above did)
SELECT pg_tviews_system_enable();

SET ROLE regress_fdw_admin;
SELECT count(*) AS metadata FROM pg_tviews_metadata;
SELECT component FROM pg_tviews_health_check();
SELECT pg_tviews_system_disable('admin: maintenance');
SELECT wr_wait_engine('paused');
INSERT INTO pg_tviews_queue (entity_name, primary_key_value) VALUES ('tv_wr_player', '10'), ('tv_wr_player', '11');
UPDATE pg_tviews_queue SET priority = 'low' WHERE processed_at IS NULL AND primary_key_value = '11';
SELECT entity_name, primary_key_value, priority FROM pg_tviews_queue WHERE processed_at IS NULL
ORDER BY primary_key_value;
DELETE FROM pg_tviews_queue WHERE processed_at IS NULL AND primary_key_value = '10'
RETURNING entity_name, primary_key_value;
TRUNCATE pg_tviews_queue;
UPDATE pg_tviews_metadata SET emergency_disable_reason = 'admin was here'
 WHERE entity_name = 'tv_wr_player';
UPDATE pg_tviews_metadata SET emergency_disable_reason = NULL
 WHERE entity_name = 'tv_wr_player';
SELECT pg_tviews_system_enable();
RESET ROLE;
SELECT enabled, reason FROM tviews.engine;
SELECT * FROM wr_status;
SELECT pg_tviews_refresh('tv_wr_player') >= 0 AS refreshed;

-- Internal queries of the status tables run as the extension's owner:
-- nothing of a caller's search_path may run with those privileges.  A
-- role with a schema of its own puts a count(*) aggregate and an =
-- operator first in its search_path; scanning a status table (as a
-- pg_monitor member), or merely planning a scan of one (as a role that may
-- not read it), must not call them as anyone but the caller.
CREATE SCHEMA regress_fdw_mine AUTHORIZATION regress_fdw_monitor;
SET ROLE regress_fdw_monitor;
CREATE TABLE regress_fdw_mine.calls (func text, called_as text);
CREATE FUNCTION regress_fdw_mine.note(f text, who text) RETURNS void
LANGUAGE sql SECURITY DEFINER AS $$
    INSERT INTO regress_fdw_mine.calls VALUES (f, who)
$$;
CREATE FUNCTION regress_fdw_mine.count_step(bigint) RETURNS bigint LANGUAGE sql AS $$
    SELECT regress_fdw_mine.note('count', current_user); SELECT $1 + 1
$$;
CREATE AGGREGATE regress_fdw_mine.count(*) (sfunc = regress_fdw_mine.count_step,
                                             stype = bigint, initcond = '0');
CREATE FUNCTION regress_fdw_mine.text_eq(text, text) RETURNS boolean LANGUAGE sql AS $$
    SELECT regress_fdw_mine.note('=', current_user); SELECT $1 OPERATOR(pg_catalog.=) $2
$$;
CREATE OPERATOR regress_fdw_mine.= (leftarg = text, rightarg = text,
                                    function = regress_fdw_mine.text_eq);
GRANT USAGE ON SCHEMA regress_fdw_mine TO regress_fdw_plain;
SET search_path = regress_fdw_mine, pg_catalog, public;
SELECT pg_catalog.count(*) AS rows FROM public.pg_tviews_metadata
WHERE entity_name = 'tv_wr_team';
RESET search_path;
RESET ROLE;
SET ROLE regress_fdw_plain;
SET search_path = regress_fdw_mine, pg_catalog, public;
SELECT pg_catalog.count(*) AS rows FROM public.pg_tviews_metadata
WHERE entity_name = 'tv_wr_team';
RESET search_path;
RESET ROLE;
SELECT func, called_as IN ('regress_fdw_monitor', 'regress_fdw_plain') AS as_caller,
       count(*) > 0 AS called
FROM regress_fdw_mine.calls GROUP BY 1, 2 ORDER BY 1, 2;
DROP SCHEMA regress_fdw_mine CASCADE;

DROP ROLE regress_fdw_plain, regress_fdw_monitor, regress_fdw_admin;

--
-- Everything current, then clean up
--
SELECT pg_tviews_wait('30s');
SELECT * FROM wr_all_diffs;
SELECT * FROM wr_status;
DROP VIEW wr_all_diffs, wr_status, wr_pending;
DROP FUNCTION wr_wait_engine(text);
DROP TABLE tv_wr_team, tv_wr_player, tv_wr_ratio;
DROP TABLE tb_wr_player, tb_wr_team, tb_wr_ratio;
SELECT count(*) AS tviews FROM pg_tviews_metadata;
SELECT enabled FROM tviews.engine;
