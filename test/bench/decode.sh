#!/usr/bin/env bash
# Decoding benchmark of pg_tviews_decoder against wal2json and test_decoding.
#
#   test/bench/decode.sh [nchanges [txn_size]]
#
#   nchanges   row changes in the workload (default 1000000)
#   txn_size   changes per transaction (default 1000); 0 or "all": the
#              whole workload in a single transaction
#
# Starts its own throwaway cluster (scripts/cluster.sh with
# PGTV_CLUSTER_DIR=<repo>/tmp_check_bench, port 54349), creates one slot
# per plugin, commits the workload, then decodes the same WAL with each
# plugin through pg_logical_slot_peek_[binary_]changes (peek does not
# consume, so every pass decodes the same changes): one untimed pass for
# the output size, then BENCH_RUNS (default 3) timed passes per plugin,
# interleaved, reporting the median.  Timings are reported, never
# asserted: the exit status is 0 unless something failed.
#
# Environment:
#   BENCH_RUNS=3           timed passes per plugin
#   BENCH_WORK_MEM=2GB     work_mem of the decoding passes: the SQL
#                          interface materializes a pass's output in a
#                          tuplestore, which spills to a temporary file
#                          beyond work_mem (see README.md)
#   BENCH_PORT=54349       port of the benchmark cluster
#   BENCH_CLUSTER_DIR=...  cluster directory (default <repo>/tmp_check_bench)
#   BENCH_KEEP=1           leave the cluster running at the end (for
#                          profiling; destroy it with
#                          PGTV_CLUSTER_DIR=... scripts/cluster.sh destroy)
#
# Runs as root (the server then runs as postgres) or as a normal user.
# Needs the extension installed (make && make install) and
# postgresql-15-wal2json.  A copy of the report goes to test/bench/out/.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CLUSTER="$REPO/scripts/cluster.sh"

NCHANGES=${1:-1000000}
TXN_SIZE=${2:-1000}
case "$TXN_SIZE" in
	all | single) TXN_SIZE=0 ;;
esac
[[ "$NCHANGES" =~ ^[0-9]+$ && "$NCHANGES" -gt 0 ]] ||
	{ echo "error: nchanges must be a positive integer" >&2; exit 2; }
[[ "$TXN_SIZE" =~ ^[0-9]+$ ]] ||
	{ echo "error: txn_size must be a non-negative integer or 'all'" >&2; exit 2; }
RUNS=${BENCH_RUNS:-3}
WORK_MEM=${BENCH_WORK_MEM:-2GB}
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -gt 0 ]] ||
	{ echo "error: BENCH_RUNS must be a positive integer" >&2; exit 2; }

export PGTV_CLUSTER_DIR=${BENCH_CLUSTER_DIR:-$REPO/tmp_check_bench}
export PGTV_PORT=${BENCH_PORT:-54349}
export PGTV_DATABASE=pg_tviews_bench

log() { printf '==> %s\n' "$*" >&2; }

# ---- prerequisites ----
PKGLIBDIR=$(pg_config --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
for lib in pg_tviews pg_tviews_decoder wal2json test_decoding; do
	[ -f "$PKGLIBDIR/$lib.so" ] || {
		echo "error: $PKGLIBDIR/$lib.so is missing (pg_tviews: make && make install;" \
			"wal2json: apt-get install postgresql-15-wal2json)" >&2
		exit 1
	}
done

cleanup() {
	local rc=$?
	if [ "${BENCH_KEEP:-}" = 1 ]; then
		log "cluster kept in $PGTV_CLUSTER_DIR (port $PGTV_PORT)"
	else
		"$CLUSTER" destroy >/dev/null 2>&1 || true
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql_bench() { "$CLUSTER" psql -v ON_ERROR_STOP=1 -q "$@"; }
sql_value() { psql_bench -tA -c "$1"; }

# Which build is measured (others may reinstall it while this runs).
BUILD="pg_tviews_decoder.so md5 $(md5sum "$PKGLIBDIR/pg_tviews_decoder.so" | cut -c1-12)"
BUILD+=", installed $(date -u -r "$PKGLIBDIR/pg_tviews_decoder.so" '+%Y-%m-%d %H:%M UTC')"
if rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null); then
	git -C "$REPO" diff --quiet HEAD -- decoder include 2>/dev/null || rev+=" + local changes"
	BUILD+=", tree $rev"
fi

# ---- cluster ----
"$CLUSTER" destroy >/dev/null 2>&1 || true	# leftovers of an aborted run
"$CLUSTER" start
# The cluster is throwaway: keep background work out of the timings.
psql_bench -c "ALTER SYSTEM SET autovacuum = off" \
	-c "ALTER SYSTEM SET max_wal_size = '8GB'" \
	-c "ALTER SYSTEM SET checkpoint_timeout = '1h'" \
	-c "ALTER SYSTEM SET work_mem = '$WORK_MEM'" \
	-c "SELECT pg_reload_conf()" >/dev/null
psql_bench -f "$HERE/lib_engine.sql" -f "$HERE/decode_setup.sql"

# ---- plugins: label | slot | binary | options (a text[] literal) ----
PLUGINS=(
	"pg_tviews_decoder json|bench_tviews_json|false|{format,json}"
	"pg_tviews_decoder binary|bench_tviews_binary|true|{format,binary}"
	"wal2json (format-version 2)|bench_wal2json|false|{format-version,2}"
	"test_decoding|bench_test_decoding|false|{}"
	"floor (tviews, all filtered)|bench_tviews_json|false|{include-tables,bench_none.none}"
)

log "creating slots"
psql_bench -c "
	SELECT pg_create_logical_replication_slot('bench_tviews_json', 'pg_tviews_decoder');
	SELECT pg_create_logical_replication_slot('bench_tviews_binary', 'pg_tviews_decoder');
	SELECT pg_create_logical_replication_slot('bench_wal2json', 'wal2json');
	SELECT pg_create_logical_replication_slot('bench_test_decoding', 'test_decoding');" >/dev/null
start_lsn=$(sql_value "SELECT pg_current_wal_lsn()")

# ---- workload ----
if [ "$TXN_SIZE" = 0 ]; then txn_label="one transaction"; else txn_label="transactions of $TXN_SIZE"; fi
log "workload: $NCHANGES changes in $txn_label"
t0=$(date +%s.%N)
psql_bench -c "SET synchronous_commit = off" -c "CALL bench_workload($NCHANGES, $TXN_SIZE)"
t1=$(date +%s.%N)
psql_bench -c "CHECKPOINT" >/dev/null
# (results go through a variable: set -e does not see a failure inside <<<)
out=$(sql_value "
	SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$start_lsn'),
	       CASE WHEN $TXN_SIZE = 0 THEN 1
	            ELSE ($NCHANGES + $TXN_SIZE - 1) / $TXN_SIZE END")
IFS='|' read -r wal_bytes ntxn <<<"$out"
log "workload took $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s," \
	"$((wal_bytes / 1048576)) MiB of WAL"

# ---- untimed pass: output size (also warms caches) ----
declare -A ROWS BYTES TIMES CPUS
for p in "${PLUGINS[@]}"; do
	IFS='|' read -r label slot bin opts <<<"$p"
	log "output size: $label"
	out=$(sql_value "SELECT nrows, nbytes FROM bench_output_size('$slot', $bin, '$opts')")
	IFS='|' read -r "ROWS[$label]" "BYTES[$label]" <<<"$out"
done

# ---- timed passes, interleaved (the order rotates each round) ----
TICKS=$(getconf CLK_TCK 2>/dev/null || echo 100)
n=${#PLUGINS[@]}
for ((r = 0; r < RUNS; r++)); do
	for ((k = 0; k < n; k++)); do
		IFS='|' read -r label slot bin opts <<<"${PLUGINS[$(((k + r) % n))]}"
		out=$(sql_value "SELECT nrows, round(seconds::numeric, 3), round(cpu_seconds::numeric, 2)
			   FROM bench_peek('$slot', $bin, '$opts', $TICKS)")
		IFS='|' read -r rows secs cpu <<<"$out"
		log "run $((r + 1))/$RUNS: $label ${secs}s (cpu ${cpu:-n/a}s, $rows rows)"
		[ "$rows" = "${ROWS[$label]}" ] ||
			echo "warning: $label returned $rows rows, the untimed pass ${ROWS[$label]}" >&2
		TIMES[$label]="${TIMES[$label]:-} $secs"
		CPUS[$label]="${CPUS[$label]:-} ${cpu:-}"
	done
done

median() {
	tr ' ' '\n' <<<"$1" | grep . | sort -g |
		awk '{v[NR]=$1} END{if (NR == 0) print "n/a";
		                    else if (NR%2) printf "%.3f", v[(NR+1)/2];
		                    else printf "%.3f", (v[NR/2]+v[NR/2+1])/2}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a != "n/a" && b > 0) printf "%.2f", a/b; else print "n/a" }'; }

# ---- report ----
W2J="wal2json (format-version 2)"
FLOOR="floor (tviews, all filtered)"
declare -A MED MEDCPU
for p in "${PLUGINS[@]}"; do
	IFS='|' read -r label _ <<<"$p"
	MED[$label]=$(median "${TIMES[$label]}")
	MEDCPU[$label]=$(median "${CPUS[$label]}")
done

expected_rows=$((NCHANGES + 2 * ntxn))
mkdir -p "$HERE/out"
report="$HERE/out/decode-$NCHANGES-$([ "$TXN_SIZE" = 0 ] && echo single || echo "$TXN_SIZE").txt"
{
	echo "decoding benchmark: $NCHANGES changes (70% insert, 20% update, 10% delete)" \
		"in $txn_label, $ntxn commit(s), $((wal_bytes / 1048576)) MiB of WAL"
	echo "$(nproc) cores; PostgreSQL $(sql_value 'SHOW server_version');" \
		"work_mem $(sql_value 'SHOW work_mem'); $RUNS peek passes per plugin"
	echo "plugin build: $BUILD"
	for p in "${PLUGINS[@]}"; do
		IFS='|' read -r label _ <<<"$p"
		printf '  %-30s wall%s  cpu%s\n' "$label" "${TIMES[$label]}" "${CPUS[$label]}"
	done
	echo
	printf '%-30s %8s %7s %7s %10s %8s %12s %9s\n' plugin median_s vs_w2j cpu_s \
		cpu_vs_w2j rows output_bytes bytes/row
	for p in "${PLUGINS[@]}"; do
		IFS='|' read -r label _ <<<"$p"
		rows=${ROWS[$label]}
		printf '%-30s %8s %7s %7s %10s %8s %12s %9s\n' "$label" \
			"${MED[$label]}" "$(ratio "${MED[$label]}" "${MED[$W2J]}")" \
			"${MEDCPU[$label]}" "$(ratio "${MEDCPU[$label]}" "${MEDCPU[$W2J]}")" \
			"$rows" "${BYTES[$label]}" \
			"$(ratio "${BYTES[$label]}" "$((rows > 0 ? rows : 1))" | sed 's/\.[0-9]*$//')"
	done
	echo
	# the part of each plugin's time above the decoding floor (WAL reading,
	# reorder buffer, relation lookup): its formatting plus the
	# materialization of its output by the SQL interface
	for label in "pg_tviews_decoder json" "pg_tviews_decoder binary" "$W2J" "test_decoding"; do
		awk -v l="$label" -v t="${MED[$label]}" -v f="${MED[$FLOOR]}" 'BEGIN{
			printf "above floor: %-28s %7.3f s (%.0f%% of its time)\n", l, t - f,
				(t > 0 ? 100 * (t - f) / t : 0) }'
	done
	echo
	echo "json/wal2json ratio: $(ratio "${MED[pg_tviews_decoder json]}" "${MED[$W2J]}") (target <= 0.8)"
	echo "binary/wal2json ratio: $(ratio "${MED[pg_tviews_decoder binary]}" "${MED[$W2J]}") (target <= 0.4)"
	echo "(cpu time: json/wal2json $(ratio "${MEDCPU[pg_tviews_decoder json]}" "${MEDCPU[$W2J]}")," \
		"binary/wal2json $(ratio "${MEDCPU[pg_tviews_decoder binary]}" "${MEDCPU[$W2J]}"))"
} | tee "$report"

# Every plugin except the filtered floor emits BEGIN + change rows + COMMIT.
for label in "pg_tviews_decoder json" "pg_tviews_decoder binary" "$W2J" "test_decoding"; do
	# the binary format adds one RELATION message per session
	want=$expected_rows
	[ "$label" = "pg_tviews_decoder binary" ] && want=$((expected_rows + 1))
	[ "${ROWS[$label]}" = "$want" ] ||
		echo "warning: $label returned ${ROWS[$label]} rows, expected $want" >&2
done
log "report saved in ${report#"$REPO"/}"
