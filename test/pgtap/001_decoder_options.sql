-- pg_tviews_decoder through the SQL decoding functions: every option is
-- validated (SQLSTATE 22023 with a message naming the option and value,
-- and a hint), good values are accepted, filters are honoured, and values
-- are rendered as documented (NaN/Infinity as strings, numbers as
-- numbers, bytea as hex, jsonb embedded, text escaped).
--
-- No BEGIN/ROLLBACK wrapper: a logical slot cannot be created in a
-- transaction that has written (pgTAP's plan() writes temp tables), so
-- every statement runs in autocommit and the test cleans up after itself:
-- it drops its slot and tables at the end.  The slot is this file's own.

SET client_min_messages = warning;

-- the slot first, in a transaction of its own (DO: no output for pg_prove)
DO $$ BEGIN
  PERFORM pg_create_logical_replication_slot('pgtap_decoder_options', 'pg_tviews_decoder');
END $$;

CREATE TABLE pgtap_dec (
  id int PRIMARY KEY,
  n numeric,
  f float8,
  r real,
  b bool,
  by bytea,
  j jsonb,
  t text
);
CREATE TABLE pgtap_other (id int PRIMARY KEY);

INSERT INTO pgtap_dec VALUES
  (1, 'NaN', 'Infinity', '-Infinity', true, '\x0102', '{"a": [1, 2]}',
   E'quote " backslash \\ tab \t newline \n end');
INSERT INTO pgtap_dec VALUES (2, 1.50, 2.5, 0, false, NULL, NULL, 'two');
INSERT INTO pgtap_other VALUES (1);
UPDATE pgtap_dec SET t = 'uno' WHERE id = 1;
DELETE FROM pgtap_dec WHERE id = 2;
DO $$ BEGIN
  PERFORM pg_logical_emit_message(true, 'keep', 'kept');
  PERFORM pg_logical_emit_message(true, 'drop', 'dropped');
END $$;
-- a transaction that touches pgtap_other only, its xid in :other_xid
BEGIN;
INSERT INTO pgtap_other VALUES (2);
SELECT pg_current_xact_id()::text AS other_xid \gset
COMMIT;

-- peek the slot with options, as jsonb (a line that is not JSON fails)
CREATE FUNCTION pg_temp.peek(VARIADIC opts text[] DEFAULT '{}')
RETURNS SETOF jsonb LANGUAGE sql AS $$
  SELECT data::jsonb
  FROM pg_logical_slot_peek_changes('pgtap_decoder_options', NULL, NULL, VARIADIC opts)
$$;

-- the pgtap_dec row with the given id, from its INSERT (default options)
CREATE FUNCTION pg_temp.inserted(row_id int)
RETURNS jsonb LANGUAGE sql AS $$
  SELECT d FROM pg_temp.peek('include-tables', 'public.pgtap_dec') d
  WHERE d->>'action' = 'I' AND (d #>> '{columns,0,value}')::int = row_id
$$;

-- the value of a column of that row
CREATE FUNCTION pg_temp.val(row_id int, col text)
RETURNS jsonb LANGUAGE sql AS $$
  SELECT c->'value'
  FROM jsonb_array_elements(pg_temp.inserted(row_id)->'columns') c
  WHERE c->>'name' = col
$$;

-- the hint (or detail) of the error a statement raises
CREATE FUNCTION pg_temp.error_field(sql text, field text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  hint text;
  detail text;
BEGIN
  EXECUTE sql;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT, detail = PG_EXCEPTION_DETAIL;
  RETURN CASE field WHEN 'hint' THEN hint ELSE detail END;
END
$$;

SELECT plan(65);

-- ---------------------------------------------------------------------
-- bad options: SQLSTATE 22023, the option and the value named
-- ---------------------------------------------------------------------
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('bogus', '1')$$,
  '22023', 'unrecognized pg_tviews_decoder option "bogus"',
  'unknown option');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('Format', 'json')$$,
  '22023', 'unrecognized pg_tviews_decoder option "Format"',
  'option names are case-sensitive');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('format', 'xml')$$,
  '22023', 'invalid value "xml" for pg_tviews_decoder option "format"',
  'format: unknown format');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('binary-version', '2')$$,
  '22023', 'invalid value "2" for pg_tviews_decoder option "binary-version"',
  'binary-version: a version this build does not write');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('binary-version', '1x')$$,
  '22023', 'invalid value "1x" for pg_tviews_decoder option "binary-version"',
  'binary-version: not a number');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('include-tables', 'pgtap_dec')$$,
  '22023', 'invalid value "pgtap_dec" for pg_tviews_decoder option "include-tables"',
  'include-tables: unqualified name');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('include-tables', 'public.pgtap_dec, .x')$$,
  '22023', 'invalid value ".x" for pg_tviews_decoder option "include-tables"',
  'include-tables: empty schema in the second element');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('exclude-tables', 'public.')$$,
  '22023', 'invalid value "public." for pg_tviews_decoder option "exclude-tables"',
  'exclude-tables: empty table name');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('actions', 'insert,upsert')$$,
  '22023', 'invalid value "upsert" for pg_tviews_decoder option "actions"',
  'actions: unknown action named');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('actions', '')$$,
  '22023', 'invalid value "" for pg_tviews_decoder option "actions"',
  'actions: empty list');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('message-prefixes', '')$$,
  '22023', 'invalid value "" for pg_tviews_decoder option "message-prefixes"',
  'message-prefixes: empty list');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('columns', 'some')$$,
  '22023', 'invalid value "some" for pg_tviews_decoder option "columns"',
  'columns: unknown value');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('lineage-columns', 'public.pgtap_dec')$$,
  '22023', 'invalid value "public.pgtap_dec" for pg_tviews_decoder option "lineage-columns"',
  'lineage-columns: a column is required');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('include-xids', 'maybe')$$,
  '22023', 'invalid value "maybe" for pg_tviews_decoder option "include-xids"',
  'boolean option: not a boolean');
SELECT throws_ok(
  $$SELECT * FROM pg_temp.peek('stream-changes', '')$$,
  '22023', 'invalid value "" for pg_tviews_decoder option "stream-changes"',
  'boolean option: empty string');
-- (the SQL interface cannot give an option without a value: PostgreSQL
-- refuses NULLs in the options array; 001_recvlogical.pl covers that)

-- An error after the plugin's startup: the decoding context goes away
-- without the shutdown callback.  Further sessions that fail, and
-- relcache invalidations, must not touch what it left behind (this once
-- crashed or hung the backend).
SELECT throws_ok(
  $$SELECT * FROM pg_logical_slot_peek_changes('pgtap_decoder_options', NULL, NULL, 'format', 'binary')$$,
  '0A000', 'logical decoding output plugin "pg_tviews_decoder" produces binary output, but function "pg_logical_slot_peek_changes(name,pg_lsn,integer,text[])" expects textual data',
  'format=binary is binary output: the text functions refuse it');

-- hints and details
SELECT matches(
  pg_temp.error_field($$SELECT * FROM pg_temp.peek('bogus', '1')$$, 'hint'),
  '^Valid options are: format, binary-version, include-tables, exclude-tables, actions, .*include-timestamp.*\.$',
  'unknown option: the hint lists the valid options');
SELECT is(
  pg_temp.error_field($$SELECT * FROM pg_temp.peek('format', 'xml')$$, 'hint'),
  'Valid values are: json, binary.',
  'format: the hint lists the formats');
SELECT is(
  pg_temp.error_field($$SELECT * FROM pg_temp.peek('include-tables', 'x')$$, 'detail'),
  'Each element must be a schema-qualified table name or pattern.',
  'include-tables: the detail');
SELECT is(
  pg_temp.error_field($$SELECT * FROM pg_temp.peek('actions', 'upsert')$$, 'hint'),
  'Valid actions are: insert, update, delete, truncate, message.',
  'actions: the hint lists the actions');
SELECT is(
  pg_temp.error_field($$SELECT * FROM pg_temp.peek('include-lsn', 'x')$$, 'hint'),
  'Valid values are: true, false, on, off, 1, 0.',
  'boolean option: the hint lists the values');

SELECT lives_ok(
  $$CREATE TABLE pgtap_inval (a int); DROP TABLE pgtap_inval$$,
  'relcache invalidations after failed decoding sessions are harmless');

-- ---------------------------------------------------------------------
-- good options are accepted
-- ---------------------------------------------------------------------
SELECT lives_ok(
  $$SELECT * FROM pg_temp.peek('format', 'json', 'binary-version', '1')$$,
  'format=json, binary-version=1');
SELECT lives_ok(
  $$SELECT * FROM pg_logical_slot_peek_binary_changes('pgtap_decoder_options', NULL, NULL, 'format', 'binary')$$,
  'format=binary through the binary function');
SELECT lives_ok(
  $$SELECT * FROM pg_temp.peek('include-tables', 'public.*, *.pgtap_\*', 'exclude-tables', 'public.pgtap_other')$$,
  'include-tables and exclude-tables with wildcards and an escaped star');
SELECT lives_ok(
  $$SELECT * FROM pg_temp.peek('actions', ' INSERT , Update,delete,truncate,MESSAGE ')$$,
  'actions: case-insensitive, blanks trimmed');
SELECT lives_ok(
  $$SELECT * FROM pg_temp.peek('message-prefixes', 'a\,b, keep', 'only-local', 'on')$$,
  'message-prefixes with an escaped comma, only-local=on');
SELECT lives_ok(
  $$SELECT * FROM pg_temp.peek('columns', 'key', 'lineage-columns', 'public.pgtap_dec.t')$$,
  'columns=key, lineage-columns');
SELECT lives_ok(
  $$SELECT * FROM pg_temp.peek('skip-empty-xacts', '0', 'include-xids', 'off', 'include-timestamp', 'false', 'include-lsn', 'no', 'include-types', 'yes', 'stream-changes', 'true')$$,
  'boolean spellings');

-- ---------------------------------------------------------------------
-- values
-- ---------------------------------------------------------------------
SELECT is(pg_temp.val(1, 'n') #>> '{}', 'NaN', 'numeric NaN is "NaN"');
SELECT is(jsonb_typeof(pg_temp.val(1, 'n')), 'string', 'numeric NaN is a JSON string');
SELECT is(pg_temp.inserted(1) #>> '{columns,1,value}', 'NaN', 'numeric NaN, by path');
SELECT is(pg_temp.val(1, 'f') #>> '{}', 'Infinity', 'float8 Infinity is "Infinity"');
SELECT is(jsonb_typeof(pg_temp.val(1, 'f')), 'string', 'float8 Infinity is a JSON string');
SELECT is(pg_temp.val(1, 'r') #>> '{}', '-Infinity', 'real -Infinity is "-Infinity"');
SELECT is(jsonb_typeof(pg_temp.val(2, 'n')), 'number', 'numeric is a JSON number');
SELECT is(pg_temp.val(2, 'n') #>> '{}', '1.50', 'numeric keeps its scale');
SELECT is(pg_temp.val(2, 'f') #>> '{}', '2.5', 'float8 value');
SELECT is(pg_temp.val(1, 'b'), 'true'::jsonb, 'bool true is JSON true');
SELECT is(pg_temp.val(2, 'b'), 'false'::jsonb, 'bool false is JSON false');
SELECT is(pg_temp.val(1, 'by') #>> '{}', '\x0102', 'bytea is a \x hex string');
SELECT is(jsonb_typeof(pg_temp.val(2, 'by')), 'null', 'NULL is JSON null');
SELECT is(pg_temp.val(1, 'j'), '{"a": [1, 2]}'::jsonb, 'jsonb is embedded');
SELECT is(pg_temp.val(1, 't') #>> '{}', E'quote " backslash \\ tab \t newline \n end',
  'text with quote, backslash, tab and newline round-trips');
SELECT is(
  (SELECT string_agg(c->>'type', ',' ORDER BY ord)
   FROM jsonb_array_elements(pg_temp.inserted(1)->'columns') WITH ORDINALITY AS x(c, ord)),
  'integer,numeric,double precision,real,boolean,bytea,jsonb,text',
  'type names');
SELECT is(pg_temp.inserted(1)->'key', '["id"]'::jsonb, 'key is the primary key');

-- ---------------------------------------------------------------------
-- filters and switches
-- ---------------------------------------------------------------------
SELECT is(
  (SELECT string_agg(DISTINCT d->>'table', ',') FROM pg_temp.peek('include-tables', 'public.pgtap_other') d),
  'pgtap_other', 'include-tables: only the included table');
SELECT is(
  (SELECT string_agg(DISTINCT d->>'table', ',') FROM pg_temp.peek('include-tables', 'public.pgtap_d*') d),
  'pgtap_dec', 'include-tables: a wildcard pattern');
SELECT is(
  (SELECT string_agg(DISTINCT d->>'table', ',') FROM pg_temp.peek('include-tables', 'public.pgtap_*', 'exclude-tables', '*.pgtap_dec') d),
  'pgtap_other', 'exclude-tables wins over include-tables');
SELECT is(
  (SELECT string_agg(DISTINCT d->>'action', ',')
   FROM pg_temp.peek('include-tables', 'public.pgtap_dec', 'actions', 'delete') d
   WHERE d->>'action' NOT IN ('B', 'C')),
  'D', 'actions=delete: only deletes');
SELECT is(
  (SELECT count(*) FROM pg_temp.peek('include-tables', 'public.pgtap_dec', 'actions', 'delete') d
   WHERE d->>'action' = 'B'),
  1::bigint, 'actions=delete: transactions without a delete are skipped');
SELECT is(
  (SELECT string_agg(d->>'content', ',') FROM pg_temp.peek('actions', 'message', 'message-prefixes', 'keep') d
   WHERE d->>'action' = 'M'),
  'kept', 'message-prefixes: only the listed prefix');
SELECT is(
  (SELECT count(*) FROM pg_temp.peek('actions', 'insert') d WHERE d->>'action' = 'M'),
  0::bigint, 'actions without message: no message');
SELECT is(
  (SELECT d->'columns' FROM pg_temp.peek('include-tables', 'public.pgtap_dec', 'columns', 'key') d
   WHERE d->>'action' = 'I' AND (d #>> '{columns,0,value}')::int = 1),
  '[{"name": "id", "type": "integer", "value": 1}]'::jsonb,
  'columns=key: the key column only');
SELECT is(
  (SELECT d->'columns' FROM pg_temp.peek('include-tables', 'public.pgtap_dec', 'columns', 'key', 'lineage-columns', 'public.pgtap_dec.b') d
   WHERE d->>'action' = 'I' AND (d #>> '{columns,0,value}')::int = 1),
  '[{"name": "id", "type": "integer", "value": 1}, {"name": "b", "type": "boolean", "value": true}]'::jsonb,
  'columns=key with lineage-columns: key and lineage columns');
SELECT is(
  (SELECT count(*) FROM pg_temp.peek('include-types', 'false') d, jsonb_array_elements(d->'columns') c
   WHERE c ? 'type'),
  0::bigint, 'include-types=false: no column type');
SELECT cmp_ok(
  (SELECT count(*) FROM pg_temp.peek() d, jsonb_array_elements(d->'columns') c WHERE c ? 'type'),
  '>', 0::bigint, 'include-types by default');
SELECT is(
  (SELECT count(*) FROM pg_temp.peek('include-lsn', 'false', 'include-xids', 'false', 'include-timestamp', 'false') d
   WHERE d ? 'lsn' OR d ? 'end_lsn' OR d ? 'xid' OR d ? 'timestamp'),
  0::bigint, 'include-lsn, include-xids, include-timestamp = false: none of them');
SELECT is(
  (SELECT count(*) FROM pg_temp.peek() d WHERE d->>'action' IN ('B', 'C') AND NOT (d ? 'lsn' AND d ? 'xid' AND d ? 'timestamp')),
  0::bigint, 'by default BEGIN and COMMIT carry lsn, xid and timestamp');
SELECT is(
  (SELECT count(*) FROM pg_temp.peek('include-tables', 'public.pgtap_dec') d WHERE d->>'xid' = :'other_xid'),
  0::bigint, 'skip-empty-xacts by default: a transaction with nothing selected is not sent');
SELECT is(
  (SELECT string_agg(d->>'action', ' ') FROM pg_temp.peek('include-tables', 'public.pgtap_dec', 'skip-empty-xacts', 'false') d
   WHERE d->>'xid' = :'other_xid'),
  'B C', 'skip-empty-xacts=false: its BEGIN and COMMIT are sent');

-- binary
SELECT is(
  (SELECT bool_and(get_byte(data, 0) = 1) FROM pg_logical_slot_peek_binary_changes('pgtap_decoder_options', NULL, NULL, 'format', 'binary')),
  true, 'binary: every message starts with version 1');
SELECT is(
  (SELECT chr(get_byte(data, 1)) FROM pg_logical_slot_peek_binary_changes('pgtap_decoder_options', NULL, NULL, 'format', 'binary') LIMIT 1),
  'B', 'binary: the first message is a BEGIN');

-- ---------------------------------------------------------------------
-- clean up
-- ---------------------------------------------------------------------
SELECT lives_ok(
  $$SELECT pg_drop_replication_slot('pgtap_decoder_options')$$,
  'the slot is dropped');
SELECT is(
  (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgtap_decoder_options'),
  0::bigint, 'no slot left');

SELECT * FROM finish();

DROP TABLE pgtap_dec, pgtap_other;
