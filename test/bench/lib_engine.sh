# test/bench/lib_engine.sh -- shared helpers of the engine benchmarks
# (catch_up.sh, incremental.sh, hot_keys.sh, memory.sh).  Sourced.
#
#   bench_setup NAME DEFAULT_PORT   cluster dir /tmp/pgtv-bench-NAME (or
#                                   $BENCH_CLUSTER_DIR), port $BENCH_PORT or
#                                   DEFAULT_PORT, report out/NAME.txt, traps
#   bench_start [conf line...]      destroy leftovers, initdb, append the
#                                   benchmark settings and the given lines to
#                                   postgresql.conf, start, CREATE EXTENSION,
#                                   wait for the engine
#
# Each benchmark's cluster is throwaway: it is destroyed on exit (also on
# errors and ^C) unless BENCH_KEEP=1.  As root, the server runs as the
# postgres user (scripts/cluster.sh); clients (psql, pgbench,
# pg_recvlogical) connect over the Unix socket as the cluster's superuser.

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_REPO=$(cd "$BENCH_HERE/../.." && pwd)
CLUSTER="$BENCH_REPO/scripts/cluster.sh"
# pgtv_as_pg, pgtv_bindir, PGTV_IS_ROOT, PGTV_SUDO, PGTV_PG_USER
# (also sets -euo pipefail)
. "$BENCH_REPO/scripts/lib.sh"
BINDIR=$(pgtv_bindir)
if [ "$PGTV_IS_ROOT" = 1 ]; then PGSU=$PGTV_PG_USER; else PGSU=$(id -un); fi
TICKS=$(getconf CLK_TCK 2>/dev/null || echo 100)

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# pids of background processes this script started (killed on exit, by pid)
BENCH_BG_PIDS=()
# tell the report and the exit status about a failed check
BENCH_FAILED=0

bench_setup() {
	BENCH_NAME=$1
	export PGTV_CLUSTER_DIR=${BENCH_CLUSTER_DIR:-/tmp/pgtv-bench-$1}
	export PGTV_PORT=${BENCH_PORT:-$2}
	export PGTV_DATABASE=pg_tviews_bench
	export PGTV_SOCKET_DIR=${PGTV_SOCKET_DIR:-/tmp}
	BENCH_OUT=$BENCH_HERE/out
	mkdir -p "$BENCH_OUT"
	BENCH_REPORT=$BENCH_OUT/$1.txt
	BENCH_LOG=$PGTV_CLUSTER_DIR/server.log
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	PKGLIBDIR=$(pg_config --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
	for lib in pg_tviews pg_tviews_decoder; do
		[ -f "$PKGLIBDIR/$lib.so" ] ||
			die "$PKGLIBDIR/$lib.so is missing (make && make install)"
	done
}

bench_cleanup() {
	local rc=$? p
	for p in "${BENCH_BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${BENCH_BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [ "${BENCH_KEEP:-}" = 1 ]; then
		log "cluster kept in $PGTV_CLUSTER_DIR (port $PGTV_PORT); destroy it with" \
			"PGTV_CLUSTER_DIR=$PGTV_CLUSTER_DIR PGTV_PORT=$PGTV_PORT scripts/cluster.sh destroy"
	else
		"$CLUSTER" destroy >/dev/null 2>&1 || true
	fi
	exit $rc
}

# Which build is measured (others may reinstall it while this runs).
bench_build() {
	local b rev
	b="pg_tviews.so md5 $(md5sum "$PKGLIBDIR/pg_tviews.so" | cut -c1-12)"
	b+=", pg_tviews_decoder.so md5 $(md5sum "$PKGLIBDIR/pg_tviews_decoder.so" | cut -c1-12)"
	b+=", installed $(date -u -r "$PKGLIBDIR/pg_tviews.so" '+%Y-%m-%d %H:%M UTC')"
	if rev=$(git -C "$BENCH_REPO" rev-parse --short HEAD 2>/dev/null); then
		git -C "$BENCH_REPO" diff --quiet HEAD -- engine decoder include fdw \
			pg_tviews--0.1.sql 2>/dev/null || rev+=" + local changes"
		b+=", tree $rev"
	fi
	printf '%s\n' "$b"
}

# Lines appended to postgresql.conf after scripts/cluster.sh's own (later
# lines win).  The cluster is throwaway: background work that would make
# timings noisy is tamed; each script adds its own.
bench_start() {
	"$CLUSTER" destroy >/dev/null 2>&1 || true	# leftovers of an aborted run
	"$CLUSTER" init
	{
		echo "# test/bench/$BENCH_NAME.sh"
		echo "max_wal_size = '8GB'"
		echo "checkpoint_timeout = '1h'"
		echo "shared_buffers = '${BENCH_SHARED_BUFFERS:-1GB}'"
		echo "log_min_messages = warning"
		local l
		for l in "$@"; do echo "$l"; done
	} | pgtv_as_pg tee -a "$PGTV_CLUSTER_DIR/data/postgresql.conf" >/dev/null
	"$CLUSTER" start
	psql_b -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_tviews"
	psql_b -f "$BENCH_HERE/lib_engine.sql"
	engine_wait_running
}

psql_b() { "$CLUSTER" psql -v ON_ERROR_STOP=1 -q "$@"; }

# The SQL creating tb_item with $1 rows (catch_up.sh, incremental.sh).
tb_item_sql() {
	cat <<SQL
CREATE TABLE tb_item (
	pk_item		bigint PRIMARY KEY,
	name		text NOT NULL,
	qty			integer NOT NULL,
	price		numeric(12,2) NOT NULL,
	tags		text[] NOT NULL,
	updated_at	timestamptz NOT NULL
);
INSERT INTO tb_item
SELECT i, 'item ' || i || ' ' || md5(i::text), i % 100, (i % 10000) / 100.0,
	   ARRAY['t' || i % 7, 't' || i % 11], timestamptz '2026-01-01' + i * interval '1 s'
FROM generate_series(1, $1) i;
SQL
}
sql_value() { psql_b -tA -c "$1"; }
pgbench_b() {
	"$BINDIR/pgbench" -h "$PGTV_SOCKET_DIR" -p "$PGTV_PORT" -U "$PGSU" "$@" "$PGTV_DATABASE"
}

# ---- the engine ----

engine_pid() {
	sql_value "SELECT pid FROM pg_tviews_engines()
	           WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())"
}

# Wait (up to 60 s) until the engine of the benchmark database runs.
engine_wait_running() {
	local i st
	for ((i = 0; i < 600; i++)); do
		st=$(sql_value "SELECT state FROM pg_tviews_engines()
		                WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())
		                  AND pid IS NOT NULL AND pid > 0")
		case "$st" in
			idle | streaming | applying | paused) return 0 ;;
		esac
		sleep 0.1
	done
	die "the engine did not start (state: ${st:-none}); see $BENCH_LOG"
}

# Wait (up to 60 s) until the engine reports the state paused.
engine_wait_paused() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(sql_value "SELECT state FROM pg_tviews_engines()
		               WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())")" = paused ] &&
			return 0
		sleep 0.1
	done
	die "the engine did not pause"
}

# "batches|changes|keys_refreshed|restarts" of this database's engine
engine_counters() {
	sql_value "SELECT batches, changes, keys_refreshed, restarts FROM pg_tviews_engines()
	           WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())"
}

# CPU time (user + system, clock ticks) of a process so far.
proc_cpu_ticks() {
	local f
	f=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	f=${f##*) }
	awk '{print $12 + $13}' <<<"$f"
}

# Every TVIEW equals its definition (EXCEPT ALL both ways).  Prints
# "name missing extra" per TVIEW; returns 1 when one differs.
bench_oracle() {
	local tv out rc=0 missing extra
	for tv in "$@"; do
		out=$(sql_value "SELECT (SELECT count(*) FROM (SELECT * FROM ${tv}_def EXCEPT ALL SELECT * FROM $tv) x),
		                        (SELECT count(*) FROM (SELECT * FROM $tv EXCEPT ALL SELECT * FROM ${tv}_def) y)")
		IFS='|' read -r missing extra <<<"$out"
		printf 'oracle %s: %s rows of the definition missing, %s extra rows\n' "$tv" "$missing" "$extra"
		[ "$missing" = 0 ] && [ "$extra" = 0 ] || rc=1
	done
	return $rc
}

# Errors and warnings in the server log since byte offset $1 (default 0).
bench_log_check() {
	local from=${1:-0} n
	n=$(tail -c +"$((from + 1))" "$BENCH_LOG" 2>/dev/null |
		grep -cE '(ERROR|WARNING|FATAL|PANIC):' || true)
	echo "server.log: $n ERROR/WARNING/FATAL lines"
	if [ "$n" -gt 0 ]; then
		tail -c +"$((from + 1))" "$BENCH_LOG" | grep -E '(ERROR|WARNING|FATAL|PANIC):' |
			sort | uniq -c | sort -rn | head -10 | sed 's/^/  /'
	fi
}
bench_log_size() { stat -c %s "$BENCH_LOG" 2>/dev/null || echo 0; }

# ---- numbers ----

median() {
	tr ' ' '\n' <<<"$1" | grep . | sort -g |
		awk '{v[NR]=$1} END{if (NR == 0) print "n/a";
		                    else if (NR%2) printf "%.6g", v[(NR+1)/2];
		                    else printf "%.6g", (v[NR/2]+v[NR/2+1])/2}'
}
# a/b with N decimals (default 2)
ratio() {
	awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN{
		if (a != "n/a" && b != "n/a" && b + 0 != 0) printf "%.*f", d, a / b; else print "n/a" }'
}
# k per second over d seconds, rounded
per_s() { awk -v k="$1" -v d="$2" 'BEGIN{printf "%.0f", (d > 0 ? k / d : 0)}'; }
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b - a}'; }

# ---- perf (optional) ----

# perf usable here?  (root, or sudo without a password)
PERF=()
bench_perf_init() {
	command -v perf >/dev/null 2>&1 || return 1
	if [ "$PGTV_IS_ROOT" = 1 ]; then PERF=(perf); else PERF=(sudo -n perf); fi
	"${PERF[@]}" record -e cpu-clock -o /dev/null -- true >/dev/null 2>&1 || { PERF=(); return 1; }
}
