#!/usr/bin/env bash
# Incremental versus full refresh: one changed row seen in a TVIEW, against
# REFRESH MATERIALIZED VIEW of the same query.
#
#   test/bench/incremental.sh
#
# A BENCH_ROWS-row table tb_item, a TVIEW tv_item and a materialized view
# mv_item of the same jsonb_build_object query.
#   full         REFRESH MATERIALIZED VIEW mv_item, BENCH_RUNS times (median)
#   incremental  BENCH_REPS times: update one random row, COMMIT, then poll
#                its TVIEW row (a tight loop of index lookups, each with a
#                new snapshot) until the new value is visible: commit-to-
#                visible time (median).  The engine is not woken: this is
#                what any reader sees.
#   wait         the same, but with pg_tviews_wait() after the COMMIT
#                (read-your-writes; pg_tviews_wait wakes the engine)
# Both run inside the server (plpgsql procedures), timed with
# clock_timestamp().  Printed: the ratio incremental ÷ full (target <=
# 0.001); never asserted.  The TVIEW is checked against its definition at
# the end (a difference is a failure, exit 1).
#
# Environment:
#   BENCH_ROWS=1000000      rows of tb_item
#   BENCH_RUNS=3            REFRESH MATERIALIZED VIEW runs
#   BENCH_REPS=21           single-row updates per incremental mode
#   BENCH_PORT=54362, BENCH_CLUSTER_DIR=/tmp/pgtv-bench-incremental, BENCH_KEEP=1
#
# A copy of the report goes to test/bench/out/incremental.txt.
set -euo pipefail
. "$(dirname "$0")/lib_engine.sh"

ROWS=${BENCH_ROWS:-1000000}
RUNS=${BENCH_RUNS:-3}
REPS=${BENCH_REPS:-21}
for v in ROWS RUNS REPS; do
	[[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || die "BENCH_$v must be a positive integer"
done

bench_setup incremental 54362
bench_start "autovacuum = off"
BUILD=$(bench_build)

log "loading $ROWS rows, creating the TVIEW and the materialized view"
QUERY="SELECT i.pk_item,
       jsonb_build_object('id', i.pk_item, 'name', i.name, 'qty', i.qty,
                          'price', i.price, 'tags', i.tags,
                          'updated_at', i.updated_at) AS data
  FROM tb_item i"
psql_b <<SQL
SET client_min_messages = warning;
$(tb_item_sql "$ROWS")
VACUUM ANALYZE tb_item;
SELECT pg_tviews_create('tv_item', \$q\$$QUERY\$q\$);
CREATE MATERIALIZED VIEW mv_item AS $QUERY;
VACUUM ANALYZE;
CHECKPOINT;

-- One row changed, then the time until the TVIEW shows it: polled (mode
-- 'poll') or with pg_tviews_wait() (mode 'wait').  Returns per repetition
-- the commit-to-visible seconds, the COMMIT's own seconds and the
-- engine's last_refresh_duration_ms after it.
CREATE PROCEDURE bench_incremental(mode text, reps integer, nrows bigint,
								   INOUT visible float8[] DEFAULT '{}',
								   INOUT commit_s float8[] DEFAULT '{}',
								   INOUT engine_ms float8[] DEFAULT '{}',
								   INOUT polls bigint DEFAULT 0)
LANGUAGE plpgsql AS \$\$
DECLARE
	k			bigint;
	want		integer;
	seen		integer;
	tc			timestamptz;
	t0			timestamptz;
BEGIN
	FOR r IN 1 .. reps LOOP
		-- out of step with the engine's poll interval
		PERFORM pg_sleep(0.02 + random() * 0.05);
		COMMIT;
		k := 1 + floor(random() * nrows)::bigint;
		UPDATE tb_item SET qty = qty + 1, updated_at = clock_timestamp()
		 WHERE pk_item = k RETURNING qty INTO want;
		tc := clock_timestamp();
		COMMIT;
		t0 := clock_timestamp();
		IF mode = 'wait' THEN
			IF NOT pg_tviews_wait('60 s') THEN
				RAISE EXCEPTION 'pg_tviews_wait timed out';
			END IF;
		END IF;
		LOOP
			SELECT (data->>'qty')::integer INTO seen FROM tv_item WHERE pk_item = k;
			polls := polls + 1;
			EXIT WHEN seen = want;
			IF clock_timestamp() - t0 > interval '60 s' THEN
				RAISE EXCEPTION 'row % not visible after 60 s', k;
			END IF;
		END LOOP;
		visible := visible || extract(epoch FROM clock_timestamp() - t0)::float8;
		commit_s := commit_s || extract(epoch FROM t0 - tc)::float8;
		engine_ms := engine_ms || (SELECT last_refresh_duration_ms::float8 FROM tviews.tview
									WHERE tview = 'tv_item'::regclass);
		COMMIT;
	END LOOP;
END
\$\$;
SQL
[ "$(sql_value "SELECT pg_tviews_wait('5 min')")" = t ] || die "the engine did not catch up after create"

# ---- full: REFRESH MATERIALIZED VIEW ----
full=() fullcpu=()
for ((r = 0; r < RUNS; r++)); do
	IFS='|' read -r s c <<<"$(sql_value "SELECT seconds, cpu_seconds FROM bench_timed(
		'REFRESH MATERIALIZED VIEW mv_item', $TICKS)")"
	full+=("$s") fullcpu+=("$c")
	log "REFRESH MATERIALIZED VIEW run $((r + 1))/$RUNS: $s s (cpu $c s)"
	psql_b -c "CHECKPOINT"
done
FULL=$(median "${full[*]}")
# A REFRESH MATERIALIZED VIEW writes the whole view to the WAL; the engine
# decodes it (and drops it: mv_item is not tracked) before it sees later
# commits.  Let it get through that first.
t0=$(now_s)
[ "$(sql_value "SELECT pg_tviews_wait('5 min')")" = t ] || die "the engine did not catch up after the full refreshes"
MV_DECODE=$(elapsed "$t0" "$(now_s)")
log "the engine went through the WAL of the full refreshes in $MV_DECODE s"

# ---- incremental ----
IFS='|' read -r b0 c0 k0 rs0 <<<"$(engine_counters)"
declare -A VIS COMMIT ENG POLLS
for mode in poll wait; do
	log "incremental ($mode): $REPS single-row updates"
	out=$(sql_value "CALL bench_incremental('$mode', $REPS, $ROWS)")
	IFS='|' read -r v c e p <<<"$out"
	VIS[$mode]=$(tr -d '{}' <<<"$v" | tr ',' ' ')
	COMMIT[$mode]=$(tr -d '{}' <<<"$c" | tr ',' ' ')
	ENG[$mode]=$(tr -d '{}' <<<"$e" | tr ',' ' ')
	POLLS[$mode]=$p
done
IFS='|' read -r b1 c1 k1 rs1 <<<"$(engine_counters)"
[ "$rs1" = "$rs0" ] || { warn "the engine restarted"; BENCH_FAILED=1; }

# ---- oracle ----
if out=$(bench_oracle tv_item); then ORACLE=ok; else ORACLE=FAILED; BENCH_FAILED=1; fi
log "$out"

# ---- report ----
ms() { awk -v s="$1" 'BEGIN{ if (s == "n/a") print s; else printf "%.2f", s * 1000 }'; }
pctl() {	# pctl "values" p: the p-th percentile (nearest rank)
	tr ' ' '\n' <<<"$1" | grep . | sort -g |
		awk -v p="$2" '{v[NR]=$1} END{i = int((p / 100) * NR + 0.999999); if (i < 1) i = 1; printf "%.6g", v[i]}'
}
{
	echo "incremental vs full: $ROWS-row table, TVIEW tv_item and MATERIALIZED VIEW mv_item of the same" \
		"jsonb_build_object query"
	echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $(sql_value 'SHOW server_version');" \
		"pg_tviews.poll_interval $(sql_value 'SHOW pg_tviews.poll_interval')"
	echo "build: $BUILD"
	echo
	echo "full: REFRESH MATERIALIZED VIEW mv_item, $RUNS runs: wall ${full[*]} s, cpu ${fullcpu[*]} s"
	echo "      median $(printf '%.3f' "$FULL") s; the engine then took $MV_DECODE s to get through their WAL" \
		"(pg_tviews_wait after the last one)"
	for mode in poll wait; do
		case $mode in
			poll) what="update one row, COMMIT, poll the TVIEW row until the new value shows" ;;
			wait) what="update one row, COMMIT, pg_tviews_wait(), read the row" ;;
		esac
		echo "incremental ($mode): $what; $REPS reps"
		echo "      commit-to-visible ms: $(for x in ${VIS[$mode]}; do printf '%s ' "$(ms "$x")"; done)"
		echo "      median $(ms "$(median "${VIS[$mode]}")") ms, min $(ms "$(pctl "${VIS[$mode]}" 0)")," \
			"p90 $(ms "$(pctl "${VIS[$mode]}" 90)"), max $(ms "$(pctl "${VIS[$mode]}" 100)") ms;" \
			"COMMIT itself: median $(ms "$(median "${COMMIT[$mode]}")") ms;" \
			"engine refresh (last_refresh_duration_ms): median $(median "${ENG[$mode]}") ms;" \
			"${POLLS[$mode]} polls"
	done
	echo "engine: $((b1 - b0)) batches, $((c1 - c0)) changes, $((k1 - k0)) keys refreshed for $((2 * REPS)) updates"
	echo "oracle: $ORACLE"
	echo
	printf '%-22s %12s %12s %12s\n' mode median_ms full_ms ratio
	for mode in poll wait; do
		m=$(median "${VIS[$mode]}")
		printf '%-22s %12s %12s %12s\n' "incremental ($mode)" "$(ms "$m")" "$(ms "$FULL")" "$(ratio "$m" "$FULL" 5)"
	done
	echo
	echo "incremental/full ratio: $(ratio "$(median "${VIS[poll]}")" "$FULL" 5) (target <= 0.001)" \
		"(with pg_tviews_wait: $(ratio "$(median "${VIS[wait]}")" "$FULL" 5))"
	bench_log_check
} | tee "$BENCH_REPORT"
log "report saved in ${BENCH_REPORT#"$BENCH_REPO"/}"
[ "$BENCH_FAILED" = 0 ] || { echo "incremental: FAILED (see above)" >&2; exit 1; }
