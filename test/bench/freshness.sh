#!/usr/bin/env bash
# Freshness: commit-to-visible lag of the TVIEWs at 25%, 50% and 90% of
# the saturated write rate, and a lag-over-time plot.
#
#   test/bench/freshness.sh
#
# Schema, data and writes are those of write_cost.sh (fraiseql_setup.sql,
# the mix of fraiseql_writes/*.sql, pgbench -c 4 -j 2), with the three
# TVIEWs tv_user, tv_post, tv_comment created by pg_tviews_create().
# Phases, each BENCH_SECONDS long and started with the engine caught up:
#
#   saturated   pgbench without --rate: the saturated write rate S, with the
#               engine running (the lag of this phase is reported too)
#   25% 50% 90% pgbench --rate=<fraction * S>
#
# Method.  The base tables stay trigger-free.  Every write sets its row's
# written_at to clock_timestamp(); each TVIEW document carries writtenAt,
# the newest written_at of the base rows it is built from.  A
# measurement-only trigger on each TVIEW table (AFTER INSERT, and AFTER
# UPDATE when writtenAt changed) logs that writtenAt into an unlogged table
# inside the engine's refresh transaction (freshness_setup.sql).  With
# track_commit_timestamp = on, the lag of one write is
#
#   lag = commit time of the engine transaction that made the LAST of its
#         TVIEW rows visible  -  commit time of the writer's transaction
#
# both from pg_xact_commit_timestamp(xmin) (the writer's: the xmin of the
# base row still carrying that written_at; the engine's: the xmin of the
# logged rows).  Both timestamps are taken at the same point of a commit
# (just before its WAL flush), so the bias is the difference of the two
# flush times (each well under a millisecond to a few ms here), in either
# direction.  A user rename is visible when its tv_user row and all of
# that user's ~5 tv_post and ~20 tv_comment rows are.  Percentiles are
# percentile_cont over the writes of a phase.
#
# Also printed, for comparison, the simpler clock estimate: trigger's
# clock_timestamp() - written_at.  It is biased both ways: written_at is
# read before the writer's commit (adds the rest of the writer's statement
# and its commit, ~1-3 ms here), and the trigger fires before the engine's
# commit (omits the rest of the engine's batch and its commit).
#
# What is not measured: deletes (15% of the mix) leave no timestamp; a
# write superseded in the same row by a newer one before the engine
# applied it is counted only through the newer one; and a write whose
# base row was written again later in the phase has lost its xmin, so
# its commit time: it is left out (a few % of the writes, counted in the
# report; which writes these are does not depend on their lag).  The trigger itself
# adds a little work to the engine (one insert per refreshed row whose
# writtenAt changed), in every phase including the saturated one; the
# commit timestamps add a little to every commit.
#
# Output: the report (test/bench/out/freshness.txt), the per-second
# p50/p99/max lag of the 50% and 90% phases (out/freshness-lag.dat) and
# their plot (out/freshness-lag.png, gnuplot; the Debian package
# gnuplot-nox is installed if gnuplot is missing, with sudo when not root).
# The last line gives the targets: at 50%, p50 <= 20 ms and p99 <= 250 ms.
# Timings are printed, never asserted: exit 0 unless something failed (a
# TVIEW differing from its definition at the end is a failure: exit 1).
#
# Environment (defaults):
#   BENCH_SECONDS=30     duration of each phase
#   BENCH_FRACTIONS="0.25 0.5 0.9"   fractions of the saturated rate
#   BENCH_USERS=10000 BENCH_POSTS=50000 BENCH_COMMENTS=200000
#   BENCH_CLIENTS=4 BENCH_JOBS=2
#   BENCH_PORT=54352 BENCH_CLUSTER_DIR=/tmp/pgtv-bench-fresh
#   BENCH_KEEP=1         leave the cluster running
#
# Total runtime with the defaults: about 2.5 minutes here (4 phases of
# 30 s, the load and TVIEW creation ~20 s, catch-up and collection between
# phases a few seconds).
# The cluster: scripts/cluster.sh, autovacuum off, shared_buffers 1GB,
# checkpoints only by hand (one before each phase), track_commit_timestamp
# on, synchronous_commit on, the pg_tviews settings at their defaults
# (poll_interval 10ms, batch_size 10000).  Runs as root (the server then
# runs as postgres) or as a normal user.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SECONDS_RUN=${BENCH_SECONDS:-30}
USERS=${BENCH_USERS:-10000}
POSTS=${BENCH_POSTS:-50000}
COMMENTS=${BENCH_COMMENTS:-200000}
CLIENTS=${BENCH_CLIENTS:-4}
JOBS=${BENCH_JOBS:-2}
read -r -a FRACTIONS <<<"${BENCH_FRACTIONS:-0.25 0.5 0.9}"
for v in SECONDS_RUN USERS POSTS COMMENTS CLIENTS JOBS; do
	[[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || bench_die "$v must be a positive integer"
done
for f in "${FRACTIONS[@]}"; do
	[[ "$f" =~ ^(0?\.[0-9]+|1(\.0*)?)$ ]] || bench_die "BENCH_FRACTIONS: $f is not a fraction in (0, 1]"
done

WRITE_MIX=(insert_comment@35 update_post_title@25 insert_post@15 delete_comment@15 update_user_name@10)
TVIEWS=(tv_user tv_post tv_comment)

bench_init freshness /tmp/pgtv-bench-fresh 54352
bench_need_cmd gnuplot gnuplot-nox
BUILD=$(bench_build_info)
MACHINE=$(bench_machine_info)
FAILED=0
DB=$PGTV_DATABASE

bench_cluster_start "track_commit_timestamp=on"
LOG0=$(bench_log_size)
[ "$(bench_sql "SHOW track_commit_timestamp")" = on ] || bench_die "track_commit_timestamp is not on"

bench_log "loading $USERS users, $POSTS posts, $COMMENTS comments; creating the TVIEWs"
bench_psql -v users="$USERS" -v posts="$POSTS" -v comments="$COMMENTS" \
	-f "$BENCH_DIR/fraiseql_setup.sql" >/dev/null
bench_create_extension "$DB" || bench_die "no engine slot"
bench_psql -c "SELECT pg_tviews_create(name, query, key) FROM bench_tview_def ORDER BY ord" \
	-c "ANALYZE tv_user, tv_post, tv_comment" >/dev/null 2>"$BENCH_TMP/create.err" ||
	{ cat "$BENCH_TMP/create.err" >&2; bench_die "pg_tviews_create failed"; }
bench_psql -f "$BENCH_DIR/freshness_setup.sql" >/dev/null
ENGINE=$(bench_wait_engine "$DB" 60) || bench_die "no engine"
bench_wait_catchup "$DB" 120 >/dev/null || bench_die "the engine did not catch up after creation"

PGBENCH_ARGS=(-n -c "$CLIENTS" -j "$JOBS" -T "$SECONDS_RUN"
	-D users="$USERS" -D posts="$POSTS" -D comments="$COMMENTS")
for s in "${WRITE_MIX[@]}"; do
	PGBENCH_ARGS+=(-f "$BENCH_DIR/fraiseql_writes/${s%@*}.sql@${s#*@}")
done

declare -A RATE TPS LAT CATCH BACKLOG CPU NTXN
PHASES=()

# phase NAME [RATE]
phase() {
	local name=$1 rate=${2:-} out since cpu0 cpu1 tps lat failed pid extra=()
	PHASES+=("$name")
	RATE[$name]=${rate:-max}
	bench_wait_catchup "$DB" 600 >/dev/null || bench_die "the engine did not catch up before phase $name"
	bench_sql "TRUNCATE bench_lag" >/dev/null
	bench_sql "CHECKPOINT" >/dev/null
	pid=$(bench_engine_pid "$DB")
	[ "$pid" = "$ENGINE" ] || { bench_log "the engine restarted (pid $ENGINE -> $pid)"; ENGINE=$pid; }
	cpu0=$(bench_cpu_s "$pid")
	since=$(bench_sql "SELECT clock_timestamp()")
	[ -n "$rate" ] && extra=(--rate="$rate")
	out="$BENCH_TMP/pgbench-$name.out"
	bench_log "phase $name: pgbench ${rate:+--rate=$rate }for ${SECONDS_RUN}s"
	if ! bench_pgbench "$DB" "${PGBENCH_ARGS[@]}" "${extra[@]}" >"$out" 2>&1; then
		tail -n 20 "$out" >&2
		bench_log "pgbench failed (phase $name)"
		FAILED=1
	fi
	read -r tps lat failed < <(bench_pgbench_parse "$out")
	[ "$failed" = 0 ] || { bench_log "$failed failed transactions (phase $name)"; FAILED=1; }
	TPS[$name]=$tps
	LAT[$name]=$lat
	NTXN[$name]=$(awk '/^number of transactions actually processed:/ { print $6 }' "$out")
	BACKLOG[$name]=$(bench_sql "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), e.applied_lsn)::bigint
		FROM pg_tviews_engines() e
		WHERE e.datid = (SELECT oid FROM pg_database WHERE datname = current_database())")
	if CATCH[$name]=$(bench_wait_catchup "$DB" 600); then :; else
		bench_log "pg_tviews_wait timed out (phase $name)"; FAILED=1
	fi
	cpu1=$(bench_cpu_s "$pid")
	CPU[$name]=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
	local n
	n=$(bench_sql "SELECT bench_collect_lag('$name', '$since')")
	bench_sql "TRUNCATE bench_lag" >/dev/null
	bench_log "phase $name: $tps tps, $n writes measured, backlog at the end $((BACKLOG[$name] / 1024)) kB," \
		"catch-up ${CATCH[$name]}s; engine: $(bench_engine_state "$DB")"
}

phase saturated
SAT=${TPS[saturated]%.*}
[ "${SAT:-0}" -gt 0 ] || bench_die "no saturated rate"
for f in "${FRACTIONS[@]}"; do
	label=$(awk -v f="$f" 'BEGIN { printf "%g%%", f * 100 }')
	phase "$label" "$(awk -v f="$f" -v s="${TPS[saturated]}" 'BEGIN { r = int(f * s + 0.5); print (r < 1 ? 1 : r) }')"
done

# ---- oracle ----
mism=0
for tv in "${TVIEWS[@]}"; do
	m=$(bench_oracle "$DB" "$tv")
	[ "$m" = 0 ] || bench_log "ORACLE FAILED: $tv differs from ${tv}_def by $m rows"
	mism=$((mism + m))
done
[ "$mism" = 0 ] || FAILED=1

# ---- per-phase percentiles ----
STATS=$(bench_sql "
	SELECT phase, count(*), count(lag_ms),
	       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms)::numeric, 1),
	       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY lag_ms)::numeric, 1),
	       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms)::numeric, 1),
	       round(max(lag_ms)::numeric, 1),
	       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY clock_lag_ms)::numeric, 1),
	       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY clock_lag_ms)::numeric, 1)
	FROM bench_write_lag GROUP BY phase")
declare -A P50 P95 P99 PMAX C50 C99 NW NEXACT
while IFS='|' read -r ph nw nexact p50 p95 p99 pmax c50 c99; do
	[ -n "$ph" ] || continue
	NW[$ph]=$nw NEXACT[$ph]=$nexact P50[$ph]=$p50 P95[$ph]=$p95 P99[$ph]=$p99 PMAX[$ph]=$pmax
	C50[$ph]=$c50 C99[$ph]=$c99
done <<<"$STATS"

# ---- lag over time: per second of the 50% and 90% phases ----
DAT="$BENCH_OUT/freshness-lag.dat"
PNG="$BENCH_OUT/freshness-lag.png"
PLOT_PHASES=()
for ph in 50% 90%; do [ -n "${NW[$ph]:-}" ] && PLOT_PHASES+=("$ph"); done
[ ${#PLOT_PHASES[@]} -gt 0 ] || PLOT_PHASES=("${PHASES[@]:1}")
{
	echo "# commit-to-visible lag per second (by the writer's commit time), ms"
	echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $MACHINE"
	echo "# blocks (gnuplot index): ${PLOT_PHASES[*]}"
	for ph in "${PLOT_PHASES[@]}"; do
		echo "# phase $ph: pgbench --rate=${RATE[$ph]}"
		echo "# second p50_ms p99_ms max_ms writes"
		bench_sql "
			SELECT s, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms)::numeric, 2),
			       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms)::numeric, 2),
			       round(max(lag_ms)::numeric, 2), count(*)
			FROM (SELECT floor(extract(epoch FROM writer_commit - min(writer_commit) OVER ()))::int AS s,
			             lag_ms
			      FROM bench_write_lag WHERE phase = '$ph' AND lag_ms IS NOT NULL) x
			GROUP BY s ORDER BY s" | tr '|' ' '
		printf '\n\n'
	done
} >"$DAT"
{
	echo "set terminal pngcairo size 1100,$((320 * ${#PLOT_PHASES[@]} + 60)) font 'sans,10'"
	echo "set output '$PNG'"
	echo "set multiplot layout ${#PLOT_PHASES[@]},1 title 'pg\\_tviews commit-to-visible lag per second (${SECONDS_RUN} s per phase, saturated rate ${TPS[saturated]%.*} tps)'"
	echo "set logscale y"
	echo "set grid"
	echo "set xlabel 'second of the phase (writer commit time)'"
	echo "set ylabel 'lag (ms)'"
	echo "set key top left horizontal"
	i=0
	for ph in "${PLOT_PHASES[@]}"; do
		echo "set title '$ph of saturated: pgbench --rate=${RATE[$ph]} (achieved ${TPS[$ph]%.*} tps); over the phase p50 ${P50[$ph]:-?} ms, p99 ${P99[$ph]:-?} ms' noenhanced"
		echo "plot '$DAT' index $i using 1:4 with lines lw 1 lc rgb '#d62728' title 'max', \\"
		echo "     '' index $i using 1:3 with linespoints pt 7 ps 0.4 lw 2 lc rgb '#ff7f0e' title 'p99', \\"
		echo "     '' index $i using 1:2 with linespoints pt 7 ps 0.4 lw 2 lc rgb '#1f77b4' title 'p50', \\"
		echo "     20 with lines dt 2 lc rgb '#1f77b4' title 'p50 target 20 ms', \\"
		echo "     250 with lines dt 2 lc rgb '#ff7f0e' title 'p99 target 250 ms'"
		i=$((i + 1))
	done
	echo "unset multiplot"
} >"$BENCH_TMP/plot.gp"
if ! gnuplot "$BENCH_TMP/plot.gp" 2>"$BENCH_TMP/gnuplot.err"; then
	cat "$BENCH_TMP/gnuplot.err" >&2
	bench_log "gnuplot failed"
	FAILED=1
fi

# ---- report ----
problems=$(bench_log_problems "$LOG0")
report="$BENCH_OUT/freshness.txt"
{
	echo "freshness: $USERS users, $POSTS posts, $COMMENTS comments; pgbench -c $CLIENTS -j $JOBS," \
		"${SECONDS_RUN}s per phase; saturated rate ${TPS[saturated]%.*} tps (engine running)"
	echo "mix: ${WRITE_MIX[*]}"
	echo "$MACHINE; PostgreSQL $(bench_sql 'SHOW server_version')"
	echo "build: $BUILD; $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo "lag = engine commit of the write's last TVIEW row - writer commit (commit timestamps), per write"
	echo
	printf '%-9s %6s %8s %7s %7s %7s %7s %8s %8s %9s %9s %9s %8s\n' phase rate tps writes \
		p50_ms p95_ms p99_ms max_ms clk_p50 clk_p99 backlogKB catchup_s eng_cpu
	for ph in "${PHASES[@]}"; do
		printf '%-9s %6s %8.1f %7s %7s %7s %7s %8s %8s %9s %9s %9s %8s\n' "$ph" "${RATE[$ph]}" \
			"${TPS[$ph]}" "${NW[$ph]:-0}" "${P50[$ph]:-n/a}" "${P95[$ph]:-n/a}" "${P99[$ph]:-n/a}" \
			"${PMAX[$ph]:-n/a}" "${C50[$ph]:-n/a}" "${C99[$ph]:-n/a}" \
			"$((BACKLOG[$ph] / 1024))" "${CATCH[$ph]}" \
			"$(bench_ratio "${CPU[$ph]}" "$SECONDS_RUN")"
	done
	echo "(writes: measured writes of the phase, out of the transactions pgbench made:" \
		"$(for ph in "${PHASES[@]}"; do printf '%s %s/%s; ' "$ph" "${NW[$ph]:-0}" "${NTXN[$ph]:-?}"; done | sed 's/; $//');"
	echo " deletes are not measurable. clk_*: trigger clock - written_at. backlogKB: WAL not yet applied when"
	echo " pgbench ended; catchup_s: pg_tviews_wait() after it; eng_cpu: engine CPU, cores, over the phase + catch-up)"
	for ph in "${PHASES[@]}"; do
		[ "${NW[$ph]:-0}" = "${NEXACT[$ph]:-0}" ] ||
			echo "note: $ph: $(( ${NW[$ph]:-0} - ${NEXACT[$ph]:-0} )) of the writes left out: their base row was written again later in the phase (its xmin, hence the writer's commit time, is gone)"
	done
	echo "oracle (tv EXCEPT ALL tv_def, both ways, at the end): $([ "$mism" = 0 ] && echo ok || echo "FAILED ($mism rows)")"
	echo "plot: ${PNG#"$BENCH_REPO"/} (data: ${DAT#"$BENCH_REPO"/})"
	if [ -n "$problems" ]; then
		echo
		echo "server log: $(wc -l <<<"$problems") ERROR/WARNING/FATAL lines, first ones:"
		head -n 5 <<<"$problems" | cut -c1-200
	fi
	echo
	if [ -n "${NW[50%]:-}" ]; then
		echo "at 50%: p50 ${P50[50%]} ms (target <= 20 ms), p99 ${P99[50%]} ms (target <= 250 ms)"
	fi
	[ "$FAILED" = 0 ] || { echo; echo "FAILED: see the messages above"; }
} | tee "$report"
bench_log "report saved in ${report#"$BENCH_REPO"/}"
exit "$FAILED"
