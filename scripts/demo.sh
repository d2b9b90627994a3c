#!/usr/bin/env bash
# The pg_tviews main job, for a newcomer on a fresh Debian 12 machine:
# installs what is missing, builds and installs the extension, starts a
# throwaway cluster (.cluster/, port 54329), creates a small FraiseQL-style
# schema, runs live writes, and shows what pg_tviews_decoder streams from
# the WAL -- as JSON, and as the engine's binary format rendered as JSON.
#
#   scripts/demo.sh            (also: make demo)
#   scripts/cluster.sh psql    to look around afterwards
#   scripts/cluster.sh destroy to throw the cluster away
#
# TVIEWs, the refresh engine and the status tables are not built yet; this
# demo shows the part that exists: the decoder.
. "$(dirname "$0")/lib.sh"

"$PGTV_REPO/scripts/install-deps.sh"
make -C "$PGTV_REPO" -s
$PGTV_SUDO make -C "$PGTV_REPO" -s install >/dev/null

CLUSTER="$PGTV_REPO/scripts/cluster.sh"
"$CLUSTER" start
psql_demo() { "$CLUSTER" psql -v ON_ERROR_STOP=1 -q "$@"; }

pgtv_log "sample schema"
psql_demo <<'SQL'
DROP TABLE IF EXISTS tb_comment, tb_post, tb_user;
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
 WHERE slot_name = 'demo_debug';
CREATE EXTENSION IF NOT EXISTS pg_tviews;
CREATE TABLE tb_user (pk_user bigint PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE tb_post (pk_post bigint PRIMARY KEY,
                      fk_user bigint NOT NULL REFERENCES tb_user,
                      title text NOT NULL, body text);
CREATE TABLE tb_comment (pk_comment bigint PRIMARY KEY,
                         fk_post bigint NOT NULL REFERENCES tb_post,
                         fk_user bigint REFERENCES tb_user, body text);
-- children need their lineage columns in the WAL for updates and deletes
ALTER TABLE tb_comment REPLICA IDENTITY FULL;
SELECT 'slot created: ' || slot_name
  FROM pg_create_logical_replication_slot('demo_debug', 'pg_tviews_decoder');
SQL

pgtv_log "live writes"
psql_demo <<'SQL'
INSERT INTO tb_user VALUES (1, 'Ada', 'ada@example.com'), (2, 'Linus', NULL);
INSERT INTO tb_post VALUES (10, 1, 'Hello "WAL"', 'first post'), (11, 2, 'Second', 'ü ✓');
INSERT INTO tb_comment SELECT g, 10 + g % 2, 1 + g % 2, 'comment ' || g FROM generate_series(1, 4) g;
BEGIN;
UPDATE tb_post SET title = 'Hello, decoder' WHERE pk_post = 10;
UPDATE tb_comment SET fk_post = 11 WHERE pk_comment = 2;   -- moves between parents
DELETE FROM tb_comment WHERE pk_comment = 4;
COMMIT;
BEGIN; INSERT INTO tb_user VALUES (3, 'never', NULL); ROLLBACK;  -- aborted: not decoded
SELECT pg_logical_emit_message(true, 'pg_tviews.demo', 'a transactional message');
SQL

pgtv_log "what the decoder streams for tb_post and tb_comment (json format)"
psql_demo -c "SELECT data AS json FROM pg_logical_slot_peek_changes('demo_debug', NULL, NULL,
  'include-tables', 'public.tb_post,public.tb_comment', 'include-timestamp', 'false')"

pgtv_log "the same changes in the engine's binary format, rendered back as JSON"
psql_demo -c "SELECT count(*) AS binary_messages, sum(length(data)) AS binary_bytes
  FROM pg_logical_slot_peek_binary_changes('demo_debug', NULL, NULL, 'format', 'binary',
       'include-tables', 'public.tb_post,public.tb_comment')"
psql_demo -c "SELECT pg_tviews_wire_to_json(array_agg(data ORDER BY n)) AS from_binary
  FROM pg_logical_slot_peek_binary_changes('demo_debug', NULL, NULL, 'format', 'binary',
       'include-tables', 'public.tb_post,public.tb_comment', 'columns', 'key')
       WITH ORDINALITY AS m(lsn, xid, data, n)"

pgtv_log "slot state"
psql_demo -c "SELECT slot_name, plugin, active, confirmed_flush_lsn,
  pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)) AS lag
  FROM pg_replication_slots"

eval "$("$CLUSTER" env)"
cat <<MSG

The cluster keeps running.  Try:
  scripts/cluster.sh psql
  $(pgtv_bindir)/pg_recvlogical -h $PGHOST -p $PGPORT -U $PGUSER -d $PGDATABASE \\
      --slot demo_debug --start -f - -o include-tables=public.*
  scripts/cluster.sh destroy
MSG
