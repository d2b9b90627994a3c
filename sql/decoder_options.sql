--
-- Option validation: every option is checked when decoding starts; an
-- unknown option or a bad value is an ERROR (SQLSTATE 22023) with a hint,
-- and the slot is left as it was.
--
SELECT 'init' FROM pg_create_logical_replication_slot('opts', 'pg_tviews_decoder');
CREATE TABLE opt_t (id int PRIMARY KEY, fk int, v text);
INSERT INTO opt_t VALUES (1, 10, 'one');

-- the SQLSTATE, for each kind of error
\set VERBOSITY sqlstate
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'no-such-option', '1');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'format', 'xml');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'actions', '');
\set VERBOSITY default

-- unknown options (names are case-sensitive)
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'no-such-option', '1');
\set VERBOSITY terse
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'Format', 'json');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'include_xids', '1');
\set VERBOSITY default

-- format
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'format', 'xml');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'format', 'JSON');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'format', '');

-- binary-version: only 1
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'binary-version', '2');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'binary-version', '0');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'binary-version', 'one');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'binary-version', '1x');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'binary-version', '');
SELECT data FROM pg_logical_slot_peek_binary_changes('opts', NULL, NULL,
  'format', 'binary', 'binary-version', '2');

-- include-tables, exclude-tables: schema.table patterns
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'include-tables', 'opt_t');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'include-tables', '.opt_t');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'include-tables', 'public.');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'include-tables', 'public.a,,public.b');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'include-tables', 'public\.opt_t');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'exclude-tables', 'public.t, x');

-- actions
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'actions', 'insert,upsert');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'actions', '');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'actions', ',');

-- message-prefixes
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'message-prefixes', '');

-- columns, lineage-columns
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'columns', 'some');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'columns', 'KEY');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'lineage-columns', 'public.opt_t');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'lineage-columns', 'public..fk');

-- booleans
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'only-local', 'maybe');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'skip-empty-xacts', 'yes please');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'include-xids', '2');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'include-timestamp', '');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'include-lsn', 'nope');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'include-types', 'x');
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'stream-changes', 'on!');

-- options given without a value: the SQL functions do not allow that,
-- the replication protocol does (pg_recvlogical -o name): fine for a
-- boolean (it means true), an error for the others
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'format', NULL);
SELECT pg_current_wal_lsn() AS endpos \gset
\setenv PGTV_ENDPOS :endpos
\setenv PGDATABASE :DBNAME
\! timeout 60 pg_recvlogical -d "$PGDATABASE" --slot opts --start --no-loop -f - -E "$PGTV_ENDPOS" -o format 2>&1
\! timeout 60 pg_recvlogical -d "$PGDATABASE" --slot opts --start --no-loop -f - -E "$PGTV_ENDPOS" -o binary-version 2>&1
\! timeout 60 pg_recvlogical -d "$PGDATABASE" --slot opts --start --no-loop -f - -E "$PGTV_ENDPOS" -o include-tables 2>&1
\! timeout 60 pg_recvlogical -d "$PGDATABASE" --slot opts --start --no-loop -f - -E "$PGTV_ENDPOS" -o exclude-tables 2>&1
\! timeout 60 pg_recvlogical -d "$PGDATABASE" --slot opts --start --no-loop -f - -E "$PGTV_ENDPOS" -o actions 2>&1
\! timeout 60 pg_recvlogical -d "$PGDATABASE" --slot opts --start --no-loop -f - -E "$PGTV_ENDPOS" -o message-prefixes 2>&1
\! timeout 60 pg_recvlogical -d "$PGDATABASE" --slot opts --start --no-loop -f - -E "$PGTV_ENDPOS" -o columns 2>&1
\! timeout 60 pg_recvlogical -d "$PGDATABASE" --slot opts --start --no-loop -f - -E "$PGTV_ENDPOS" -o lineage-columns 2>&1
-- bare booleans: include-types and skip-empty-xacts on, include-xids off
-- (this consumes the slot up to here)
\! timeout 60 pg_recvlogical -d "$PGDATABASE" --slot opts --start --no-loop -f - -E "$PGTV_ENDPOS" -o include-xids=0 -o include-lsn=0 -o include-timestamp=0 -o include-types=off -o include-types -o skip-empty-xacts -o only-local 2>&1 | sed 's/"relid":[0-9]*/"relid":*/'
SELECT count(*) FROM pg_logical_slot_peek_changes('opts', NULL, NULL);
INSERT INTO opt_t VALUES (2, 20, 'two');

-- the first bad option of several is reported
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL,
  'include-xids', '0', 'actions', 'insert', 'format', 'yaml', 'bogus', '1');

-- the binary format needs the binary variant of the SQL functions
-- (these errors are raised after the plugin's startup: see
-- decoder_known_bugs.sql, part 5; the decoding right after them keeps the
-- backend safe)
SELECT data FROM pg_logical_slot_peek_changes('opts', NULL, NULL, 'format', 'binary');
SELECT data FROM pg_logical_slot_get_changes('opts', NULL, NULL, 'format', 'binary');
-- none of this consumed anything
SELECT count(*) FROM pg_logical_slot_peek_changes('opts', NULL, NULL);

-- valid options of each kind
SELECT * FROM peek('opts', 'format', 'json', 'binary-version', '1');
SELECT count(*) AS binary_messages,
       bool_and(get_byte(data, 0) = 1) AS version_1
FROM pg_logical_slot_peek_binary_changes('opts', NULL, NULL,
       'format', 'binary', 'binary-version', '1');
SELECT * FROM peek('opts', 'include-tables', 'public.opt_t, public.other',
                   'exclude-tables', 'other.*');
SELECT * FROM peek('opts', 'include-tables', 'public.nothing_here');
SELECT * FROM peek('opts', 'actions', 'Insert, DELETE', 'message-prefixes', 'a,b\,c');
SELECT * FROM peek('opts', 'actions', 'update');
SELECT * FROM peek('opts', 'columns', 'key', 'lineage-columns', 'public.opt_t.fk');
SELECT * FROM peek('opts', 'columns', 'all', 'include-types', 'off');
-- booleans: the spellings PostgreSQL accepts
SELECT * FROM peek('opts', 'only-local', 'true', 'skip-empty-xacts', 'on',
                   'stream-changes', 'yes', 'include-types', 'FALSE');
SELECT * FROM peek('opts', 'only-local', 'off', 'skip-empty-xacts', 't',
                   'stream-changes', 'n', 'include-types', '0');
-- a later occurrence of an option wins
SELECT * FROM peek('opts', 'include-types', 'false', 'include-types', 'true',
                   'actions', 'delete', 'actions', 'insert');

SELECT pg_drop_replication_slot('opts');
DROP TABLE opt_t;
