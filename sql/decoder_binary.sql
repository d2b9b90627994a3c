--
-- The binary format carries the same information as the json format: for
-- a mixed workload, pg_tviews_wire_to_json() of the binary messages equals
-- the json lines (every include-* option at its default, on), line for
-- line.  Then: pg_tviews_wire_to_json() on malformed input fails cleanly.
--
SET TimeZone = 'UTC';
SELECT 'init' FROM pg_create_logical_replication_slot('bin', 'pg_tviews_decoder');

CREATE SCHEMA "Odd ""Name"" ü";
CREATE TABLE "Odd ""Name"" ü"."tb ""x"", ü.y" (
  id int PRIMARY KEY, "col ""q"" ü" text, n numeric, f float8, b bool,
  by bytea, j jsonb, js json, arr text[], ts timestamptz, u uuid);
CREATE TABLE bn_a (id int PRIMARY KEY, v text);
CREATE TABLE bn_nokey (a int, b text);
CREATE TABLE bn_full (id int PRIMARY KEY, v text, big text);
ALTER TABLE bn_full REPLICA IDENTITY FULL;
CREATE TABLE bn_index (id int PRIMARY KEY, code text NOT NULL, v text);
CREATE UNIQUE INDEX bn_index_code ON bn_index (code);
ALTER TABLE bn_index REPLICA IDENTITY USING INDEX bn_index_code;
CREATE TABLE bn_nothing (id int PRIMARY KEY, v text);
ALTER TABLE bn_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE bn_parent (id int PRIMARY KEY);
CREATE TABLE bn_child (id int PRIMARY KEY, p int REFERENCES bn_parent);

-- the workload
INSERT INTO "Odd ""Name"" ü"."tb ""x"", ü.y" VALUES
  (1, E'quote " backslash \\ nl \n tab \t ctl \x01 é 😀', 1.50, 1.5e300, true,
   '\x00ff', '{"k": [1, "two", null]}', '{"a":  1}', '{"a \"b\"",NULL}',
   '2024-01-02 03:04:05.678+00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
  (2, NULL, 'NaN', '-Infinity', false, '\x', 'null', '[]', '{}',
   'infinity', NULL),
  (3, '', -0.000001, 'NaN', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
UPDATE "Odd ""Name"" ü"."tb ""x"", ü.y" SET n = 'Infinity' WHERE id = 2;
UPDATE "Odd ""Name"" ü"."tb ""x"", ü.y" SET id = 4 WHERE id = 3;
DELETE FROM "Odd ""Name"" ü"."tb ""x"", ü.y" WHERE id = 1;

BEGIN;
INSERT INTO bn_a VALUES (1, 'a'), (2, 'b');
SELECT 'emitted' FROM pg_logical_emit_message(true, 'bn', 'transactional');
SELECT 'emitted' FROM pg_logical_emit_message(false, 'bn', 'not transactional');
SAVEPOINT s;
INSERT INTO bn_a VALUES (3, 'rolled back');
ROLLBACK TO s;
UPDATE bn_a SET v = 'A' WHERE id = 1;
COMMIT;
SELECT 'emitted' FROM pg_logical_emit_message(true, 'bn', '\xff00'::bytea);
SELECT 'emitted' FROM pg_logical_emit_message(true, '', '');

INSERT INTO bn_nokey VALUES (1, 'x'), (NULL, NULL);
UPDATE bn_nokey SET b = 'y';
DELETE FROM bn_nokey;

INSERT INTO bn_full VALUES (1, 'v', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 500) i));
UPDATE bn_full SET v = 'w';
UPDATE bn_full SET big = 'small now';
DELETE FROM bn_full;

INSERT INTO bn_index VALUES (1, 'c1', 'x');
UPDATE bn_index SET id = 10;
UPDATE bn_index SET code = 'c2';
DELETE FROM bn_index;
INSERT INTO bn_nothing VALUES (1, 'x');
UPDATE bn_nothing SET v = 'y';
DELETE FROM bn_nothing;

-- DDL between changes: the binary format describes the relation again
INSERT INTO bn_a VALUES (5, 'before alter');
ALTER TABLE bn_a ADD COLUMN extra int DEFAULT 42;
INSERT INTO bn_a VALUES (6, 'after add column');
UPDATE bn_a SET v = 'old row, new column' WHERE id = 5;
ALTER TABLE bn_a DROP COLUMN extra;
INSERT INTO bn_a VALUES (7, 'after drop column');
-- and within one transaction
BEGIN;
INSERT INTO bn_a VALUES (8, 'same txn, before');
ALTER TABLE bn_a ADD COLUMN more text;
INSERT INTO bn_a VALUES (9, 'same txn, after', 'more');
ALTER TABLE bn_a RENAME TO bn_a_renamed;
UPDATE bn_a_renamed SET more = 'renamed' WHERE id = 9;
COMMIT;
ALTER TABLE bn_a_renamed RENAME TO bn_a;
ALTER SCHEMA "Odd ""Name"" ü" RENAME TO "Odd ""Renamed"" ü";
INSERT INTO "Odd ""Renamed"" ü"."tb ""x"", ü.y" (id) VALUES (5);
ALTER SCHEMA "Odd ""Renamed"" ü" RENAME TO "Odd ""Name"" ü";

-- truncate: one table, several, cascade, restart identity
INSERT INTO bn_parent VALUES (1);
INSERT INTO bn_child VALUES (1, 1);
TRUNCATE bn_nokey;
TRUNCATE bn_a, bn_nothing RESTART IDENTITY;
TRUNCATE bn_parent CASCADE;

-- a transaction that came in through a replication origin
SELECT 'created' FROM pg_replication_origin_create('bn_origin');
SELECT pg_replication_origin_session_setup('bn_origin');
INSERT INTO bn_a VALUES (100, 'from elsewhere');
SELECT pg_replication_origin_session_reset();
SELECT pg_replication_origin_drop('bn_origin');

-- the json lines, and the binary messages shown as json lines
CREATE TEMP TABLE bn_json AS
  SELECT n, data AS line
  FROM pg_logical_slot_peek_changes('bin', NULL, NULL) WITH ORDINALITY AS p(lsn, xid, data, n);
CREATE TEMP TABLE bn_bin AS
  SELECT n, line FROM binary_as_json('bin') WITH ORDINALITY AS b(line, n);

SELECT (SELECT count(*) FROM bn_json) AS json_lines,
       (SELECT count(*) FROM bn_bin) AS binary_lines;
-- line by line, in order: no mismatch either way
SELECT count(*) AS json_lines_not_in_binary
FROM bn_json j LEFT JOIN bn_bin b USING (n)
WHERE b.line IS DISTINCT FROM j.line;
SELECT count(*) AS binary_lines_not_in_json
FROM bn_bin b LEFT JOIN bn_json j USING (n)
WHERE j.line IS DISTINCT FROM b.line;
-- (the first differences, should there be any)
SELECT n, j.line AS json, b.line AS binary
FROM bn_json j FULL JOIN bn_bin b USING (n)
WHERE j.line IS DISTINCT FROM b.line
ORDER BY n LIMIT 3;

-- what was compared: the actions, and every key in use
SELECT line::jsonb->>'action' AS action, count(*)
FROM bn_json GROUP BY 1 ORDER BY 1;
SELECT k, count(*) FROM bn_json, jsonb_object_keys(line::jsonb) k GROUP BY k ORDER BY k;
SELECT count(*) FILTER (WHERE line LIKE '%"unchanged_toast":true%') AS with_unchanged_toast,
       count(*) FILTER (WHERE line LIKE '%"value":null%') AS with_nulls
FROM bn_json;
SELECT DISTINCT c->>'name' AS name, c->>'type' AS type
FROM bn_json, jsonb_array_elements(line::jsonb->'columns') c
WHERE line::jsonb->>'schema' <> 'public' ORDER BY 1;

-- the binary stream's RELATION messages: sent before a relation's first
-- change and again after it changed (DDL, a rename, a TRUNCATE)
CREATE FUNCTION bn_string_at(data bytea, pos int) RETURNS text LANGUAGE sql AS $$
  SELECT convert_from(substring(data FROM pos + 4 FOR
           (get_byte(data, pos - 1) << 24 | get_byte(data, pos) << 16 |
            get_byte(data, pos + 1) << 8 | get_byte(data, pos + 2))), 'UTF8')
$$;
SELECT n, bn_string_at(data, 7) AS schema,
       bn_string_at(data, 11 + length(convert_to(bn_string_at(data, 7), 'UTF8'))) AS "table"
FROM pg_logical_slot_peek_binary_changes('bin', NULL, NULL, 'format', 'binary')
     WITH ORDINALITY AS p(lsn, xid, data, n)
WHERE get_byte(data, 1) = ascii('R')
ORDER BY n;
-- every message starts with version 1
SELECT count(*) AS messages, bool_and(get_byte(data, 0) = 1) AS all_version_1,
       string_agg(DISTINCT chr(get_byte(data, 1)), '' ORDER BY chr(get_byte(data, 1))) AS types
FROM pg_logical_slot_peek_binary_changes('bin', NULL, NULL, 'format', 'binary');

-- with filters and columns=key the two formats still agree
SELECT count(*) AS lines,
       count(*) FILTER (WHERE j.line IS DISTINCT FROM b.line) AS mismatches
FROM (SELECT n, data AS line FROM pg_logical_slot_peek_changes('bin', NULL, NULL,
        'include-tables', 'public.bn_*', 'exclude-tables', 'public.bn_nokey',
        'columns', 'key', 'actions', 'insert,update,delete,truncate',
        'lineage-columns', 'public.bn_index.v')
      WITH ORDINALITY AS p(lsn, xid, data, n)) j
FULL JOIN (SELECT n, line FROM binary_as_json('bin',
        'include-tables', 'public.bn_*', 'exclude-tables', 'public.bn_nokey',
        'columns', 'key', 'actions', 'insert,update,delete,truncate',
        'lineage-columns', 'public.bn_index.v')
      WITH ORDINALITY AS b(line, n)) b USING (n);

SELECT pg_drop_replication_slot('bin');
DROP TABLE bn_a, bn_nokey, bn_full, bn_index, bn_nothing, bn_child, bn_parent,
  "Odd ""Name"" ü"."tb ""x"", ü.y";
DROP SCHEMA "Odd ""Name"" ü";
DROP FUNCTION bn_string_at(bytea, int);

--
-- pg_tviews_wire_to_json() on malformed input: a clean ERROR (SQLSTATE
-- 22P03 for a malformed message), never a crash.
--
CREATE FUNCTION bn_try(msgs bytea[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  lines text;
  detail text;
BEGIN
  SELECT string_agg(l, E'\n') INTO lines FROM pg_tviews_wire_to_json(msgs) l;
  RETURN 'ok: ' || coalesce(lines, '(no lines)');
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' (' || nullif(detail, '') || ')', '');
END $$;

-- well-formed messages, built by hand: BEGIN, RELATION (one int column
-- "id", a key), INSERT, COMMIT
\set m_begin   '''\\x0142000000070000000000000100000000000000000000000000''::bytea'
\set m_rel     '''\\x015200003039000000017300000001746400010100000002696400000017ffffffff00000007696e7465676572''::bytea'
\set m_insert  '''\\x0149000000070000000000000080000030390001000074000000023432''::bytea'
\set m_commit  '''\\x014300000007000000000000010000000000000001080000000000000000''::bytea'
SELECT bn_try(ARRAY[:m_begin, :m_rel, :m_insert, :m_commit]);
SELECT bn_try('{}');
SELECT count(*) FROM pg_tviews_wire_to_json(NULL);

-- malformed
SELECT bn_try(ARRAY['\x'::bytea]);
SELECT bn_try(ARRAY['\x01'::bytea]);
SELECT bn_try(ARRAY['\x0242'::bytea]);
SELECT bn_try(ARRAY['\x0042'::bytea]);
SELECT bn_try(ARRAY['\x015a'::bytea]);
SELECT bn_try(ARRAY['\x01420000000700'::bytea]);
SELECT bn_try(ARRAY[:m_begin || '\x00'::bytea]);
-- a string longer than the message
SELECT bn_try(ARRAY['\x014d00000000000000000000000100000001ff61'::bytea]);
SELECT bn_try(ARRAY['\x014d00000000000000000000000100ffffffff61'::bytea]);
-- a change before its RELATION message
SELECT bn_try(ARRAY[:m_begin, :m_insert]);
-- a column index past the relation's columns
SELECT bn_try(ARRAY[:m_rel, '\x0149000000070000000000000080000030390001000574000000023432'::bytea]);
-- an unknown value kind
SELECT bn_try(ARRAY[:m_rel, '\x014900000007000000000000008000003039000100007a'::bytea]);
-- a truncated tuple
SELECT bn_try(ARRAY[:m_rel, '\x01490000000700000000000000800000303900050000'::bytea]);
-- TRUNCATE claiming more relations than it holds
SELECT bn_try(ARRAY['\x0154000000070000000000000080000fffffff00003039'::bytea]);
SELECT bn_try(ARRAY['\x0154000000070000000000000080008000000000003039'::bytea]);
-- TRUNCATE of a relation not described
SELECT bn_try(ARRAY['\x01540000000700000000000000800000000001000030ff'::bytea]);
-- a NULL element
SELECT bn_try(ARRAY[:m_begin, NULL]);
-- the error for a NULL element and for a malformed message, with SQLSTATE
\set VERBOSITY sqlstate
SELECT * FROM pg_tviews_wire_to_json(ARRAY[NULL::bytea]);
SELECT * FROM pg_tviews_wire_to_json(ARRAY['\x015a'::bytea]);
\set VERBOSITY default
SELECT * FROM pg_tviews_wire_to_json(ARRAY[NULL::bytea]);
SELECT * FROM pg_tviews_wire_to_json(ARRAY['\x015a'::bytea]);

-- 0xff bytes of every length up to 64 after each message header: a clean
-- error, or a well-formed message when the bytes happen to make one
-- (E with 4 bytes, S with 5, A with 8, C and c with 28)
SELECT count(*) AS tries,
       count(*) FILTER (WHERE r LIKE '22P03:%') AS clean_errors,
       count(*) FILTER (WHERE r LIKE 'ok:%') AS accepted
FROM (SELECT bn_try(ARRAY[:m_rel, '\x01'::bytea || convert_to(chr(t), 'SQL_ASCII') ||
               decode(repeat('ff', len), 'hex')]) AS r
      FROM unnest(ARRAY[ascii('B'), ascii('C'), ascii('R'), ascii('I'), ascii('U'),
                        ascii('D'), ascii('T'), ascii('M'), ascii('S'), ascii('E'),
                        ascii('c'), ascii('A')]) t,
           generate_series(0, 64) len) x;

DROP FUNCTION bn_try(bytea[]);
