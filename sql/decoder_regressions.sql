--
-- Regression tests for decoder bugs found while writing the decoder_*
-- tests (each was fixed; the file keeps them fixed).  The last part
-- crashed the server before the fix (a use-after-free).
--

-- 1. A json column whose text holds a newline (json keeps its input's
--    whitespace) breaks the one-line-per-message framing: the "line"
--    contains a raw newline, so pg_recvlogical -f - writes two lines.
SELECT 'init' FROM pg_create_logical_replication_slot('bugs', 'pg_tviews_decoder');
CREATE TABLE kb_json (id int PRIMARY KEY, j json);
INSERT INTO kb_json VALUES (1, E'{"a": 1,\n "b": [1,\r\n\t2]}');
SELECT count(*) FILTER (WHERE data ~ '[\n\r]') AS lines_with_a_raw_newline,
       count(*) FILTER (WHERE data::jsonb IS NOT NULL) AS valid_json
FROM pg_logical_slot_peek_changes('bugs', NULL, NULL);
SELECT count(*) FILTER (WHERE l ~ '[\n\r]') AS binary_lines_with_a_raw_newline
FROM binary_as_json('bugs') l;
SELECT count(*) AS consumed FROM decode('bugs');
DROP TABLE kb_json;

-- 2. binary-version: a value that overflows int32 is truncated and
--    accepted (4294967297 = 2^32 + 1 is taken for 1).
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('bugs', NULL, NULL,
  'format', 'binary', 'binary-version', '4294967297');

-- 3. bytea_output = escape: the binary format carries the escape form
--    (the output function's text), the json format always hex, so the
--    two formats disagree.
CREATE TABLE kb_bytea (id int PRIMARY KEY, b bytea);
INSERT INTO kb_bytea VALUES (1, '\x41ff00');
SET bytea_output = 'escape';
SELECT count(*) AS lines,
       count(*) FILTER (WHERE j.line IS DISTINCT FROM b.line) AS mismatches
FROM (SELECT n, data AS line FROM pg_logical_slot_peek_changes('bugs', NULL, NULL)
      WITH ORDINALITY AS p(lsn, xid, data, n)) j
FULL JOIN (SELECT n, line FROM binary_as_json('bugs') WITH ORDINALITY AS b(line, n)) b
USING (n);
RESET bytea_output;
SELECT count(*) AS consumed FROM decode('bugs');
DROP TABLE kb_bytea;

-- 4. stream-changes: the changes of a subtransaction are streamed with the
--    top-level xid, so when its abort arrives ({"action":"A", "xid":top,
--    "subxid":sub}) a consumer cannot tell which streamed changes to drop.
--    Each streamed change must carry the xid of its own (sub)transaction.
SET logical_decoding_work_mem = '64kB';
CREATE TABLE kb_stream (id int PRIMARY KEY, v text);
BEGIN;
INSERT INTO kb_stream SELECT g, 'top' FROM generate_series(1, 3000) g;
SAVEPOINT s;
INSERT INTO kb_stream SELECT g, 'sub' FROM generate_series(100001, 103000) g;
ROLLBACK TO s;
INSERT INTO kb_stream SELECT g, 'top again' FROM generate_series(200001, 200010) g;
COMMIT;
CREATE TEMP TABLE kb_lines AS
  SELECT n, data::jsonb AS j
  FROM pg_logical_slot_peek_changes('bugs', NULL, NULL, 'stream-changes', 'true')
       WITH ORDINALITY AS p(lsn, xid, data, n);
SELECT (SELECT count(*) FROM kb_lines WHERE j->>'action' = 'A') AS aborts,
       count(*) > 0 AS sub_changes_streamed,
       bool_and(l.j->>'xid' = a.j->>'subxid') AS sub_changes_carry_the_subxid
FROM kb_lines l, kb_lines a
WHERE l.j->>'action' = 'I' AND l.j #>> '{columns,1,value}' = 'sub'
  AND a.j->>'action' = 'A';
-- ... and the binary format
SELECT bool_and(l.line::jsonb->>'xid' = a.line::jsonb->>'subxid') AS binary_sub_changes_carry_the_subxid
FROM binary_as_json('bugs', 'stream-changes', 'true') AS l(line),
     binary_as_json('bugs', 'stream-changes', 'true') AS a(line)
WHERE l.line LIKE '{"action":"I"%"value":"sub"}]}' AND a.line LIKE '{"action":"A"%';
SELECT count(*) > 0 AS consumed FROM decode('bugs');
RESET logical_decoding_work_mem;
DROP TABLE kb_stream;
SELECT pg_drop_replication_slot('bugs');

-- 5. After an ERROR raised once the plugin's startup callback has run (here
--    PostgreSQL's own check that a binary plugin is not read as text), the
--    relation cache pointers (relinfo_hash, relinfo_cxt in relinfo.c) still
--    point into the freed decoding context: the shutdown callback did not
--    run.  The next relcache invalidation in the backend calls
--    relinfo_invalidate_rel() on freed (reused) memory: the backend dies of
--    SIGSEGV, and the whole server restarts.  (Whether it crashes depends
--    on what reused the memory; this sequence does reliably here.)
SELECT 'init' FROM pg_create_logical_replication_slot('bugs_uaf', 'pg_tviews_decoder');
CREATE TABLE kb_uaf (id int);
SELECT data FROM pg_logical_slot_peek_changes('bugs_uaf', NULL, NULL, 'format', 'binary');
SELECT count(*) FROM (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 2000) g GROUP BY g % 7) s;
ALTER TABLE kb_uaf ADD COLUMN b int;
SELECT 'alive' AS backend;
SELECT pg_drop_replication_slot('bugs_uaf');
DROP TABLE kb_uaf;
