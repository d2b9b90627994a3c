--
-- Transactions: empty ones (skip-empty-xacts), aborted ones, savepoints,
-- prepared transactions, and the xid / lsn / timestamp keys.
--
SELECT 'init' FROM pg_create_logical_replication_slot('xacts', 'pg_tviews_decoder');

CREATE TABLE xa_main (id int PRIMARY KEY, v text);
CREATE TABLE xa_skip (id int PRIMARY KEY);

-- The lines of our own transactions, named by a label instead of their
-- xid.  (A transaction of someone else, e.g. autovacuum's, would show up
-- with skip-empty-xacts=false: such lines are left out.)
CREATE TABLE xa_label (xid xid, label text);
CREATE FUNCTION xa_lines(skip_empty text) RETURNS TABLE (label text, line text)
LANGUAGE sql AS $$
  SELECT l.label, regexp_replace(p.line, ',"xid":[0-9]+', '')
  FROM peek('xacts', 'exclude-tables', 'public.xa_skip,public.xa_label',
            'include-xids', 'true', 'skip-empty-xacts', skip_empty)
       WITH ORDINALITY AS p(line, n)
  JOIN xa_label l
    ON l.xid = (replace(p.line, '"relid":*', '"relid":0')::jsonb->>'xid')::xid
  ORDER BY p.n
$$;

-- empty transactions
BEGIN;
COMMIT;
-- an xid, but no change at all
BEGIN;
SELECT pg_current_xact_id()::xid AS x_xid_only \gset
COMMIT;
-- a change to an excluded table only
BEGIN;
INSERT INTO xa_skip VALUES (1);
SELECT pg_current_xact_id()::xid AS x_excluded \gset
COMMIT;
-- catalog changes only
BEGIN;
CREATE TABLE xa_ddl (id int);
SELECT pg_current_xact_id()::xid AS x_ddl \gset
COMMIT;
-- a real change
BEGIN;
INSERT INTO xa_main VALUES (1, 'one');
SELECT pg_current_xact_id()::xid AS x_insert \gset
COMMIT;
INSERT INTO xa_label VALUES (:'x_xid_only', 'xid only'),
  (:'x_excluded', 'excluded table only'), (:'x_ddl', 'ddl only'),
  (:'x_insert', 'insert');

-- skip-empty-xacts=true (the default): only the transaction with a change
SELECT * FROM xa_lines('true');
-- skip-empty-xacts=false: BEGIN and COMMIT of every transaction that was
-- decoded (a transaction whose only changes went to excluded tables or
-- the catalog included; one without any change is not decoded at all)
SELECT * FROM xa_lines('false');
SELECT count(*) AS consumed FROM decode('xacts');

-- aborted transactions: nothing, with or without skip-empty-xacts
BEGIN;
INSERT INTO xa_main VALUES (2, 'aborted');
UPDATE xa_main SET v = 'aborted' WHERE id = 1;
SELECT pg_current_xact_id()::xid AS x_abort1 \gset
ROLLBACK;
BEGIN;
INSERT INTO xa_main SELECT g, 'aborted' FROM generate_series(100, 1100) g;
SELECT pg_current_xact_id()::xid AS x_abort2 \gset
ROLLBACK;
INSERT INTO xa_label VALUES (:'x_abort1', 'aborted'), (:'x_abort2', 'aborted, bigger');
SELECT * FROM peek('xacts', 'exclude-tables', 'public.xa_label');
SELECT * FROM xa_lines('false');

-- savepoints: what was rolled back to a savepoint is absent, what was
-- released is there, all under the top-level transaction's xid
BEGIN;
INSERT INTO xa_main VALUES (10, 'top');
SAVEPOINT s1;
INSERT INTO xa_main VALUES (11, 'rolled back to s1');
ROLLBACK TO s1;
SAVEPOINT s2;
INSERT INTO xa_main VALUES (12, 'released s2');
RELEASE s2;
SAVEPOINT s3;
INSERT INTO xa_main VALUES (13, 'in s3, rolled back');
SAVEPOINT s4;
INSERT INTO xa_main VALUES (14, 'in s4, released, then s3 rolled back');
RELEASE s4;
ROLLBACK TO s3;
SAVEPOINT s5;
SAVEPOINT s6;
INSERT INTO xa_main VALUES (15, 'in s6, rolled back');
ROLLBACK TO s6;
INSERT INTO xa_main VALUES (16, 'in s5, after s6 rolled back');
RELEASE s5;
UPDATE xa_main SET v = 'top, updated' WHERE id = 10;
COMMIT;
-- a PL/pgSQL exception block is a subtransaction too
DO $$
BEGIN
  INSERT INTO xa_main VALUES (17, 'before the failing block');
  BEGIN
    INSERT INTO xa_main VALUES (18, 'in the failing block');
    RAISE EXCEPTION 'fail';
  EXCEPTION WHEN raise_exception THEN
    INSERT INTO xa_main VALUES (19, 'in the handler');
  END;
END $$;
SELECT * FROM peek('xacts', 'exclude-tables', 'public.xa_label');
-- every line of a transaction carries its top-level xid: as many xids as
-- transactions
SELECT count(*) FILTER (WHERE j->>'action' = 'B') AS transactions,
       count(DISTINCT j->>'xid') AS xids
FROM (SELECT replace(line, '"relid":*', '"relid":0')::jsonb AS j
      FROM decode('xacts', 'include-xids', 'true',
                  'exclude-tables', 'public.xa_label') AS line) l;

-- prepared transactions: decoded at COMMIT PREPARED, as an ordinary
-- transaction; nothing for one rolled back
BEGIN;
INSERT INTO xa_main VALUES (20, 'prepared, then committed');
PREPARE TRANSACTION 'xa_p1';
BEGIN;
INSERT INTO xa_main VALUES (21, 'prepared, then rolled back');
UPDATE xa_main SET v = 'prepared, then rolled back' WHERE id = 1;
PREPARE TRANSACTION 'xa_p2';
-- nothing is out before the outcome is known
SELECT * FROM peek('xacts');
COMMIT PREPARED 'xa_p1';
ROLLBACK PREPARED 'xa_p2';
SELECT * FROM decode('xacts');

-- include-xids, include-lsn, include-timestamp: all on by default
SELECT pg_current_wal_insert_lsn() AS lsn_before \gset
BEGIN;
INSERT INTO xa_main VALUES (30, 'keys');
INSERT INTO xa_label VALUES (pg_current_xact_id()::xid, 'keys');
COMMIT;
SELECT pg_current_wal_insert_lsn() AS lsn_after \gset
CREATE TEMP TABLE xa_keys AS
  SELECT n, data::jsonb AS j
  FROM pg_logical_slot_peek_changes('xacts', NULL, NULL,
         'exclude-tables', 'public.xa_label')
       WITH ORDINALITY AS p(lsn, xid, data, n);
SELECT j->>'action' AS action, j ? 'xid' AS xid, j ? 'lsn' AS lsn,
       j ? 'end_lsn' AS end_lsn, j ? 'timestamp' AS "timestamp"
FROM xa_keys ORDER BY n;
-- and they are right: one xid, ours; BEGIN's lsn is the commit's; the
-- commit time is now-ish
SELECT count(DISTINCT j->>'xid') = 1 AS one_xid,
       min(j->>'xid') = (SELECT xid::text FROM xa_label WHERE label = 'keys') AS our_xid,
       bool_and((j->>'lsn')::pg_lsn BETWEEN :'lsn_before' AND :'lsn_after') AS lsns_in_range
FROM xa_keys;
SELECT b.j->>'lsn' = c.j->>'lsn' AS begin_lsn_is_commit_lsn,
       (i.j->>'lsn')::pg_lsn < (c.j->>'lsn')::pg_lsn AS change_before_commit,
       (c.j->>'end_lsn')::pg_lsn > (c.j->>'lsn')::pg_lsn AS end_after_commit,
       b.j->>'timestamp' = c.j->>'timestamp' AS same_timestamp,
       (c.j->>'timestamp')::timestamptz BETWEEN now() - interval '1 hour'
                                            AND clock_timestamp() AS recent
FROM xa_keys b, xa_keys i, xa_keys c
WHERE b.j->>'action' = 'B' AND i.j->>'action' = 'I' AND c.j->>'action' = 'C';
-- each one can be turned off
SELECT j->>'action' AS action, j ? 'xid' AS xid, j ? 'lsn' AS lsn,
       j ? 'end_lsn' AS end_lsn, j ? 'timestamp' AS "timestamp"
FROM (SELECT data::jsonb AS j
      FROM pg_logical_slot_peek_changes('xacts', NULL, NULL,
             'exclude-tables', 'public.xa_label', 'include-xids', 'off',
             'include-lsn', 'off', 'include-timestamp', 'off')) l;
SELECT j->>'action' AS action, j ? 'xid' AS xid, j ? 'lsn' AS lsn,
       j ? 'end_lsn' AS end_lsn, j ? 'timestamp' AS "timestamp"
FROM (SELECT data::jsonb AS j
      FROM pg_logical_slot_peek_changes('xacts', NULL, NULL,
             'exclude-tables', 'public.xa_label', 'include-xids', '0',
             'include-lsn', '1', 'include-timestamp', '0')) l;
SELECT j->>'action' AS action, j ? 'xid' AS xid, j ? 'lsn' AS lsn,
       j ? 'end_lsn' AS end_lsn, j ? 'timestamp' AS "timestamp"
FROM (SELECT data::jsonb AS j
      FROM pg_logical_slot_get_changes('xacts', NULL, NULL,
             'exclude-tables', 'public.xa_label', 'include-xids', '1',
             'include-lsn', '0', 'include-timestamp', '1')) l;

SELECT pg_drop_replication_slot('xacts');
DROP FUNCTION xa_lines(text);
DROP TABLE xa_main, xa_skip, xa_ddl, xa_label;
