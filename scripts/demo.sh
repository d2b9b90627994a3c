#!/usr/bin/env bash
# The pg_tviews main job, for a newcomer on a fresh Debian 12 machine:
# installs what is missing, builds and installs the extension, starts a
# new throwaway cluster (.cluster/, port 54329; an earlier one is
# destroyed), creates a FraiseQL-style
# schema with TVIEWs, runs live writes from two concurrent clients, and
# shows the TVIEWs before and after, the status tables (engine state, lag,
# queue, health), and what the decoder streams.
#
#   scripts/demo.sh            (also: make demo)
#   scripts/cluster.sh psql    to look around afterwards
#   scripts/cluster.sh destroy to throw the cluster away
. "$(dirname "$0")/lib.sh"

"$PGTV_REPO/scripts/install-deps.sh"
make -C "$PGTV_REPO" -s
$PGTV_SUDO make -C "$PGTV_REPO" -s install >/dev/null

CLUSTER="$PGTV_REPO/scripts/cluster.sh"
# a fresh throwaway cluster, running the library just installed
"$CLUSTER" destroy
"$CLUSTER" start
psql_demo() { "$CLUSTER" psql -v ON_ERROR_STOP=1 -q "$@"; }

pgtv_log "sample schema and TVIEWs"
psql_demo <<'SQL'
CREATE EXTENSION pg_tviews;

CREATE TABLE tb_user (pk_user bigint PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE tb_post (pk_post bigint PRIMARY KEY,
                      fk_user bigint NOT NULL REFERENCES tb_user,
                      title text NOT NULL, body text);
CREATE TABLE tb_comment (pk_comment bigint PRIMARY KEY,
                         fk_post bigint NOT NULL REFERENCES tb_post ON DELETE CASCADE,
                         fk_user bigint REFERENCES tb_user, body text);
INSERT INTO tb_user SELECT g, 'user ' || g, 'u' || g || '@example.com' FROM generate_series(1, 100) g;
INSERT INTO tb_post SELECT g, 1 + g % 100, 'post ' || g, 'body of ' || g FROM generate_series(1, 1000) g;
INSERT INTO tb_comment SELECT g, 1 + g % 1000, 1 + g % 100, 'comment ' || g FROM generate_series(1, 5000) g;

-- a read model: post, its author, its comments
SELECT pg_tviews_create('tv_post', $$
  SELECT p.pk_post, p.fk_user,
         jsonb_build_object(
           'title', p.title,
           'author', jsonb_build_object('id', u.pk_user, 'name', u.name),
           'comments', coalesce((SELECT jsonb_agg(jsonb_build_object('id', c.pk_comment, 'body', c.body)
                                                  ORDER BY c.pk_comment)
                                 FROM tb_comment c WHERE c.fk_post = p.pk_post), '[]')) AS data
  FROM tb_post p JOIN tb_user u ON u.pk_user = p.fk_user $$);

-- the convention: CREATE TABLE tv_... AS SELECT makes a TVIEW too
CREATE TABLE tv_user_stats AS
  SELECT u.pk_user, count(p.pk_post) AS posts
  FROM tb_user u LEFT JOIN tb_post p ON p.fk_user = u.pk_user
  GROUP BY u.pk_user;

-- a debugging slot of our own, to show the decoder (never use the engine's)
SELECT 'debug slot: ' || slot_name
  FROM pg_create_logical_replication_slot('demo_debug', 'pg_tviews_decoder');
SQL

pgtv_log "how each base table maps to TVIEW rows (lineage)"
psql_demo -c "SELECT tview, source, rule, source_column, tview_column FROM tviews.source ORDER BY 1, 2::text"

pgtv_log "before: post 42 and user 7's stats"
psql_demo -c "SELECT pk_post, jsonb_pretty(data) AS data FROM tv_post WHERE pk_post = 42"
psql_demo -c "SELECT * FROM tv_user_stats WHERE pk_user = 7"

pgtv_log "live writes: two clients, 2000 transactions"
writer() {
	local seed=$1
	for i in $(seq 1 1000); do
		case $(( (i + seed) % 5 )) in
			0) echo "UPDATE tb_user SET name = 'user $(( i % 100 + 1 )) v$i' WHERE pk_user = $(( i % 100 + 1 ));" ;;
			1) echo "INSERT INTO tb_comment VALUES ($(( 100000 * seed + i )), $(( (i * 7) % 1000 + 1 )), $(( i % 100 + 1 )), 'live $i');" ;;
			2) echo "UPDATE tb_comment SET fk_post = $(( (i * 13) % 1000 + 1 )) WHERE pk_comment = $(( (i * 31 + seed) % 5000 + 1 ));" ;;
			3) echo "UPDATE tb_post SET title = 'post v$i', fk_user = $(( i % 100 + 1 )) WHERE pk_post = $(( (i * 17) % 1000 + 1 ));" ;;
			4) echo "DELETE FROM tb_comment WHERE pk_comment = $(( (i * 37 + seed) % 5000 + 1 ));" ;;
		esac
	done
}
start=$(date +%s.%N)
writer 1 | psql_demo >/dev/null &
writer 2 | psql_demo >/dev/null &
wait
end=$(date +%s.%N)
echo "2000 transactions in $(echo "$end - $start" | bc 2>/dev/null || echo '?') s"

pgtv_log "read-your-writes: pg_tviews_wait() returns once everything committed is applied"
psql_demo -c "SELECT pg_tviews_wait('60s') AS caught_up"

pgtv_log "after: post 42 and user 7's stats"
psql_demo -c "SELECT pk_post, jsonb_pretty(data) AS data FROM tv_post WHERE pk_post = 42"
psql_demo -c "SELECT * FROM tv_user_stats WHERE pk_user = 7"

pgtv_log "every TVIEW equals its definition (rows differing, both ways)"
psql_demo -c "SELECT 'tv_post' AS tview, count(*) AS mismatches FROM
  ((SELECT * FROM tv_post EXCEPT ALL SELECT * FROM tv_post_def)
   UNION ALL (SELECT * FROM tv_post_def EXCEPT ALL SELECT * FROM tv_post)) d
  UNION ALL
  SELECT 'tv_user_stats', count(*) FROM
  ((SELECT * FROM tv_user_stats EXCEPT ALL SELECT * FROM tv_user_stats_def)
   UNION ALL (SELECT * FROM tv_user_stats_def EXCEPT ALL SELECT * FROM tv_user_stats)) d"

pgtv_log "status tables: TVIEWs, the engine, its slot and lag, the health check"
psql_demo -c "SELECT entity_name, state, rows_refreshed, full_refreshes, pending_count,
  last_refresh_duration_ms, last_error FROM pg_tviews_metadata ORDER BY 1"
psql_demo -c "SELECT worker_type, database, state, restarts, batches, changes, keys_refreshed
  FROM pg_tviews_workers ORDER BY 1"
psql_demo -c "SELECT slot_name, active, lag_bytes, lag_seconds, wal_status FROM pg_tviews_slots"
psql_demo -c "SELECT entity_name, status, count(*) FROM pg_tviews_queue GROUP BY 1, 2 ORDER BY 1, 2"
psql_demo -c "SELECT * FROM pg_tviews_health_check()"

pgtv_log "what the decoder streams (first lines, our own debug slot)"
psql_demo -c "SELECT data FROM pg_logical_slot_peek_changes('demo_debug', NULL, 6,
  'include-tables', 'public.tb_*', 'include-timestamp', 'false')"
psql_demo -c "SELECT pg_drop_replication_slot('demo_debug')" >/dev/null

eval "$("$CLUSTER" env)"
cat <<MSG

The cluster keeps running (port $PGPORT).  Try:
  scripts/cluster.sh psql
      UPDATE tb_user SET name = 'Ada' WHERE pk_user = 1;
      SELECT pg_tviews_wait();
      SELECT data->'author' FROM tv_post WHERE fk_user = 1 LIMIT 1;
  scripts/cluster.sh destroy
MSG
