--
-- stream-changes: a transaction larger than logical_decoding_work_mem is
-- sent in chunks (S ... E) before it commits (C "streamed") or aborts (A).
-- Lines are aggregated: there are thousands.
--
SET logical_decoding_work_mem = '64kB';
SELECT 'init' FROM pg_create_logical_replication_slot('stream', 'pg_tviews_decoder');
CREATE TABLE st_t (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off);
CREATE TABLE st_other (id int PRIMARY KEY) WITH (autovacuum_enabled = off);

-- the lines of a peek, parsed, in order
CREATE FUNCTION st_peek(VARIADIC opts text[])
RETURNS TABLE (n bigint, j jsonb) LANGUAGE sql AS $$
  SELECT n, replace(line, '"relid":*', '"relid":0')::jsonb
  FROM peek('stream', VARIADIC opts) WITH ORDINALITY AS p(line, n)
$$;
-- the shape of a stream: actions in order, runs of the same action
-- collapsed into "I*" (more than one) or "I" (one); only the lines of
-- transaction xid, unless that is null (with skip-empty-xacts=false, the
-- transactions of others, e.g. autovacuum's, would show up)
CREATE FUNCTION st_shape(xid text, VARIADIC opts text[]) RETURNS text
LANGUAGE sql AS $$
  SELECT string_agg(a || CASE WHEN cnt > 1 THEN '*' ELSE '' END, ' ' ORDER BY first)
  FROM (SELECT a, min(n) AS first, count(*) AS cnt
        FROM (SELECT n, j->>'action' AS a,
                     n - row_number() OVER (PARTITION BY j->>'action' ORDER BY n) AS grp
              FROM st_peek(VARIADIC opts || '{include-xids,1}')
              WHERE xid IS NULL OR j->>'xid' = xid) x
        GROUP BY a, grp) y
$$;

-- a big transaction, committed
INSERT INTO st_t SELECT g, 'row ' || g FROM generate_series(1, 5000) g;

CREATE TEMP TABLE st_lines AS SELECT * FROM st_peek('stream-changes', 'true');
SELECT j->>'action' AS action, count(*) FROM st_lines
WHERE j->>'action' NOT IN ('S', 'E') GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE j->>'action' = 'S') > 1 AS several_chunks,
       count(*) FILTER (WHERE j->>'action' = 'S') =
         count(*) FILTER (WHERE j->>'action' = 'E') AS starts_match_stops,
       count(*) FILTER (WHERE (j->'first_segment')::bool) AS first_segments,
       (SELECT j->'first_segment' FROM st_lines ORDER BY n LIMIT 1) AS first_is_first,
       (SELECT j FROM st_lines ORDER BY n DESC LIMIT 1) - 'xid' AS last_line,
       count(DISTINCT j->>'xid') AS xids,
       bool_and(j ? 'xid') AS all_have_xid
FROM st_lines;
-- every change exactly once, in order, each inside a chunk
SELECT count(*) AS inserts, count(DISTINCT (j #>> '{columns,0,value}')::int) AS distinct_ids,
       min((j #>> '{columns,0,value}')::int) AS min_id,
       max((j #>> '{columns,0,value}')::int) AS max_id
FROM st_lines WHERE j->>'action' = 'I';
SELECT count(*) AS out_of_order
FROM (SELECT (j #>> '{columns,0,value}')::int AS id,
             lag((j #>> '{columns,0,value}')::int) OVER (ORDER BY n) AS prev
      FROM st_lines WHERE j->>'action' = 'I') x
WHERE id <> prev + 1;
SELECT count(*) FILTER (WHERE a = 'I' AND open_chunks <> 1) AS changes_outside_chunks,
       count(*) FILTER (WHERE open_chunks NOT IN (0, 1)) AS unbalanced
FROM (SELECT j->>'action' AS a,
             sum(CASE j->>'action' WHEN 'S' THEN 1 WHEN 'E' THEN -1 ELSE 0 END)
               OVER (ORDER BY n) AS open_chunks
      FROM st_lines) x;
SELECT regexp_replace(st_shape(NULL, 'stream-changes', 'true'), '(S I\* E )+', '(S I* E)+ ') AS shape;

-- without stream-changes, the same transaction arrives whole
SELECT st_shape(NULL, 'include-xids', '0');
SELECT st_shape(NULL, 'stream-changes', 'false');
SELECT count(*) FILTER (WHERE line LIKE '{"action":"I"%') AS consumed_inserts
FROM decode('stream', 'stream-changes', 'true') AS line;

-- a big transaction that aborts before it is decoded: its changes are
-- not streamed at all (PostgreSQL sees the abort when it starts), so with
-- skip-empty-xacts there is nothing, not even an A
BEGIN;
INSERT INTO st_t SELECT g, 'aborted ' || g FROM generate_series(10001, 15000) g;
ROLLBACK;
-- (an abort does not flush the WAL: a catalog change's commit does)
COMMENT ON TABLE st_t IS 'flush';
SELECT count(*) FROM peek('stream', 'stream-changes', 'true');
SELECT count(*) FROM peek('stream');
SELECT count(*) FILTER (WHERE line LIKE '{"action":"I"%') AS consumed_inserts
FROM decode('stream', 'stream-changes', 'true') AS line;

-- a big transaction still in progress (prepared) is streamed: chunks, no
-- end yet
BEGIN;
INSERT INTO st_t SELECT g, 'prepared ' || g FROM generate_series(40001, 45000) g;
SELECT pg_current_xact_id()::xid AS st_xid \gset
PREPARE TRANSACTION 'st_big';
SELECT regexp_replace(st_shape(:'st_xid', 'stream-changes', 'true'),
                      '(S I\* E )*S I\* E$', '(S I* E)+') AS shape;
-- it aborts.  Decoded now, PostgreSQL stops streaming it at its first
-- catalog access; with skip-empty-xacts=false the (empty) chunk is still
-- written, so an A ends it, for the whole transaction (xid = subxid)...
ROLLBACK PREPARED 'st_big';
SELECT j - 'xid' - 'subxid' AS line, j->>'xid' = j->>'subxid' AS toplevel
FROM st_peek('stream-changes', 'true', 'skip-empty-xacts', 'false')
WHERE j->>'action' = 'A';
-- ... while with skip-empty-xacts, decoded after the abort, there is
-- nothing to end
SELECT count(*) FROM peek('stream', 'stream-changes', 'true');
SELECT count(*) FILTER (WHERE line LIKE '{"action":"I"%') AS consumed_inserts
FROM decode('stream', 'stream-changes', 'true') AS line;

-- a big transaction whose changes are all filtered out: nothing, not even
-- empty chunks (skip-empty-xacts)
BEGIN;
INSERT INTO st_other SELECT g FROM generate_series(1, 5000) g;
SELECT pg_current_xact_id()::xid AS st_xid \gset
COMMIT;
SELECT count(*) FROM peek('stream', 'stream-changes', 'true',
                          'include-tables', 'public.st_t');
-- and with skip-empty-xacts=false, the chunks and the commit are there
SELECT regexp_replace(st_shape(:'st_xid', 'stream-changes', 'true',
                               'include-tables', 'public.st_t',
                               'skip-empty-xacts', 'false'),
                      '(S E )+', '(S E)+ ') AS shape;
SELECT count(*) FILTER (WHERE line LIKE '{"action":"I"%') AS consumed_inserts
FROM decode('stream', 'stream-changes', 'true') AS line;

-- small transactions are not streamed
INSERT INTO st_t VALUES (20001, 'small');
SELECT * FROM decode('stream', 'stream-changes', 'true');

-- the binary format streams the same way
INSERT INTO st_t SELECT g, 'binary ' || g FROM generate_series(30001, 35000) g;
SELECT count(*) FILTER (WHERE j.line LIKE '{"action":"I"%') AS inserts,
       count(*) FILTER (WHERE j.line IS DISTINCT FROM b.line) AS mismatches,
       count(*) FILTER (WHERE j.line LIKE '{"action":"S"%') > 0 AS streamed
FROM (SELECT n, data AS line
      FROM pg_logical_slot_peek_changes('stream', NULL, NULL, 'stream-changes', 'true')
           WITH ORDINALITY AS p(lsn, xid, data, n)) j
FULL JOIN (SELECT n, line FROM binary_as_json('stream', 'stream-changes', 'true')
           WITH ORDINALITY AS b(line, n)) b USING (n);

SELECT pg_drop_replication_slot('stream');
DROP FUNCTION st_shape(text, text[]);
DROP FUNCTION st_peek(text[]);
DROP TABLE st_t, st_other;
RESET logical_decoding_work_mem;
