#!/usr/bin/env bash
# Every engine benchmark of pg_tviews, one after the other, with their
# default sizes: the one command behind docs/performance.md.
#
#   test/bench/run.sh              (also: make bench)
#   test/bench/run.sh quick        smaller sizes and shorter runs (~5 min)
#   test/bench/run.sh write_cost freshness ...   only these drivers
#
# Drivers (each starts and destroys its own throwaway cluster, prints its
# figures as ratios against a baseline measured in the same run, and
# writes a copy of its report to test/bench/out/<driver>.txt):
#   write_cost   pgbench TPS with pg_tviews and with trigger-maintained
#                read models, each against plain tables
#   freshness    commit-to-visible lag at 25/50/90% of the saturated rate,
#                and the plot test/bench/out/freshness-lag.png
#   catch_up     draining 1M changes after a pause, per TVIEW shape, against
#                CREATE TABLE AS of the same rows
#   incremental  one changed row visible in a 1M-row TVIEW, against
#                REFRESH MATERIALIZED VIEW
#   hot_keys     1000 updates/s of one row: refreshes per batch, lag
#   memory       engine and walsender memory over 10 minutes, and the plot
#                test/bench/out/memory-rss.png
# The decoder's own benchmark is test/bench/decode.sh (see README.md).
#
# Installs what is missing (scripts/install-deps.sh), builds and installs
# the extension first.  Runs as root (servers run as postgres) or as a
# normal user with sudo.  Default sizes take about 35 minutes; nothing is
# asserted on timings: the exit status is that of the drivers (a TVIEW
# that does not equal its definition at the end is a failure).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$REPO/scripts/lib.sh"

ALL=(write_cost freshness catch_up incremental hot_keys memory)
drivers=()
for a in "$@"; do
	case "$a" in
		quick)
			export BENCH_SECONDS=${BENCH_SECONDS:-10} BENCH_RUNS=${BENCH_RUNS:-2}
			export BENCH_USERS=${BENCH_USERS:-2000} BENCH_POSTS=${BENCH_POSTS:-10000}
			export BENCH_COMMENTS=${BENCH_COMMENTS:-40000}
			export BENCH_CHANGES=${BENCH_CHANGES:-200000} BENCH_ROWS=${BENCH_ROWS:-200000}
			quick_memory=60
			;;
		write_cost | freshness | catch_up | incremental | hot_keys | memory) drivers+=("$a") ;;
		*) pgtv_die "unknown driver '$a' (${ALL[*]}, or quick)" ;;
	esac
done
[ ${#drivers[@]} -gt 0 ] || drivers=("${ALL[@]}")

"$REPO/scripts/install-deps.sh"
pgtv_log "building and installing the extension"
make -C "$REPO" -s
$PGTV_SUDO make -C "$REPO" -s install >/dev/null

failed=()
for d in "${drivers[@]}"; do
	pgtv_log "benchmark: $d"
	if [ "$d" = memory ] && [ -n "${quick_memory:-}" ]; then
		BENCH_SECONDS=$quick_memory "$HERE/$d.sh" || failed+=("$d")
	else
		"$HERE/$d.sh" || failed+=("$d")
	fi
done

echo
echo "== summary (full reports in test/bench/out/)"
for d in "${drivers[@]}"; do
	f="$HERE/out/$d.txt"
	[ -f "$f" ] || continue
	echo "-- $d"
	grep -E 'ratio|target|/baseline|refreshes per batch|growth|p50' "$f" | tail -n 8 || true
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "failed: ${failed[*]}"
	exit 1
fi
