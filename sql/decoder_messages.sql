--
-- Logical messages (pg_logical_emit_message): transactional ones inside
-- their transaction, non-transactional ones on their own; text content as
-- "content", anything that is not valid text as "content_hex".
--
SELECT 'init' FROM pg_create_logical_replication_slot('msgs', 'pg_tviews_decoder');

CREATE TABLE msg_t (id int PRIMARY KEY);

-- transactional, alone and next to a change
SELECT 'emitted' FROM pg_logical_emit_message(true, 'app', 'hello');
BEGIN;
INSERT INTO msg_t VALUES (1);
SELECT 'emitted' FROM pg_logical_emit_message(true, 'app', 'after the insert');
INSERT INTO msg_t VALUES (2);
COMMIT;
-- non-transactional: on its own, even when emitted inside a transaction,
-- and before that transaction's lines
SELECT 'emitted' FROM pg_logical_emit_message(false, 'app', 'outside');
BEGIN;
INSERT INTO msg_t VALUES (3);
SELECT 'emitted' FROM pg_logical_emit_message(false, 'app', 'inside, not transactional');
COMMIT;
SELECT * FROM decode('msgs');

-- content: text that needs escaping, an empty message, an empty prefix,
-- bytea that is valid UTF-8, invalid UTF-8, and a NUL byte
SELECT 'emitted' FROM pg_logical_emit_message(true, 'app', E'quote " backslash \\ newline \n tab \t é 😀');
SELECT 'emitted' FROM pg_logical_emit_message(true, 'app', '');
SELECT 'emitted' FROM pg_logical_emit_message(true, '', 'empty prefix');
SELECT 'emitted' FROM pg_logical_emit_message(true, E'pre"fix\\', 'odd prefix');
SELECT 'emitted' FROM pg_logical_emit_message(true, 'bin', '\x68c3a9'::bytea);
SELECT 'emitted' FROM pg_logical_emit_message(true, 'bin', '\xff00fe'::bytea);
SELECT 'emitted' FROM pg_logical_emit_message(true, 'bin', '\x61006200'::bytea);
SELECT 'emitted' FROM pg_logical_emit_message(false, 'bin', '\xc3'::bytea);
SELECT 'emitted' FROM pg_logical_emit_message(true, 'bin', '\x'::bytea);
SELECT * FROM peek('msgs');
-- the content reads back as written
SELECT j->>'prefix' AS prefix,
       coalesce(convert_to(j->>'content', 'UTF8'), decode(j->>'content_hex', 'hex')) AS bytes
FROM (SELECT data::jsonb AS j FROM pg_logical_slot_get_changes('msgs', NULL, NULL)) l
WHERE j->>'action' = 'M';

-- message-prefixes: exact prefixes, a list, an escaped comma
SELECT 'emitted' FROM pg_logical_emit_message(true, 'keep', 'kept');
SELECT 'emitted' FROM pg_logical_emit_message(false, 'keep', 'kept, not transactional');
SELECT 'emitted' FROM pg_logical_emit_message(true, 'keeper', 'not an exact match');
SELECT 'emitted' FROM pg_logical_emit_message(true, 'drop', 'dropped');
SELECT 'emitted' FROM pg_logical_emit_message(true, 'a,b', 'prefix with a comma');
SELECT * FROM peek('msgs', 'message-prefixes', 'keep');
SELECT * FROM peek('msgs', 'message-prefixes', 'keep, drop');
SELECT * FROM peek('msgs', 'message-prefixes', 'a\,b');

-- actions without message: none at all (a transaction holding only
-- messages then has nothing to emit)
BEGIN;
INSERT INTO msg_t VALUES (4);
SELECT 'emitted' FROM pg_logical_emit_message(true, 'keep', 'beside a change');
COMMIT;
SELECT * FROM peek('msgs', 'actions', 'insert,update,delete,truncate');
SELECT * FROM decode('msgs', 'actions', 'message');

-- in an aborted transaction: the transactional message is gone, the
-- non-transactional one is there
BEGIN;
SELECT 'emitted' FROM pg_logical_emit_message(true, 'app', 'transactional, aborted');
SELECT 'emitted' FROM pg_logical_emit_message(false, 'app', 'not transactional, aborted');
INSERT INTO msg_t VALUES (5);
ROLLBACK;
-- (neither a non-transactional message nor an abort flushes the WAL, and
-- decoding reads only flushed WAL: the commit of a catalog change, which
-- itself gives no line, flushes it)
COMMENT ON TABLE msg_t IS 'flush';
SELECT * FROM decode('msgs');

-- xid: only transactional messages carry one; lsn: all do
SELECT 'emitted' FROM pg_logical_emit_message(true, 'app', 'x');
SELECT 'emitted' FROM pg_logical_emit_message(false, 'app', 'y');
COMMENT ON TABLE msg_t IS 'flush again';
SELECT j->>'content' AS content, j ? 'xid' AS xid, j ? 'lsn' AS lsn
FROM (SELECT data::jsonb AS j FROM pg_logical_slot_get_changes('msgs', NULL, NULL)) l
WHERE j->>'action' = 'M';

SELECT pg_drop_replication_slot('msgs');
DROP TABLE msg_t;
