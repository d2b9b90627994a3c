#!/usr/bin/env bash
# Hot keys: a steady stream of updates of one row (or a few), and how the
# engine deduplicates them.
#
#   test/bench/hot_keys.sh
#
# pgbench --rate=BENCH_RATE runs `UPDATE tb_counter SET value = value + 1,
# updated_at = clock_timestamp() WHERE pk_counter = :k` with k random in
# 1..BENCH_HOT_KEYS (default 1: one single row) for BENCH_SECONDS.  The
# TVIEW tv_counter carries value and updated_at in its document.  Measured:
#   - from the engine's status (pg_tviews_workers: batches, changes,
#     keys_refreshed; pg_tviews_metadata.rows_refreshed): refreshes per
#     batch (about 1 per hot key when deduplication works) and refreshes ÷
#     updates (the baseline without deduplication, one refresh per update,
#     is 1);
#   - the lag, sampled every BENCH_SAMPLE_MS (100) ms by a procedure that
#     reads the base row and the TVIEW row in one snapshot: how many
#     updates the TVIEW is behind (value) and by how much time
#     (updated_at of the base row minus that in the TVIEW): max, p99, p50.
# The TVIEW is checked against its definition at the end (a difference is a
# failure, exit 1).  Timings are printed, never asserted.
#
# Environment:
#   BENCH_SECONDS=30        duration of the workload
#   BENCH_RATE=1000         updates per second (pgbench --rate)
#   BENCH_HOT_KEYS=1        rows updated (random among 1..N)
#   BENCH_CLIENTS=4         pgbench clients
#   BENCH_SAMPLE_MS=100     lag sampling interval
#   BENCH_SYNC_COMMIT=off   synchronous_commit of the pgbench clients.  Updates
#                           of one row serialize on its row lock, so with
#                           synchronous commits the rate is bounded by the
#                           WAL flush latency (200-400 tps on this shared
#                           VM).  Asynchronous commits reach the disk (and
#                           so the engine, which reads flushed WAL) within
#                           wal_writer_delay, set to 10ms in this cluster.
#   BENCH_PORT=54363, BENCH_CLUSTER_DIR=/tmp/pgtv-bench-hot_keys, BENCH_KEEP=1
#
# A copy of the report goes to test/bench/out/hot_keys.txt.
set -euo pipefail
. "$(dirname "$0")/lib_engine.sh"

SECONDS_=${BENCH_SECONDS:-30}
RATE=${BENCH_RATE:-1000}
HOT=${BENCH_HOT_KEYS:-1}
CLIENTS=${BENCH_CLIENTS:-4}
SAMPLE_MS=${BENCH_SAMPLE_MS:-100}
SYNC=${BENCH_SYNC_COMMIT:-off}
for v in SECONDS_ RATE HOT CLIENTS SAMPLE_MS; do
	[[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || die "BENCH_${v%_} must be a positive integer"
done

bench_setup hot_keys 54363
bench_start "wal_writer_delay = 10ms"
BUILD=$(bench_build)

psql_b <<'SQL'
SET client_min_messages = warning;
CREATE TABLE tb_counter (
	pk_counter	bigint PRIMARY KEY,
	value		bigint NOT NULL,
	note		text NOT NULL,
	updated_at	timestamptz NOT NULL
);
INSERT INTO tb_counter
SELECT i, 0, 'counter ' || i, clock_timestamp() FROM generate_series(1, 1000) i;
SELECT pg_tviews_create('tv_counter', $q$
SELECT c.pk_counter,
       jsonb_build_object('id', c.pk_counter, 'value', c.value, 'note', c.note,
                          'updated_at', c.updated_at) AS data
  FROM tb_counter c $q$);

-- lag samples (unlogged: not decoded, no WAL)
CREATE UNLOGGED TABLE bench_lag (
	at			timestamptz NOT NULL,
	pk			bigint NOT NULL,
	behind		bigint NOT NULL,	-- updates not yet in the TVIEW
	lag			interval NOT NULL	-- base updated_at - TVIEW updated_at
);

-- Every interval_s for duration_s: for each hot row, the base row and its
-- TVIEW row read in one snapshot.  A COMMIT after each sample: no
-- snapshot is held between samples.
CREATE PROCEDURE bench_sample_lag(hot integer, duration_s float8, interval_s float8)
LANGUAGE plpgsql AS $$
DECLARE
	t_end		timestamptz := clock_timestamp() + duration_s * interval '1 s';
	next_at		timestamptz := clock_timestamp();
BEGIN
	WHILE clock_timestamp() < t_end LOOP
		INSERT INTO bench_lag
		SELECT clock_timestamp(), b.pk_counter,
			   b.value - (t.data->>'value')::bigint,
			   b.updated_at - (t.data->>'updated_at')::timestamptz
		  FROM tb_counter b JOIN tv_counter t USING (pk_counter)
		 WHERE b.pk_counter <= hot;
		COMMIT;
		next_at := next_at + interval_s * interval '1 s';
		PERFORM pg_sleep(greatest(0, extract(epoch FROM next_at - clock_timestamp())));
		COMMIT;
	END LOOP;
END
$$;
SQL
[ "$(sql_value "SELECT pg_tviews_wait('1 min')")" = t ] || die "the engine did not catch up after create"

WORK=$PGTV_CLUSTER_DIR/hot_update.sql
cat >"$WORK" <<SQL
\set k random(1, $HOT)
UPDATE tb_counter SET value = value + 1, updated_at = clock_timestamp() WHERE pk_counter = :k;
SQL

# counters before
IFS='|' read -r b0 c0 k0 <<<"$(sql_value "SELECT batches, changes, keys_refreshed FROM pg_tviews_workers
	WHERE worker_type = 'engine' AND database = current_database()")"
w0=$(sql_value "SELECT rows_refreshed FROM pg_tviews_metadata WHERE entity_name = 'tv_counter'")
v0=$(sql_value "SELECT sum(value) FROM tb_counter")
pid=$(engine_pid)
cpu0=$(proc_cpu_ticks "$pid")

log "pgbench: $RATE updates/s of $HOT row(s) for $SECONDS_ s, lag sampled every $SAMPLE_MS ms"
threads=$((CLIENTS < 2 ? CLIENTS : 2))
PGOPTIONS="-c synchronous_commit=$SYNC" pgbench_b -n -c "$CLIENTS" -j "$threads" -R "$RATE" -T "$SECONDS_" -f "$WORK" \
	>"$PGTV_CLUSTER_DIR/pgbench.out" 2>&1 &
pgbench_pid=$!
BENCH_BG_PIDS+=("$pgbench_pid")
psql_b -c "CALL bench_sample_lag($HOT, $SECONDS_, $SAMPLE_MS / 1000.0)"
wait "$pgbench_pid" || { cat "$PGTV_CLUSTER_DIR/pgbench.out" >&2; die "pgbench failed"; }
BENCH_BG_PIDS=()
cpu1=$(proc_cpu_ticks "$pid")
[ "$(sql_value "SELECT pg_tviews_wait('1 min')")" = t ] || { warn "pg_tviews_wait timed out"; BENCH_FAILED=1; }

IFS='|' read -r b1 c1 k1 <<<"$(sql_value "SELECT batches, changes, keys_refreshed FROM pg_tviews_workers
	WHERE worker_type = 'engine' AND database = current_database()")"
w1=$(sql_value "SELECT rows_refreshed FROM pg_tviews_metadata WHERE entity_name = 'tv_counter'")
v1=$(sql_value "SELECT sum(value) FROM tb_counter")
[ "$(engine_pid)" = "$pid" ] || { warn "the engine restarted"; BENCH_FAILED=1; }
if out=$(bench_oracle tv_counter); then ORACLE=ok; else ORACLE=FAILED; BENCH_FAILED=1; fi
log "$out"

UPDATES=$((v1 - v0))
BATCHES=$((b1 - b0)) CHANGES=$((c1 - c0)) KEYS=$((k1 - k0)) WRITTEN=$((w1 - w0))
LAG=$(sql_value "
	SELECT count(*),
	       round(max(extract(epoch FROM lag) * 1000)::numeric, 1),
	       round((percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM lag)) * 1000)::numeric, 1),
	       round((percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM lag)) * 1000)::numeric, 1),
	       round(avg(extract(epoch FROM lag) * 1000)::numeric, 1),
	       max(behind),
	       percentile_disc(0.99) WITHIN GROUP (ORDER BY behind),
	       percentile_disc(0.5) WITHIN GROUP (ORDER BY behind),
	       round(avg(behind), 1),
	       round(100.0 * count(*) FILTER (WHERE behind = 0) / greatest(count(*), 1), 1)
	  FROM bench_lag")
IFS='|' read -r nsamples lag_max lag_p99 lag_p50 lag_avg beh_max beh_p99 beh_p50 beh_avg fresh_pct <<<"$LAG"
tps=$(grep -E '^tps' "$PGTV_CLUSTER_DIR/pgbench.out" | head -1 | awk '{print $3}')
pg_lat=$(grep -E '^latency average' "$PGTV_CLUSTER_DIR/pgbench.out" | awk '{print $4, $5}')
pg_slag=$(grep -E '^rate limit schedule lag' "$PGTV_CLUSTER_DIR/pgbench.out" | sed 's/.*lag: //')
awk -v t="${tps:-0}" -v r="$RATE" 'BEGIN{exit !(t < 0.9 * r)}' &&
	warn "pgbench reached $tps tps of the $RATE asked for"

{
	echo "hot keys: pgbench --rate=$RATE, $CLIENTS clients, for $SECONDS_ s: UPDATE of one of $HOT row(s)" \
		"(value + 1, updated_at = clock_timestamp()); TVIEW tv_counter"
	echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $(sql_value 'SHOW server_version');" \
		"pg_tviews.poll_interval $(sql_value 'SHOW pg_tviews.poll_interval')"
	echo "build: $BUILD"
	echo "pgbench: synchronous_commit=$SYNC (wal_writer_delay $(sql_value 'SHOW wal_writer_delay')); tps $tps," \
		"latency $pg_lat, schedule lag $pg_slag"
	echo
	echo "updates committed (sum of value):   $UPDATES"
	echo "engine batches:                     $BATCHES"
	echo "engine changes decoded:             $CHANGES"
	echo "engine keys refreshed:              $KEYS"
	echo "rows written (rows_refreshed):      $WRITTEN"
	echo "engine cpu:                         $(awk -v a="$cpu0" -v b="$cpu1" -v t="$TICKS" 'BEGIN{printf "%.2f", (b - a) / t}') s" \
		"of $SECONDS_ s"
	echo
	echo "refreshes per batch (keys/batches):   $(ratio "$KEYS" "$BATCHES" 3) (expected about 1 per hot key: $HOT)"
	echo "changes per batch:                    $(ratio "$CHANGES" "$BATCHES" 1)"
	echo "refreshes / updates:                  $(ratio "$KEYS" "$UPDATES" 4)" \
		"(without deduplication: 1; rows written / updates: $(ratio "$WRITTEN" "$UPDATES" 4))"
	echo
	echo "lag, $nsamples samples every $SAMPLE_MS ms (base row vs TVIEW row, one snapshot):"
	echo "  time (base updated_at - TVIEW updated_at): max $lag_max ms, p99 $lag_p99 ms, p50 $lag_p50 ms, avg $lag_avg ms"
	echo "  updates behind: max $beh_max, p99 $beh_p99, p50 $beh_p50, avg $beh_avg; TVIEW current in $fresh_pct% of samples"
	echo "oracle: $ORACLE"
	bench_log_check
} | tee "$BENCH_REPORT"
log "report saved in ${BENCH_REPORT#"$BENCH_REPO"/}"
[ "$BENCH_FAILED" = 0 ] || { echo "hot_keys: FAILED (see above)" >&2; exit 1; }
