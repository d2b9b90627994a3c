#!/usr/bin/env bash
# Write-path cost: writer throughput with no read models, with pg_tviews,
# and with trigger-maintained read models.
#
#   test/bench/write_cost.sh
#
# A FraiseQL-style schema (fraiseql_setup.sql): tb_user, tb_post (fk_user),
# tb_comment (fk_post, fk_user), with BENCH_USERS/POSTS/COMMENTS rows, and
# three read models: tv_user (the user), tv_post (post + author object by a
# join + comments as a jsonb_agg subquery), tv_comment (comment + author).
# The writers are pgbench, saturated (no --rate), BENCH_CLIENTS clients on
# BENCH_JOBS threads for BENCH_SECONDS, running the mix of
# fraiseql_writes/*.sql, one row per transaction:
#
#   35% insert comment, 25% update post title, 15% insert post,
#   15% delete comment, 10% update user name (embedded in ~5 posts and
#   ~20 comments of that user)
#
# Three configurations, each on a fresh copy of the same data (CREATE
# DATABASE ... TEMPLATE of a database loaded once):
#
#   baseline   plain tables, no read models (the extension is not created
#              in that database: no engine, no slot)
#   pg_tviews  CREATE EXTENSION pg_tviews + the 3 TVIEWs
#              (pg_tviews_create()), engine running and caught up before
#              the run.  After the run: the backlog left, the catch-up time
#              (pg_tviews_wait()), the engine's CPU time during the run
#              and its memory (RSS, private), and the oracle
#   triggers   the same 3 read tables (same indexes) maintained in the
#              writer's transaction by per-key recompute triggers
#              (write_cost_triggers.sql: AFTER ... FOR EACH ROW on each base
#              table, recompute of the affected keys with the statement the
#              engine uses, key locks so that it stays correct under
#              concurrency); then the oracle
#   paused     (optional, not in the default set: BENCH_CONFIGS="baseline
#              pg_tviews triggers paused") the pg_tviews configuration with
#              the engine switched off (pg_tviews_system_disable()) during
#              the run: what the writers pay without the engine's work
#              (the WAL of REPLICA IDENTITY FULL on tb_comment, which
#              tv_post's lineage needs); enabled after the run, caught up,
#              oracle-checked
#
# The oracle: for each read table, (tv EXCEPT ALL tv_def) and (tv_def
# EXCEPT ALL tv) are empty.  BENCH_RUNS rounds (default 3), the order of
# the configurations rotating each round; the report gives the medians
# (TPS, pgbench's average latency, WAL bytes per writer transaction with
# the maintenance's WAL included) and the ratios to the baseline:
#
#   pg_tviews/baseline 0.xx (target >= 0.90)
#
# The cluster: scripts/cluster.sh with PGTV_CLUSTER_DIR=/tmp/pgtv-bench-write,
# port 54351, autovacuum off, shared_buffers 1GB, checkpoints only by hand
# (one before each timed run), synchronous_commit on (the default).
# Timings are printed, never asserted: the exit status is 0 unless
# something failed; a read table that differs from its definition, or
# pgbench transactions that failed, are failures (exit 1).
#
# Environment (defaults):
#   BENCH_SECONDS=30     duration of each timed pgbench run
#   BENCH_RUNS=3         rounds (each runs the three configurations)
#   BENCH_USERS=10000 BENCH_POSTS=50000 BENCH_COMMENTS=200000
#   BENCH_CLIENTS=4 BENCH_JOBS=2
#   BENCH_CONFIGS="baseline pg_tviews triggers"   a subset, or + paused
#   BENCH_TRIGGER_LOCKS=0  triggers without their key locks: wrong under
#                        concurrency (the oracle then fails: exit 1)
#   BENCH_PORT=54351 BENCH_CLUSTER_DIR=/tmp/pgtv-bench-write
#   BENCH_KEEP=1         leave the cluster running (the databases of the
#                        last round stay)
#
# Total runtime with the defaults: 7 to 9 minutes on 2 cores (per
# configuration and round: 30 s of pgbench plus 10-25 s of database copy,
# TVIEW or trigger setup, checkpoint, catch-up and oracle; plus about 20 s
# to load the template).  With BENCH_SECONDS=10 BENCH_RUNS=1
# BENCH_USERS=1000 BENCH_POSTS=5000 BENCH_COMMENTS=20000: about 1 minute.
#
# Runs as root (the server then runs as postgres, clients connect as
# postgres) or as a normal user.  Needs the extension installed.  A copy
# of the report goes to test/bench/out/write_cost.txt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SECONDS_RUN=${BENCH_SECONDS:-30}
RUNS=${BENCH_RUNS:-3}
USERS=${BENCH_USERS:-10000}
POSTS=${BENCH_POSTS:-50000}
COMMENTS=${BENCH_COMMENTS:-200000}
CLIENTS=${BENCH_CLIENTS:-4}
JOBS=${BENCH_JOBS:-2}
read -r -a CONFIGS <<<"${BENCH_CONFIGS:-baseline pg_tviews triggers}"
for v in SECONDS_RUN RUNS USERS POSTS COMMENTS CLIENTS JOBS; do
	[[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || bench_die "$v must be a positive integer"
done
for c in "${CONFIGS[@]}"; do
	case "$c" in baseline | pg_tviews | triggers | paused) ;; *) bench_die "unknown configuration $c" ;; esac
done

WRITE_MIX=(insert_comment@35 update_post_title@25 insert_post@15 delete_comment@15 update_user_name@10)
TVIEWS=(tv_user tv_post tv_comment)

bench_init write_cost /tmp/pgtv-bench-write 54351
BUILD=$(bench_build_info)
MACHINE=$(bench_machine_info)
LOG0=0
FAILED=0

bench_cluster_start
LOG0=$(bench_log_size)

bench_log "template database: $USERS users, $POSTS posts, $COMMENTS comments"
bench_sql postgres "CREATE DATABASE bench_tpl"
bench_psql -d bench_tpl -v users="$USERS" -v posts="$POSTS" -v comments="$COMMENTS" \
	-f "$BENCH_DIR/fraiseql_setup.sql" >/dev/null

PGBENCH_ARGS=(-n -c "$CLIENTS" -j "$JOBS" -T "$SECONDS_RUN"
	-D users="$USERS" -D posts="$POSTS" -D comments="$COMMENTS")
for s in "${WRITE_MIX[@]}"; do
	PGBENCH_ARGS+=(-f "$BENCH_DIR/fraiseql_writes/${s%@*}.sql@${s#*@}")
done

drop_db() {
	local db=$1
	if [ "$(bench_sql "$db" "SELECT count(*) FROM pg_extension WHERE extname = 'pg_tviews'")" = 1 ]; then
		bench_sql "$db" "DROP EXTENSION pg_tviews" >/dev/null	# stops the engine, drops its slot
	fi
	bench_sql postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null
}

declare -A TPS LAT WAL ENGINE_CPU CATCHUP BACKLOG RSS

engine_applied_backlog() {
	bench_sql "$1" "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), e.applied_lsn)::bigint
		FROM pg_tviews_engines() e
		WHERE e.datid = (SELECT oid FROM pg_database WHERE datname = current_database())"
}

# run_config CONFIG ROUND
run_config() {
	local cfg=$1 round=$2 db="bench_${1}_$2" out pid="" cpu0="" cpu1 tps lat failed
	local mism=0 m tv lsn0 ntx extra=""
	bench_sql postgres "CREATE DATABASE $db TEMPLATE bench_tpl" >/dev/null
	case "$cfg" in
		pg_tviews | paused)
			bench_create_extension "$db" || bench_die "no engine slot"
			bench_psql -d "$db" -c "SELECT pg_tviews_create(name, query, key) FROM bench_tview_def ORDER BY ord" \
				-c "ANALYZE tv_user, tv_post, tv_comment" >/dev/null 2>"$BENCH_TMP/create.err" ||
				{ cat "$BENCH_TMP/create.err" >&2; bench_die "pg_tviews_create failed"; }
			pid=$(bench_wait_engine "$db" 60) || bench_die "no engine"
			bench_wait_catchup "$db" 120 >/dev/null || bench_die "engine did not catch up before the run"
			if [ "$cfg" = paused ]; then
				bench_sql "$db" "SELECT pg_tviews_system_disable('write_cost.sh: paused configuration')" >/dev/null
				pid=""
			fi
			;;
		triggers)
			bench_psql -d "$db" -f "$BENCH_DIR/write_cost_triggers.sql" >/dev/null
			if [ "${BENCH_TRIGGER_LOCKS:-1}" = 0 ]; then
				bench_sql "$db" "CREATE OR REPLACE FUNCTION bench_lock_keys(class integer, keys integer[])
					RETURNS void LANGUAGE plpgsql AS 'BEGIN END'" >/dev/null
			fi
			;;
	esac
	bench_sql "$db" "CHECKPOINT" >/dev/null
	[ -n "$pid" ] && cpu0=$(bench_cpu_s "$pid")
	lsn0=$(bench_sql "$db" "SELECT pg_current_wal_lsn()")
	out="$BENCH_TMP/pgbench-$cfg-$round.out"
	if ! bench_pgbench "$db" "${PGBENCH_ARGS[@]}" >"$out" 2>&1; then
		tail -n 20 "$out" >&2
		bench_log "pgbench failed ($cfg, round $round)"
		FAILED=1
	fi
	read -r tps lat failed < <(bench_pgbench_parse "$out")
	[ "$failed" = 0 ] || { bench_log "$failed failed transactions ($cfg, round $round)"; FAILED=1; }
	ntx=$(awk '/^number of transactions actually processed:/ { print $6 }' "$out")
	TPS[$cfg]="${TPS[$cfg]:-} $tps"
	LAT[$cfg]="${LAT[$cfg]:-} $lat"
	case "$cfg" in
		pg_tviews)
			local backlog catch
			backlog=$(engine_applied_backlog "$db")
			if catch=$(bench_wait_catchup "$db" 600); then :; else
				bench_log "pg_tviews_wait timed out after ${catch}s"; FAILED=1
			fi
			cpu1=$(bench_cpu_s "$pid")
			if [ "$(bench_engine_pid "$db")" = "$pid" ]; then
				ENGINE_CPU[$round]=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
			else
				bench_log "the engine restarted during the run"
				ENGINE_CPU[$round]=n/a
			fi
			CATCHUP[$round]=$catch
			BACKLOG[$round]=$backlog
			RSS[$round]="$(bench_rss_kb "$pid")/$(bench_private_kb "$pid")"
			extra=", backlog $((backlog / 1024)) kB, catch-up ${catch}s, engine cpu ${ENGINE_CPU[$round]}s (run + catch-up), rss/private ${RSS[$round]} kB"
			bench_log "engine: $(bench_engine_state "$db")"
			;;
		paused)
			# the WAL of the writers alone; then let the engine apply the backlog
			WAL[$cfg]="${WAL[$cfg]:-} $(bench_sql "$db" "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0') / greatest($ntx, 1))")"
			bench_sql "$db" "SELECT pg_tviews_system_enable()" >/dev/null
			bench_wait_engine "$db" 60 >/dev/null || bench_die "no engine after pg_tviews_system_enable()"
			local catch
			if catch=$(bench_wait_catchup "$db" 600); then :; else
				bench_log "pg_tviews_wait timed out after ${catch}s"; FAILED=1
			fi
			extra=", catch-up of the whole run after enabling ${catch}s"
			;;
	esac
	# WAL per transaction, maintenance included (the engine's, caught up)
	[ "$cfg" = paused ] ||
		WAL[$cfg]="${WAL[$cfg]:-} $(bench_sql "$db" "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0') / greatest($ntx, 1))")"
	if [ "$cfg" != baseline ]; then
		for tv in "${TVIEWS[@]}"; do
			m=$(bench_oracle "$db" "$tv")
			[ "$m" = 0 ] || bench_log "ORACLE FAILED: $tv differs from ${tv}_def by $m rows ($cfg, round $round)"
			mism=$((mism + m))
		done
		[ "$mism" = 0 ] || FAILED=1
		extra+=", oracle $([ "$mism" = 0 ] && echo ok || echo "FAILED ($mism rows)")"
	fi
	bench_log "round $round/$RUNS $cfg: tps $tps, latency ${lat} ms, WAL/txn ${WAL[$cfg]##* } B$extra"
	if [ "${BENCH_KEEP:-}" = 1 ] && [ "$round" = "$RUNS" ]; then return 0; fi
	drop_db "$db"
}

n=${#CONFIGS[@]}
for ((r = 1; r <= RUNS; r++)); do
	for ((k = 0; k < n; k++)); do
		run_config "${CONFIGS[$(((k + r - 1) % n))]}" "$r"
	done
done

# ---- report ----
declare -A MTPS MLAT MWAL
for c in "${CONFIGS[@]}"; do
	MTPS[$c]=$(bench_median "${TPS[$c]}")
	MLAT[$c]=$(bench_median "${LAT[$c]}")
	MWAL[$c]=$(bench_median "${WAL[$c]}")
done
problems=$(bench_log_problems "$LOG0")
report="$BENCH_OUT/write_cost.txt"
{
	echo "write-path cost: $USERS users, $POSTS posts, $COMMENTS comments;" \
		"pgbench -c $CLIENTS -j $JOBS -T $SECONDS_RUN, saturated; $RUNS rounds, medians"
	echo "mix: ${WRITE_MIX[*]}"
	echo "$MACHINE; PostgreSQL $(bench_sql 'SHOW server_version')"
	echo "build: $BUILD; $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo
	printf '%-10s %8s %8s %8s %9s   %s\n' config tps lat_ms vs_base WAL/txn "tps per round"
	for c in "${CONFIGS[@]}"; do
		printf '%-10s %8.1f %8.3f %8s %9.0f  %s\n' "$c" "${MTPS[$c]}" "${MLAT[$c]}" \
			"$(bench_ratio "${MTPS[$c]}" "${MTPS[baseline]:-n/a}")" "${MWAL[$c]}" \
			"$(for t in ${TPS[$c]}; do printf '%.0f ' "$t"; done)"
	done
	echo "(medians; WAL/txn: bytes of WAL per writer transaction, the maintenance included:"
	echo " the triggers' writes, the engine's refreshes up to its catch-up; paused: the writers' WAL only)"
	echo
	if [ -n "${MTPS[pg_tviews]:-}" ]; then
		rounds=$(seq 1 "$RUNS" | tr '\n' ' ')
		med_catch=$(bench_median "$(for r in $rounds; do echo "${CATCHUP[$r]:-}"; done | tr '\n' ' ')")
		med_cpu=$(bench_median "$(for r in $rounds; do echo "${ENGINE_CPU[$r]:-}"; done | tr '\n' ' ')")
		echo "pg_tviews after the run: catch-up (pg_tviews_wait) median ${med_catch}s" \
			"[$(for r in $rounds; do printf '%s ' "${CATCHUP[$r]:-}"; done | sed 's/ $//')]," \
			"backlog at the end of the run [$(for r in $rounds; do printf '%s ' "$(( ${BACKLOG[$r]:-0} / 1024 ))kB"; done | sed 's/ $//')]"
		echo "engine CPU during run + catch-up: median ${med_cpu}s for ${SECONDS_RUN}s of writes" \
			"($(bench_ratio "$med_cpu" "$SECONDS_RUN") of a core)"
		echo "engine memory after the run, RSS/private (RssAnon; RSS also counts the shared buffers it touched):" \
			"[$(for r in $rounds; do printf '%s ' "${RSS[$r]:-}"; done | sed 's/ $//')] kB"
	fi
	oracle_line="oracle (tv EXCEPT ALL tv_def, both ways, every round):"
	if [ "$FAILED" = 0 ]; then echo "$oracle_line ok"; else echo "$oracle_line see FAILED above / errors"; fi
	echo
	[ -n "${MTPS[pg_tviews]:-}" ] && [ -n "${MTPS[baseline]:-}" ] &&
		echo "pg_tviews/baseline $(bench_ratio "${MTPS[pg_tviews]}" "${MTPS[baseline]}")x (target >= 0.90)"
	[ -n "${MTPS[triggers]:-}" ] && [ -n "${MTPS[baseline]:-}" ] &&
		echo "triggers/baseline $(bench_ratio "${MTPS[triggers]}" "${MTPS[baseline]}")x"
	[ -n "${MTPS[paused]:-}" ] && [ -n "${MTPS[baseline]:-}" ] &&
		echo "paused/baseline $(bench_ratio "${MTPS[paused]}" "${MTPS[baseline]}")x (pg_tviews, engine switched off during the run)"
	[ -n "${MTPS[pg_tviews]:-}" ] && [ -n "${MTPS[triggers]:-}" ] &&
		echo "pg_tviews/triggers $(bench_ratio "${MTPS[pg_tviews]}" "${MTPS[triggers]}")x"
	if [ -n "$problems" ]; then
		echo
		echo "server log: $(wc -l <<<"$problems") ERROR/WARNING/FATAL lines, first ones:"
		head -n 5 <<<"$problems" | cut -c1-200
	fi
	[ "$FAILED" = 0 ] || { echo; echo "FAILED: see the messages above"; }
} | tee "$report"
bench_log "report saved in ${report#"$BENCH_REPO"/}"
exit "$FAILED"
