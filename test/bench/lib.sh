# test/bench/lib.sh -- shared helpers of the engine benchmarks (sourced).
#
#   . "$(dirname "$0")/lib.sh"
#   bench_init write_cost /tmp/pgtv-bench-write 54351
#   bench_cluster_start [name=value ...]   # extra server settings
#   bench_psql [-d db] -c '...'            # psql, ON_ERROR_STOP, quiet
#   bench_sql [db] 'SELECT ...'            # one value (tuples only, unaligned)
#   bench_pgbench db [pgbench args ...]
#   bench_create_extension db             # + wait for the engine's slot
#   bench_engine_pid db / bench_rss_kb pid / bench_private_kb pid / bench_cpu_s pid
#   bench_wait_catchup db [timeout_s]      # prints seconds, fails on timeout
#   bench_oracle db tview                  # rows differing from <tview>_def
#   bench_median / bench_ratio / bench_report_file
#
# bench_init sets, for the throwaway cluster of scripts/cluster.sh:
#   PGTV_CLUSTER_DIR = $BENCH_CLUSTER_DIR, else the given default
#   PGTV_PORT        = $BENCH_PORT, else the given default
#   PGTV_DATABASE    = pg_tviews_bench (the default database of bench_psql)
# and exports PGHOST/PGPORT/PGUSER for psql and pgbench (as root the
# server runs as postgres and clients connect as postgres over the socket
# in /tmp; as a normal user, as that user).  An EXIT trap destroys the
# cluster unless BENCH_KEEP=1.  Runs as root or as a user with sudo.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_REPO=$(cd "$BENCH_DIR/../.." && pwd)
BENCH_CLUSTER="$BENCH_REPO/scripts/cluster.sh"
BENCH_OUT="$BENCH_DIR/out"
if [ "$(id -u)" = 0 ]; then BENCH_SUDO=""; else BENCH_SUDO="sudo"; fi

bench_log() { printf '==> %s\n' "$*" >&2; }
bench_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# bench_init NAME DEFAULT_CLUSTER_DIR DEFAULT_PORT
bench_init() {
	BENCH_NAME=$1
	export PGTV_CLUSTER_DIR=${BENCH_CLUSTER_DIR:-$2}
	export PGTV_PORT=${BENCH_PORT:-$3}
	export PGTV_DATABASE=${PGTV_DATABASE:-pg_tviews_bench}
	eval "$("$BENCH_CLUSTER" env)"		# PGHOST PGPORT PGUSER PGDATABASE
	export PGHOST PGPORT PGUSER PGDATABASE
	BENCH_BINDIR=$(pg_config --bindir 2>/dev/null || true)
	[ -x "$BENCH_BINDIR/pgbench" ] || BENCH_BINDIR=/usr/lib/postgresql/15/bin
	[ -x "$BENCH_BINDIR/pgbench" ] || bench_die "pgbench not found (apt-get install postgresql-15)"
	local pkglib
	pkglib=$(pg_config --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
	for lib in pg_tviews pg_tviews_decoder; do
		[ -f "$pkglib/$lib.so" ] ||
			bench_die "$pkglib/$lib.so is missing (cd $BENCH_REPO && make && sudo make install)"
	done
	BENCH_PKGLIBDIR=$pkglib
	mkdir -p "$BENCH_OUT"
	BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgtv-bench-$BENCH_NAME.XXXXXX")
	chmod 755 "$BENCH_TMP"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_cleanup() {
	local rc=$?
	# stop what we started in the background (pgbench, samplers)
	local j
	for j in $(jobs -p); do kill "$j" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${BENCH_KEEP:-}" = 1 ]; then
		bench_log "cluster kept in $PGTV_CLUSTER_DIR (port $PGTV_PORT);" \
			"destroy it with PGTV_CLUSTER_DIR=$PGTV_CLUSTER_DIR PGTV_PORT=$PGTV_PORT scripts/cluster.sh destroy"
	else
		"$BENCH_CLUSTER" destroy >/dev/null 2>&1 || true
	fi
	[ -n "${BENCH_TMP:-}" ] && rm -rf "$BENCH_TMP"
	exit $rc
}

# A new cluster (leftovers of an aborted run are destroyed), with settings
# that keep background work out of the timings, plus the caller's
# name=value settings; restarted once so that every setting is in force.
bench_cluster_start() {
	"$BENCH_CLUSTER" destroy >/dev/null 2>&1 || true
	if [ -e "$PGTV_CLUSTER_DIR" ]; then	# a server still shutting down?
		sleep 5
		"$BENCH_CLUSTER" destroy >/dev/null 2>&1 || true
		[ ! -e "$PGTV_CLUSTER_DIR" ] ||
			bench_die "could not remove $PGTV_CLUSTER_DIR (a server still running there?)"
	fi
	"$BENCH_CLUSTER" start
	local s settings=(
		"autovacuum=off"
		"max_wal_size='8GB'"
		"checkpoint_timeout='1h'"
		"shared_buffers='1GB'"
		"log_min_messages=warning"
		"$@"
	)
	for s in "${settings[@]}"; do
		bench_psql -d postgres -c "ALTER SYSTEM SET ${s%%=*} = ${s#*=}" >/dev/null
	done
	"$BENCH_CLUSTER" stop
	"$BENCH_CLUSTER" start
}

# the server log of the bench cluster
bench_server_log() { echo "$PGTV_CLUSTER_DIR/server.log"; }

# bench_psql [-d DB] psql-args...   (default database: pg_tviews_bench)
bench_psql() {
	local db=$PGTV_DATABASE
	if [ "${1:-}" = -d ]; then db=$2; shift 2; fi
	"$BENCH_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"
}

# bench_sql [DB] SQL: the result, tuples only, unaligned ('|' between columns)
bench_sql() {
	local db=$PGTV_DATABASE
	if [ $# -gt 1 ]; then db=$1; shift; fi
	bench_psql -d "$db" -tA -c "$1"
}

bench_pgbench() {
	local db=$1
	shift
	"$BENCH_BINDIR/pgbench" -d "$db" "$@"
}

# bench_pgbench_parse FILE: "tps latency_avg_ms failed" from pgbench output
bench_pgbench_parse() {
	awk '
		/^tps = / { tps = $3 }
		/^latency average = / { lat = $4 }
		/^number of failed transactions: / { failed = $5 }
		END { printf "%s %s %s\n", (tps == "" ? "n/a" : tps),
		      (lat == "" ? "n/a" : lat), (failed == "" ? 0 : failed) }' "$1"
}

# The pid of the engine of database DB (empty when it has none).
bench_engine_pid() {
	bench_sql "$1" "SELECT e.pid FROM pg_tviews_engines() e
	                 WHERE e.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
	                   AND e.pid IS NOT NULL AND e.pid <> 0"
}

# Wait (up to TIMEOUT_S, default 60) until DB has a running engine; prints its pid.
bench_wait_engine() {
	local db=$1 timeout=${2:-60} pid i
	for ((i = 0; i < timeout * 10; i++)); do
		pid=$(bench_engine_pid "$db" 2>/dev/null || true)
		if [ -n "$pid" ] && [ -d "/proc/$pid" ]; then echo "$pid"; return 0; fi
		sleep 0.1
	done
	bench_log "no engine in database $db after ${timeout}s"
	return 1
}

# bench_create_extension DB: CREATE EXTENSION pg_tviews, then wait (up to
# 60 s) until the engine has created its replication slot.  Creating the
# first TVIEW before that makes pg_tviews_create() create the slot itself,
# which raced with the engine ("replication slot ... already exists" in
# the engine, which then restarts) and, in builds of 2026-11-29 03:00 on,
# fails outright as a superuser ("cannot create logical replication slot
# in transaction that has performed writes").
bench_create_extension() {
	local db=$1 i
	bench_sql "$db" "CREATE EXTENSION pg_tviews" >/dev/null
	for ((i = 0; i < 600; i++)); do
		[ "$(bench_sql "$db" "SELECT count(*) FROM pg_replication_slots
		                        WHERE slot_name = pg_tviews_slot_name()")" = 1 ] && return 0
		sleep 0.1
	done
	bench_log "the engine of $db did not create its slot within 60 s"
	return 1
}

# Resident set size of a process, in kB (VmRSS).  For a backend or worker
# this counts the pages of shared_buffers it has touched (RssShmem);
# bench_private_kb gives its own memory (RssAnon: heap, caches, contexts).
bench_rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo n/a
}
bench_private_kb() {
	awk '/^RssAnon:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo n/a
}

# CPU time (user + system) of a process so far, in seconds.
bench_cpu_s() {
	local ticks
	ticks=$(getconf CLK_TCK 2>/dev/null || echo 100)
	# fields 14 and 15 of /proc/PID/stat (after the ')' of the command name)
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null |
		awk -v t="$ticks" '{ printf "%.2f\n", ($12 + $13) / t }' || echo n/a
}

# bench_wait_catchup DB [TIMEOUT_S]: pg_tviews_wait() until caught up;
# prints the seconds it took (server-side, summed over calls of up to 10 s
# each), returns 1 on timeout (default 600 s) or as soon as refreshes are
# failing (retrying or parked keys: bench_failed_keys tells why).
bench_wait_catchup() {
	local db=$1 timeout=${2:-600} out ok el total=0 step
	while :; do
		step=$(awk -v t="$timeout" -v s="$total" 'BEGIN { r = t - s; printf "%.3f", (r > 10 ? 10 : r) }')
		out=$(bench_sql "$db" "SELECT pg_tviews_wait('${step}s') ||
			'|' || round(extract(epoch FROM clock_timestamp() - statement_timestamp())::numeric, 3)")
		ok=${out%%|*} el=${out#*|}
		total=$(awk -v a="$total" -v b="$el" 'BEGIN { printf "%.3f", a + b }')
		[ "$ok" = true ] && { echo "$total"; return 0; }
		if [ "$(bench_sql "$db" "SELECT count(*) FROM pg_tviews_queue_entries()
		                          WHERE status IN ('retrying', 'failed')")" != 0 ]; then
			bench_log "refreshes are failing in $db: $(bench_failed_keys "$db")"
			echo "$total"
			return 1
		fi
		awk -v a="$total" -v t="$timeout" 'BEGIN { exit !(a < t) }' || { echo "$total"; return 1; }
	done
}

# bench_oracle DB TVIEW: rows of TVIEW EXCEPT ALL <TVIEW>_def, plus the other
# way round (0 when the TVIEW equals its definition).
bench_oracle() {
	local db=$1 tv=$2
	bench_sql "$db" "SELECT count(*) FROM
		((TABLE $tv EXCEPT ALL TABLE ${tv}_def) UNION ALL (TABLE ${tv}_def EXCEPT ALL TABLE $tv)) d"
}

# Keys parked after failed refreshes in DB (tviews.failed_key), and the
# TVIEWs' last errors, one line; empty when none.
bench_failed_keys() {
	bench_sql "$1" "SELECT format('%s parked keys; last errors: %s', count(*),
	                  (SELECT string_agg(DISTINCT tview || ': ' || last_error, '; ')
	                   FROM tviews.tview WHERE last_error IS NOT NULL))
	                FROM tviews.failed_key HAVING count(*) > 0
	                   OR EXISTS (SELECT FROM tviews.tview WHERE last_error IS NOT NULL)"
}

# The engine's state in DB, one line (for reports).
bench_engine_state() {
	bench_sql "$1" "SELECT format('state %s, restarts %s, batches %s, changes %s, keys refreshed %s, queued %s%s',
	                  e.state, e.restarts, e.batches, e.changes, e.keys_refreshed, e.queued,
	                  coalesce(', last error: ' || e.last_error, ''))
	                FROM pg_tviews_engines() e
	                WHERE e.datid = (SELECT oid FROM pg_database WHERE datname = current_database())"
}

# ERROR/WARNING/FATAL/PANIC lines of the server log since byte offset $1
# (bench_log_size gives the current offset).
bench_log_size() { stat -c %s "$(bench_server_log)" 2>/dev/null || echo 0; }
bench_log_problems() {
	tail -c +"$(( ${1:-0} + 1 ))" "$(bench_server_log)" 2>/dev/null |
		grep -E '(ERROR|WARNING|FATAL|PANIC):' || true
}

# bench_median "v1 v2 ...": the median (n/a when empty)
bench_median() {
	tr ' ' '\n' <<<"$1" | grep -v -e '^$' -e '^n/a$' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a";
		                          else if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2];
		                          else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_ratio A B [DIGITS]: A/B
bench_ratio() {
	awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {
		if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.*f\n", d, a / b }'
}

# Which build is measured (others may reinstall it while this runs).
bench_build_info() {
	local so="$BENCH_PKGLIBDIR/pg_tviews.so" info rev
	info="pg_tviews.so md5 $(md5sum "$so" | cut -c1-12)"
	info+=", installed $(date -u -r "$so" '+%Y-%m-%d %H:%M UTC')"
	if rev=$(git -C "$BENCH_REPO" rev-parse --short HEAD 2>/dev/null); then
		git -C "$BENCH_REPO" diff --quiet HEAD -- engine decoder include fdw pg_tviews--0.1.sql 2>/dev/null ||
			rev+=" + local changes"
		info+=", tree $rev"
	fi
	echo "$info"
}

# One line about the machine, for reports.
bench_machine_info() {
	local cpu
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
	echo "$(nproc) cores (${cpu:-unknown cpu}), $(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM," \
		"load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
}

# Install a Debian package when a command is missing (apt-get, sudo when
# not root).  bench_need_cmd CMD PACKAGE
bench_need_cmd() {
	command -v "$1" >/dev/null 2>&1 && return 0
	bench_log "installing $2 (for $1)"
	$BENCH_SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null ||
		{ $BENCH_SUDO apt-get update -qq &&
		  $BENCH_SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null; } ||
		bench_die "could not install $2"
	command -v "$1" >/dev/null 2>&1 || bench_die "$1 still missing after installing $2"
}
