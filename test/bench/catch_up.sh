#!/usr/bin/env bash
# Catch-up benchmark of the pg_tviews engine: how fast does a paused
# engine work off a backlog of committed changes?
#
#   test/bench/catch_up.sh
#
# For each TVIEW shape, measured separately (only that TVIEW exists):
#   single  tv_item:   jsonb_build_object over one table (tb_item)
#   join    tv_child:  a child row with its parent as an object
#                      (tb_child JOIN tb_parent)
#   agg     tv_parent: a parent with the jsonb_agg array of its children
#                      (changes are to the children: BENCH_CHILDREN
#                      changes per refreshed parent)
# the engine is paused (pg_tviews_system_disable), BENCH_CHANGES row
# updates of distinct rows are committed in transactions of BENCH_TXN rows,
# the engine is resumed (pg_tviews_system_enable) and the time until
# pg_tviews_wait() returns is the drain time.  Then the TVIEW is checked
# against its definition (EXCEPT ALL both ways: a difference is a failure,
# exit 1), and the baseline computes the same rows with a plain
# CREATE TABLE AS SELECT * FROM <tview>_def (BENCH_RUNS times, median).
# Printed: refreshed rows per second and the ratio catch-up rows/s ÷
# baseline rows/s; never asserted.
#
# Profile of the engine during each drain: perf record (when perf works
# here) and pg_stat_statements (track = all: the engine's SPI statements);
# summary in test/bench/out/catch_up-profile.txt.
#
# Environment:
#   BENCH_CHANGES=1000000   updates per shape
#   BENCH_TXN=10000         rows per transaction
#   BENCH_ROWS=             rows of tb_item and tb_child (default BENCH_CHANGES)
#   BENCH_CHILDREN=10       children per parent (tb_parent has ROWS/CHILDREN)
#   BENCH_SHAPES="single join agg"
#   BENCH_RUNS=3            baseline runs (median)
#   BENCH_PROFILE=1         perf record of the engine during the drains (0: off)
#   BENCH_PERF_FREQ=250     perf sampling frequency (Hz)
#   BENCH_PGSS=1            pg_stat_statements in the cluster (0: off)
#   BENCH_EXPLAIN=1         EXPLAIN ANALYZE of one batch's refresh statement
#                           into the profile (0: off)
#   BENCH_PORT=54361, BENCH_CLUSTER_DIR=/tmp/pgtv-bench-catch_up, BENCH_KEEP=1
#
# Runs as root (the server then runs as postgres) or as a normal user
# (sudo for perf).  A copy of the report goes to test/bench/out/catch_up.txt.
set -euo pipefail
. "$(dirname "$0")/lib_engine.sh"

CHANGES=${BENCH_CHANGES:-1000000}
TXN=${BENCH_TXN:-10000}
ROWS=${BENCH_ROWS:-$CHANGES}
CHILDREN=${BENCH_CHILDREN:-10}
SHAPES=${BENCH_SHAPES:-single join agg}
RUNS=${BENCH_RUNS:-3}
PROFILE=${BENCH_PROFILE:-1}
PGSS=${BENCH_PGSS:-1}
EXPLAIN=${BENCH_EXPLAIN:-1}
for v in CHANGES TXN ROWS CHILDREN RUNS; do
	[[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || die "BENCH_$v must be a positive integer"
done
[ "$CHANGES" -le "$ROWS" ] || die "BENCH_CHANGES ($CHANGES) must not exceed BENCH_ROWS ($ROWS)"
PARENTS=$(((ROWS + CHILDREN - 1) / CHILDREN))

bench_setup catch_up 54361
PROFILE_OUT=$BENCH_OUT/catch_up-profile.txt

if [ "$PROFILE" = 1 ] && ! bench_perf_init; then
	warn "perf does not work here: profiling with pg_stat_statements only"
	PROFILE=0
fi

conf=()
if [ "$PGSS" = 1 ]; then
	conf+=("shared_preload_libraries = 'pg_tviews, pg_stat_statements'"
		"pg_stat_statements.track = all" "pg_stat_statements.max = 1000")
fi
# autovacuum off: the script vacuums and analyzes at fixed points
conf+=("autovacuum = off")
bench_start "${conf[@]}"
[ "$PGSS" = 1 ] && psql_b -c "CREATE EXTENSION pg_stat_statements"
BUILD=$(bench_build)

# ---- schema ----
log "loading $ROWS items, $ROWS children of $PARENTS parents"
psql_b <<SQL
SET client_min_messages = warning;
$(tb_item_sql "$ROWS")

CREATE TABLE tb_parent (
	pk_parent	bigint PRIMARY KEY,
	name		text NOT NULL,
	region		text NOT NULL,
	updated_at	timestamptz NOT NULL
);
INSERT INTO tb_parent
SELECT i, 'parent ' || i, 'region ' || i % 20, timestamptz '2026-01-01' + i * interval '1 s'
FROM generate_series(1, $PARENTS) i;

CREATE TABLE tb_child (
	pk_child	bigint PRIMARY KEY,
	fk_parent	bigint NOT NULL,
	name		text NOT NULL,
	qty			integer NOT NULL,
	price		numeric(12,2) NOT NULL,
	updated_at	timestamptz NOT NULL
);
-- a parent's children are contiguous: (i - 1) / CHILDREN + 1
INSERT INTO tb_child
SELECT i, (i - 1) / $CHILDREN + 1, 'child ' || i || ' ' || md5(i::text), i % 100,
	   (i % 10000) / 100.0, timestamptz '2026-01-01' + i * interval '1 s'
FROM generate_series(1, $ROWS) i;
CREATE INDEX ON tb_child (fk_parent);
VACUUM ANALYZE;
CHECKPOINT;
SQL

# shape | TVIEW | base table updated | its key column | expected keys | definition
declare -A TV TBL KEYCOL EXPECT DEF
TV[single]=tv_item TBL[single]=tb_item KEYCOL[single]=pk_item EXPECT[single]=$CHANGES
DEF[single]="SELECT i.pk_item,
       jsonb_build_object('id', i.pk_item, 'name', i.name, 'qty', i.qty,
                          'price', i.price, 'tags', i.tags,
                          'updated_at', i.updated_at) AS data
  FROM tb_item i"
TV[join]=tv_child TBL[join]=tb_child KEYCOL[join]=pk_child EXPECT[join]=$CHANGES
DEF[join]="SELECT c.pk_child, c.fk_parent,
       jsonb_build_object('id', c.pk_child, 'name', c.name, 'qty', c.qty,
                          'price', c.price, 'updated_at', c.updated_at,
                          'parent', jsonb_build_object('id', p.pk_parent,
                                                       'name', p.name,
                                                       'region', p.region)) AS data
  FROM tb_child c JOIN tb_parent p ON p.pk_parent = c.fk_parent"
TV[agg]=tv_parent TBL[agg]=tb_child KEYCOL[agg]=pk_child
EXPECT[agg]=$(((CHANGES - 1) / CHILDREN + 1))
DEF[agg]="SELECT p.pk_parent,
       jsonb_build_object('id', p.pk_parent, 'name', p.name, 'region', p.region,
                          'children', coalesce((
           SELECT jsonb_agg(jsonb_build_object('id', c.pk_child, 'name', c.name,
                                               'qty', c.qty, 'price', c.price)
                            ORDER BY c.pk_child)
             FROM tb_child c WHERE c.fk_parent = p.pk_parent), '[]'::jsonb)) AS data
  FROM tb_parent p"

declare -A R_KEYS R_DRAIN R_CPU R_BASE R_BASECPU R_BASEIDX R_ROWS R_CHANGES R_WRITTEN \
	R_BATCHES R_WAL R_WORK R_CREATE R_ORACLE R_EXPLAIN

: >"$PROFILE_OUT.tmp"
profile() { printf '%s\n' "$@" >>"$PROFILE_OUT.tmp"; }
profile "catch-up profile: $CHANGES updates per shape in transactions of $TXN" \
	"$(nproc) cores; $BUILD" ""

for shape in $SHAPES; do
	[ -n "${TV[$shape]:-}" ] || die "unknown shape '$shape' (single, join, agg)"
	tv=${TV[$shape]}
	log "[$shape] creating $tv"
	out=$(sql_value "SET client_min_messages = warning;
		SELECT round(seconds::numeric, 3) FROM bench_timed(
			format('SELECT pg_tviews_create(%L, %L)', '$tv', \$def\$${DEF[$shape]}\$def\$))")
	R_CREATE[$shape]=$out
	psql_b -c "VACUUM ANALYZE $tv" -c "VACUUM ANALYZE ${TBL[$shape]}"
	[ "$(sql_value "SELECT pg_tviews_wait('5 min')")" = t ] || die "engine did not catch up after create"
	pid=$(engine_pid)
	IFS='|' read -r b0 c0 k0 rs0 <<<"$(engine_counters)"
	w0=$(sql_value "SELECT rows_refreshed FROM pg_tviews_metadata WHERE entity_name = '$tv'")

	log "[$shape] pausing the engine, committing $CHANGES updates of ${TBL[$shape]}"
	psql_b -c "SELECT pg_tviews_system_disable('catch_up benchmark')" >/dev/null
	engine_wait_paused
	lsn0=$(sql_value "SELECT pg_current_wal_lsn()")
	t0=$(now_s)
	psql_b -c "CALL bench_update_range('${TBL[$shape]}', '${KEYCOL[$shape]}',
		'qty = qty + 1, price = price + 0.01, updated_at = clock_timestamp()',
		1, $CHANGES, $TXN)"
	t1=$(now_s)
	R_WORK[$shape]=$(elapsed "$t0" "$t1")
	R_WAL[$shape]=$(sql_value "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0') / 1048576)")
	psql_b -c "VACUUM ANALYZE ${TBL[$shape]}" -c "CHECKPOINT"
	[ "$(engine_counters | cut -d'|' -f2)" = "$c0" ] || warn "the paused engine decoded changes"

	# ---- the drain ----
	[ "$PGSS" = 1 ] && psql_b -c "SELECT pg_stat_statements_reset()" >/dev/null
	perf_pid=
	if [ "$PROFILE" = 1 ]; then
		perf_data=$PGTV_CLUSTER_DIR/perf-$shape.data
		"${PERF[@]}" record -q -e cpu-clock -F "${BENCH_PERF_FREQ:-250}" -g -p "$pid" -o "$perf_data" \
			>/dev/null 2>"$PGTV_CLUSTER_DIR/perf-$shape.err" &
		perf_pid=$!
		BENCH_BG_PIDS+=("$perf_pid")
		sleep 0.5
	fi
	cpu0=$(proc_cpu_ticks "$pid")
	log "[$shape] resuming the engine"
	t0=$(now_s)
	ok=$(psql_b -tA -c "SELECT pg_tviews_system_enable()" -c "SELECT pg_tviews_wait('4 hours')" | tail -n 1)
	t1=$(now_s)
	cpu1=$(proc_cpu_ticks "$pid")
	if [ -n "$perf_pid" ]; then
		kill -INT "$perf_pid" 2>/dev/null || $PGTV_SUDO kill -INT "$perf_pid" 2>/dev/null || true
		wait "$perf_pid" 2>/dev/null || true
	fi
	[ "$ok" = t ] || { warn "[$shape] pg_tviews_wait timed out"; BENCH_FAILED=1; }
	R_DRAIN[$shape]=$(elapsed "$t0" "$t1")
	R_CPU[$shape]=$(awk -v a="$cpu0" -v b="$cpu1" -v t="$TICKS" 'BEGIN{printf "%.2f", (b - a) / t}')
	# what ran during the drain (before anything else runs)
	pgss=
	if [ "$PGSS" = 1 ]; then
		pgss=$(psql_b -P pager=off -c "
			SELECT round(total_exec_time::numeric, 0) AS total_ms,
			       round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1) AS pct,
			       calls, rows, round(mean_exec_time::numeric, 2) AS mean_ms,
			       left(regexp_replace(query, '\s+', ' ', 'g'), 160) AS query
			  FROM pg_stat_statements
			 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
			   AND query !~* 'pg_tviews_(wait|system_enable|engines)|pg_stat_statements'
			 ORDER BY total_exec_time DESC LIMIT 12")
	fi
	IFS='|' read -r b1 c1 k1 rs1 <<<"$(engine_counters)"
	[ "$rs1" = "$rs0" ] || { warn "[$shape] the engine restarted during the drain"; BENCH_FAILED=1; }
	[ "$(engine_pid)" = "$pid" ] || { warn "[$shape] the engine pid changed"; BENCH_FAILED=1; }
	w1=$(sql_value "SELECT rows_refreshed FROM pg_tviews_metadata WHERE entity_name = '$tv'")
	R_KEYS[$shape]=$((k1 - k0))
	R_CHANGES[$shape]=$((c1 - c0))
	R_BATCHES[$shape]=$((b1 - b0))
	R_WRITTEN[$shape]=$((w1 - w0))
	[ "${R_KEYS[$shape]}" = "${EXPECT[$shape]}" ] ||
		warn "[$shape] the engine refreshed ${R_KEYS[$shape]} keys, expected ${EXPECT[$shape]}"
	log "[$shape] drained in ${R_DRAIN[$shape]} s: ${R_KEYS[$shape]} keys, ${R_CHANGES[$shape]} changes," \
		"${R_BATCHES[$shape]} batches, engine cpu ${R_CPU[$shape]} s"

	# ---- the plan of one batch's refresh statement ----
	# A batch's worth of keys (pg_tviews.batch_size, at most the keys of
	# the workload) is made stale with the engine paused, and the engine's
	# own refresh statement (tviews.refresh_sql(tview, 'keys')) runs under
	# EXPLAIN ANALYZE in a transaction that is rolled back.
	if [ "$EXPLAIN" = 1 ]; then
		nk=$(sql_value "SELECT least(current_setting('pg_tviews.batch_size')::int, ${EXPECT[$shape]})")
		if [ "$shape" = agg ]; then nrows=$((nk * CHILDREN)); else nrows=$nk; fi
		[ "$nrows" -le "$ROWS" ] || nrows=$ROWS
		psql_b -c "SELECT pg_tviews_system_disable('catch_up benchmark: explain')" >/dev/null
		engine_wait_paused
		psql_b -c "UPDATE ${TBL[$shape]} SET qty = qty + 1, price = price + 0.01,
		           updated_at = clock_timestamp() WHERE ${KEYCOL[$shape]} <= $nrows"
		explain=$(psql_b -tA <<SQL 2>&1
SELECT tviews.refresh_sql('$tv'::regclass, 'keys') AS q \gset
SELECT array_agg(i::text)::text AS k FROM generate_series(1, $nk) i \gset
BEGIN;
PREPARE refresh_keys(text[]) AS :q ;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE refresh_keys(:'k');
ROLLBACK;
SQL
		) || warn "[$shape] EXPLAIN failed: $explain"
		# the key array, inlined as a constant: shortened
		explain=$(sed -E "s/'\\{[0-9,]{80,}\\}'/'{...$nk keys...}'/g" <<<"$explain")
		psql_b -tA -c "SELECT pg_tviews_system_enable()" -c "SELECT pg_tviews_wait('1 hour')" >/dev/null
		R_EXPLAIN[$shape]="-- EXPLAIN ANALYZE of the refresh statement for $nk keys ($nrows rows of ${TBL[$shape]} updated):
$explain"
	fi

	# ---- oracle ----
	if out=$(bench_oracle "$tv"); then R_ORACLE[$shape]=ok; else
		R_ORACLE[$shape]=FAILED
		BENCH_FAILED=1
	fi
	log "$out"

	# ---- profile ----
	profile "==== shape $shape ($tv): drain ${R_DRAIN[$shape]} s wall, engine cpu ${R_CPU[$shape]} s, ${R_KEYS[$shape]} keys, ${R_CHANGES[$shape]} changes, ${R_BATCHES[$shape]} batches"
	if [ "$PGSS" = 1 ]; then
		profile "" "-- pg_stat_statements during the drain (top statements by total time;" \
			"   the refresh statement's own time includes the backing view's query)" "$pgss"
	fi
	[ -n "${R_EXPLAIN[$shape]:-}" ] && profile "" "${R_EXPLAIN[$shape]}"
	if [ "$PROFILE" = 1 ] && [ -s "$perf_data" ]; then
		profile "" "-- perf: engine process, self time by shared object"
		profile "$("${PERF[@]}" report -i "$perf_data" --stdio --no-children --sort dso \
			-g none --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep . | head -12)"
		profile "" "-- perf: engine process, self time by function (top 40)"
		profile "$("${PERF[@]}" report -i "$perf_data" --stdio --no-children --sort dso,symbol \
			-g none --percent-limit 0.3 2>/dev/null | grep -v '^#' | grep . | head -40)"
		profile "" "-- perf: engine process, inclusive time (children; named functions, top 60)"
		profile "$("${PERF[@]}" report -i "$perf_data" --stdio --children --sort symbol \
			-g none 2>/dev/null | grep -v '^#' | grep . | grep -v -E '\] (0x)?[0-9a-f]{12,}' | head -60)"
		profile "(perf data kept only while the cluster is: $perf_data)"
	fi
	profile ""

	# ---- baseline: the same rows by a plain CREATE TABLE AS ----
	R_ROWS[$shape]=$(sql_value "SELECT count(*) FROM $tv")
	base=() basecpu=()
	for ((r = 0; r < RUNS; r++)); do
		IFS='|' read -r s c <<<"$(sql_value "SELECT seconds, cpu_seconds FROM bench_timed(
			'CREATE TABLE bench_copy AS SELECT * FROM ${tv}_def', $TICKS)")"
		psql_b -c "DROP TABLE bench_copy"
		base+=("$s") basecpu+=("$c")
		log "[$shape] baseline run $((r + 1))/$RUNS: $s s (cpu $c s)"
	done
	R_BASE[$shape]=$(median "${base[*]}")
	R_BASECPU[$shape]=$(median "${basecpu[*]}")
	# the same with the TVIEW's indexes (what the engine maintains too)
	psql_b -c "CREATE TABLE bench_copy (LIKE $tv INCLUDING INDEXES)"
	R_BASEIDX[$shape]=$(sql_value "SELECT seconds FROM bench_timed(
		'INSERT INTO bench_copy SELECT * FROM ${tv}_def')")
	psql_b -c "DROP TABLE bench_copy"
	psql_b -c "SELECT pg_tviews_drop('$tv')" >/dev/null
done

# ---- report ----
{
	echo "catch-up benchmark: $CHANGES updates of distinct rows per shape, in transactions of $TXN," \
		"committed while the engine was paused; drain = pg_tviews_system_enable() until pg_tviews_wait() returns"
	echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $(sql_value 'SHOW server_version');" \
		"$ROWS items/children, $PARENTS parents ($CHILDREN children each);" \
		"pg_tviews.batch_size $(sql_value 'SHOW pg_tviews.batch_size'); perf during the drains: $([ "$PROFILE" = 1 ] && echo "on (${BENCH_PERF_FREQ:-250} Hz)" || echo off)"
	echo "build: $BUILD"
	echo "baseline: CREATE TABLE AS SELECT * FROM <tview>_def (no index), median of $RUNS runs;" \
		"base+idx: INSERT into an empty copy with the TVIEW's indexes (1 run)"
	echo "keys/s = TVIEW rows refreshed per second of drain (wall); cpu: per second of the engine's CPU time" \
		"against the baseline backend's CPU time"
	echo
	printf '%-6s %-9s %7s %6s %6s %7s %7s %6s %7s %7s %6s %9s %6s %6s %7s %7s %6s\n' \
		shape tview changes WAL_MB work_s keys drain_s cpu_s keys/s rows base_s base_r/s ratio cpu_ra idx_s idx_rat oracle
	for shape in $SHAPES; do
		rate=$(per_s "${R_KEYS[$shape]}" "${R_DRAIN[$shape]}")
		crate=$(per_s "${R_KEYS[$shape]}" "${R_CPU[$shape]}")
		brate=$(per_s "${R_ROWS[$shape]}" "${R_BASE[$shape]}")
		bcrate=$(per_s "${R_ROWS[$shape]}" "${R_BASECPU[$shape]}")
		birate=$(per_s "${R_ROWS[$shape]}" "${R_BASEIDX[$shape]}")
		printf '%-6s %-9s %7s %6s %6.1f %7s %7.2f %6.2f %7s %7s %6.2f %9s %6s %6s %7.2f %7s %6s\n' \
			"$shape" "${TV[$shape]}" "$CHANGES" "${R_WAL[$shape]}" "${R_WORK[$shape]}" "${R_KEYS[$shape]}" \
			"${R_DRAIN[$shape]}" "${R_CPU[$shape]}" "$rate" "${R_ROWS[$shape]}" "${R_BASE[$shape]}" \
			"$brate" "$(ratio "$rate" "$brate" 3)" "$(ratio "$crate" "$bcrate" 3)" \
			"${R_BASEIDX[$shape]}" "$(ratio "$rate" "$birate" 3)" "${R_ORACLE[$shape]}"
	done
	echo
	for shape in $SHAPES; do
		echo "$shape: ${R_CHANGES[$shape]} changes decoded ($(per_s "${R_CHANGES[$shape]}" "${R_DRAIN[$shape]}")/s)" \
			"in ${R_BATCHES[$shape]} batches; ${R_WRITTEN[$shape]} rows written (rows_refreshed);" \
			"engine cpu ${R_CPU[$shape]} s of ${R_DRAIN[$shape]} s; baseline cpu ${R_BASECPU[$shape]} s;" \
			"pg_tviews_create ${R_CREATE[$shape]} s"
	done
	echo
	[ -n "${R_KEYS[single]:-}" ] &&
		echo "single-table catch-up: $(per_s "${R_KEYS[single]}" "${R_DRAIN[single]}") rows/s" \
			"(cpu: $(per_s "${R_KEYS[single]}" "${R_CPU[single]}") rows per engine cpu second) (target >= 50000)"
	for shape in $SHAPES; do
		echo "$shape catch-up/baseline ratio: $(ratio "$(per_s "${R_KEYS[$shape]}" "${R_DRAIN[$shape]}")" \
			"$(per_s "${R_ROWS[$shape]}" "${R_BASE[$shape]}")" 3)" \
			"(cpu time: $(ratio "$(per_s "${R_KEYS[$shape]}" "${R_CPU[$shape]}")" \
			"$(per_s "${R_ROWS[$shape]}" "${R_BASECPU[$shape]}")" 3))"
	done
	bench_log_check
} | tee "$BENCH_REPORT"
mv "$PROFILE_OUT.tmp" "$PROFILE_OUT"
log "report saved in ${BENCH_REPORT#"$BENCH_REPO"/}, profile in ${PROFILE_OUT#"$BENCH_REPO"/}"
[ "$BENCH_FAILED" = 0 ] || { echo "catch_up: FAILED (see above)" >&2; exit 1; }
