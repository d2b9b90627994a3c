#!/usr/bin/env bash
# Memory of the engine and of a decoding walsender under a steady write
# load: does either grow?
#
#   test/bench/memory.sh
#
# Three TVIEWs (single table, join, jsonb_agg) over tb_item, tb_parent and
# tb_child.  pgbench --rate=BENCH_RATE runs for BENCH_SECONDS a transaction
# that updates an item, inserts a child and deletes the oldest one,
# updates a child and, one time in ten, a parent.  Meanwhile the engine
# applies it, and pg_recvlogical streams its own slot with
# pg_tviews_decoder in json format to /dev/null (a walsender decoding the
# same WAL).  Every BENCH_SAMPLE_S seconds the memory of both processes is
# sampled:
#   VmRSS, RssAnon, RssShmem  /proc/<pid>/status
#   Pss, Private_Dirty        /proc/<pid>/smaps_rollup
# RSS counts every shared-buffer page the process has touched (RssShmem);
# Pss shares those between the processes that map them.  RssAnon is the
# process's own anonymous memory (its palloc'd heap): the leak indicator.
# Private_Dirty counts RssAnon plus the dirty shared-buffer pages no other
# process has mapped (e.g. TVIEW pages only the engine wrote), so it moves
# with the buffer traffic too.
# Printed: the series, the value after the warm-up (BENCH_WARMUP s,
# the baseline) and the growth ratio last / first-after-warm-up of each
# metric.  Written: test/bench/out/memory-rss.dat and a plot
# test/bench/out/memory-rss.png (gnuplot; installed with apt-get when
# missing).  At the end the TVIEWs are checked against their definitions (a
# difference is a failure, exit 1).  Never asserted otherwise.
#
# Environment:
#   BENCH_SECONDS=600       duration of the workload
#   BENCH_RATE=200          transactions per second (about 4.6 row changes each)
#   BENCH_ROWS=100000       items and children (parents: ROWS / 10)
#   BENCH_SAMPLE_S=10       sampling interval
#   BENCH_WARMUP=60         seconds before the baseline sample
#   BENCH_PORT=54364, BENCH_CLUSTER_DIR=/tmp/pgtv-bench-memory, BENCH_KEEP=1
#
# A copy of the report goes to test/bench/out/memory.txt.
set -euo pipefail
. "$(dirname "$0")/lib_engine.sh"

DURATION=${BENCH_SECONDS:-600}
RATE=${BENCH_RATE:-200}
ROWS=${BENCH_ROWS:-100000}
SAMPLE_S=${BENCH_SAMPLE_S:-10}
WARMUP=${BENCH_WARMUP:-60}
for v in DURATION RATE ROWS SAMPLE_S; do
	[[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || die "$v must be a positive integer"
done
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a non-negative integer"
PARENTS=$(((ROWS + 9) / 10))

if ! command -v gnuplot >/dev/null 2>&1; then
	log "installing gnuplot-nox"
	$PGTV_SUDO apt-get -y -q install gnuplot-nox >/dev/null 2>&1 ||
		{ $PGTV_SUDO apt-get -q update >/dev/null 2>&1 && $PGTV_SUDO apt-get -y -q install gnuplot-nox >/dev/null 2>&1; } ||
		warn "could not install gnuplot-nox: no plot"
fi

bench_setup memory 54364
DAT=$BENCH_OUT/memory-rss.dat
PNG=$BENCH_OUT/memory-rss.png
bench_start
BUILD=$(bench_build)

log "loading $ROWS items, $ROWS children of $PARENTS parents; three TVIEWs"
psql_b >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE tb_item (
	pk_item		bigint PRIMARY KEY,
	name		text NOT NULL,
	qty			integer NOT NULL,
	price		numeric(12,2) NOT NULL,
	updated_at	timestamptz NOT NULL
);
INSERT INTO tb_item
SELECT i, 'item ' || i, i % 100, (i % 10000) / 100.0, now() FROM generate_series(1, $ROWS) i;
CREATE TABLE tb_parent (
	pk_parent	bigint PRIMARY KEY,
	name		text NOT NULL,
	updated_at	timestamptz NOT NULL
);
INSERT INTO tb_parent SELECT i, 'parent ' || i, now() FROM generate_series(1, $PARENTS) i;
CREATE TABLE tb_child (
	pk_child	bigint PRIMARY KEY,
	fk_parent	bigint NOT NULL,
	name		text NOT NULL,
	qty			integer NOT NULL,
	updated_at	timestamptz NOT NULL
);
INSERT INTO tb_child
SELECT i, (i - 1) / 10 + 1, 'child ' || i, i % 100, now() FROM generate_series(1, $ROWS) i;
CREATE INDEX ON tb_child (fk_parent);
CREATE SEQUENCE tb_child_seq START $((ROWS + 1));
VACUUM ANALYZE;

SELECT pg_tviews_create('tv_item', \$q\$
SELECT i.pk_item, jsonb_build_object('id', i.pk_item, 'name', i.name, 'qty', i.qty,
                                     'price', i.price, 'updated_at', i.updated_at) AS data
  FROM tb_item i \$q\$);
SELECT pg_tviews_create('tv_child', \$q\$
SELECT c.pk_child, c.fk_parent,
       jsonb_build_object('id', c.pk_child, 'name', c.name, 'qty', c.qty,
                          'parent', jsonb_build_object('id', p.pk_parent, 'name', p.name)) AS data
  FROM tb_child c JOIN tb_parent p ON p.pk_parent = c.fk_parent \$q\$);
SELECT pg_tviews_create('tv_parent', \$q\$
SELECT p.pk_parent,
       jsonb_build_object('id', p.pk_parent, 'name', p.name, 'children', coalesce((
           SELECT jsonb_agg(jsonb_build_object('id', c.pk_child, 'qty', c.qty) ORDER BY c.pk_child)
             FROM tb_child c WHERE c.fk_parent = p.pk_parent), '[]'::jsonb)) AS data
  FROM tb_parent p \$q\$);
SQL
[ "$(sql_value "SELECT pg_tviews_wait('5 min')")" = t ] || die "the engine did not catch up after create"

# ---- the decoding walsender ----
RECV=("$BINDIR/pg_recvlogical" -h "$PGTV_SOCKET_DIR" -p "$PGTV_PORT" -U "$PGSU" -d "$PGTV_DATABASE"
	--slot bench_recv)
"${RECV[@]}" --create-slot -P pg_tviews_decoder
"${RECV[@]}" --start -o format=json -f /dev/null 2>"$PGTV_CLUSTER_DIR/pg_recvlogical.err" &
recv_pid=$!
BENCH_BG_PIDS+=("$recv_pid")
wal_pid=
for ((i = 0; i < 100; i++)); do
	wal_pid=$(sql_value "SELECT pid FROM pg_stat_replication WHERE application_name = 'pg_recvlogical'")
	[ -n "$wal_pid" ] && break
	kill -0 "$recv_pid" 2>/dev/null || { cat "$PGTV_CLUSTER_DIR/pg_recvlogical.err" >&2; die "pg_recvlogical exited"; }
	sleep 0.1
done
[ -n "$wal_pid" ] || die "no walsender for pg_recvlogical"
eng_pid=$(engine_pid)
log "engine pid $eng_pid, walsender pid $wal_pid (pg_recvlogical $recv_pid)"

# ---- workload ----
WORK=$PGTV_CLUSTER_DIR/memory_work.sql
cat >"$WORK" <<SQL
\set i random(1, $ROWS)
\set c random(1, $((ROWS - 1)))
\set p random(1, $PARENTS)
\set r random(1, 10)
BEGIN;
UPDATE tb_item SET qty = qty + 1, price = price + 0.01, updated_at = now() WHERE pk_item = :i;
SELECT nextval('tb_child_seq') AS nid \gset
INSERT INTO tb_child VALUES (:nid, :p, 'child ' || :nid, 1, now());
DELETE FROM tb_child WHERE pk_child = :nid - $ROWS;
UPDATE tb_child SET qty = qty + 1, updated_at = now() WHERE pk_child = :nid - :c;
\if :r = 1
UPDATE tb_parent SET name = 'parent ' || :p || ' ' || :nid, updated_at = now() WHERE pk_parent = :p;
\endif
END;
SQL

# kB values of a process: VmRSS RssAnon RssShmem Pss Private_Dirty
mem_of() {
	local pid=$1 st sm
	st=$(cat "/proc/$pid/status" 2>/dev/null) || { echo "NaN NaN NaN NaN NaN"; return; }
	sm=$(cat "/proc/$pid/smaps_rollup" 2>/dev/null) || sm=
	awk '/^VmRSS:/{r=$2} /^RssAnon:/{a=$2} /^RssShmem:/{s=$2} END{printf "%s %s %s ", r, a, s}' <<<"$st"
	awk '/^Pss:/{p=$2} /^Private_Dirty:/{d=$2} END{printf "%s %s\n", (p == "" ? "NaN" : p), (d == "" ? "NaN" : d)}' <<<"$sm"
}

{
	echo "# test/bench/memory.sh: kB; engine pid $eng_pid, walsender pid $wal_pid; $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "# t_s eng_rss eng_anon eng_shmem eng_pss eng_privdirty wal_rss wal_anon wal_shmem wal_pss wal_privdirty engine_changes"
} >"$DAT"
sample() {	# t
	local e w ch p
	p=$(engine_pid)
	if [ "$p" != "$eng_pid" ]; then
		warn "engine pid changed: $eng_pid -> $p (restart)"
		ENGINE_RESTARTS=$((ENGINE_RESTARTS + 1))
		eng_pid=$p
	fi
	e=$(mem_of "$eng_pid")
	w=$(mem_of "$wal_pid")
	ch=$(engine_counters | cut -d'|' -f2)
	echo "$1 $e $w $ch" >>"$DAT"
	printf '%6s s  engine rss %6s anon %6s pss %6s privdirty %6s | walsender rss %6s anon %6s pss %6s privdirty %6s kB | %s changes\n' \
		"$1" $(awk '{print $1, $2, $4, $5}' <<<"$e") $(awk '{print $1, $2, $4, $5}' <<<"$w") "$ch" >&2
}
ENGINE_RESTARTS=0

log "pgbench --rate=$RATE for $DURATION s; sampling every $SAMPLE_S s"
IFS='|' read -r b0 c0 k0 rs0 <<<"$(engine_counters)"
PGOPTIONS="-c synchronous_commit=off" pgbench_b -n -c 2 -j 2 -R "$RATE" -T "$DURATION" -f "$WORK" \
	>"$PGTV_CLUSTER_DIR/pgbench.out" 2>&1 &
pgbench_pid=$!
BENCH_BG_PIDS+=("$pgbench_pid")
t_start=$(now_s)
sample 0
# samples while the load runs (the last one at least a second before its
# end: when the pgbench clients exit, the shared pages only they shared
# with the sampled process turn private, and Pss and Private_Dirty jump)
n=1
while [ $((n * SAMPLE_S)) -le $((DURATION - 1)) ]; do
	target=$(awk -v s="$t_start" -v n="$n" -v i="$SAMPLE_S" 'BEGIN{printf "%.3f", s + n * i}')
	wait_s=$(awk -v t="$target" -v now="$(now_s)" 'BEGIN{d = t - now; printf "%.3f", (d > 0 ? d : 0)}')
	sleep "$wait_s"
	kill -0 "$pgbench_pid" 2>/dev/null || break
	kill -0 "$recv_pid" 2>/dev/null || { warn "pg_recvlogical exited"; BENCH_FAILED=1; }
	sample $((n * SAMPLE_S))
	n=$((n + 1))
done
wait "$pgbench_pid" || { cat "$PGTV_CLUSTER_DIR/pgbench.out" >&2; die "pgbench failed"; }
[ "$(sql_value "SELECT pg_tviews_wait('5 min')")" = t ] || { warn "pg_tviews_wait timed out"; BENCH_FAILED=1; }
IFS='|' read -r b1 c1 k1 rs1 <<<"$(engine_counters)"
kill -0 "$recv_pid" 2>/dev/null || { warn "pg_recvlogical is not running"; BENCH_FAILED=1; }

# ---- oracle ----
if out=$(bench_oracle tv_item tv_child tv_parent); then ORACLE=ok; else ORACLE=FAILED; BENCH_FAILED=1; fi
log "$out"

kill "$recv_pid" 2>/dev/null || true
wait "$recv_pid" 2>/dev/null || true
BENCH_BG_PIDS=()
psql_b -c "SELECT pg_drop_replication_slot('bench_recv')" >/dev/null 2>&1 || true

# ---- plot ----
if command -v gnuplot >/dev/null 2>&1; then
	gnuplot <<GP || warn "gnuplot failed"
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output '$PNG'
set title "pg_tviews engine and a pg_tviews_decoder (json) walsender\\nmemory under pgbench --rate=$RATE for $DURATION s, sampled every $SAMPLE_S s"
set xlabel 'minutes'
set ylabel 'MiB'
set key outside right top
set grid
plot '$DAT' using (\$1/60):(\$2/1024) with linespoints lw 2 pt 7 ps 0.5 lc rgb '#1f77b4' title 'engine VmRSS', \
     '' using (\$1/60):(\$5/1024) with linespoints lw 2 pt 7 ps 0.5 dt 2 lc rgb '#1f77b4' title 'engine Pss', \
     '' using (\$1/60):(\$6/1024) with linespoints lw 2 pt 5 ps 0.5 lc rgb '#aec7e8' title 'engine Private_Dirty', \
     '' using (\$1/60):(\$3/1024) with lines lw 1 lc rgb '#17becf' title 'engine RssAnon', \
     '' using (\$1/60):(\$7/1024) with linespoints lw 2 pt 7 ps 0.5 lc rgb '#d62728' title 'walsender VmRSS', \
     '' using (\$1/60):(\$10/1024) with linespoints lw 2 pt 7 ps 0.5 dt 2 lc rgb '#d62728' title 'walsender Pss', \
     '' using (\$1/60):(\$11/1024) with linespoints lw 2 pt 5 ps 0.5 lc rgb '#ff9896' title 'walsender Private_Dirty', \
     '' using (\$1/60):(\$8/1024) with lines lw 1 lc rgb '#e377c2' title 'walsender RssAnon'
GP
fi

# ---- report ----
# baseline: the first sample at or after the warm-up (else the first)
summary() {	# column label
	awk -v c="$1" -v w="$WARMUP" -v l="$2" '
		/^#/ {next}
		{ n++; t[n] = $1; v[n] = $c }
		END {
			b = 0; for (i = 1; i <= n; i++) if (t[i] >= w) { b = i; break }
			if (b == 0) b = 1
			mx = v[1]; for (i = 1; i <= n; i++) if (v[i] > mx) mx = v[i]
			printf "%-24s %9.1f %9.1f %9.1f %9.1f %9.1f %8.3f\n", l, v[1] / 1024, v[b] / 1024,
				v[n] / 1024, mx / 1024, (v[n] - v[b]) / 1024, (v[b] > 0 ? v[n] / v[b] : 0)
		}' "$DAT"
}
tps=$(grep -E '^tps' "$PGTV_CLUSTER_DIR/pgbench.out" | head -1 | awk '{print $3}')
{
	echo "memory: pgbench --rate=$RATE (synchronous_commit=off) for $DURATION s on three TVIEWs" \
		"(single, join, jsonb_agg), with pg_recvlogical streaming pg_tviews_decoder json to /dev/null"
	echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $(sql_value 'SHOW server_version');" \
		"shared_buffers $(sql_value 'SHOW shared_buffers'); $ROWS items/children, $PARENTS parents"
	echo "build: $BUILD"
	echo "pgbench: tps $tps; engine: $((b1 - b0)) batches, $((c1 - c0)) changes, $((k1 - k0)) keys refreshed," \
		"$ENGINE_RESTARTS restarts seen"
	echo
	echo "series (kB; data file ${DAT#"$BENCH_REPO"/}):"
	awk '/^#/ {next} {printf "  %6s s  engine rss %7s anon %6s pss %7s privdirty %6s | walsender rss %7s anon %6s pss %7s privdirty %6s\n",
		$1, $2, $3, $5, $6, $7, $8, $10, $11}' "$DAT"
	echo
	echo "MiB; baseline = first sample at or after ${WARMUP} s; growth = last / baseline"
	printf '%-24s %9s %9s %9s %9s %9s %8s\n' metric start baseline last max last-base growth
	summary 2 "engine VmRSS"
	summary 3 "engine RssAnon"
	summary 4 "engine RssShmem"
	summary 5 "engine Pss"
	summary 6 "engine Private_Dirty"
	summary 7 "walsender VmRSS"
	summary 8 "walsender RssAnon"
	summary 9 "walsender RssShmem"
	summary 10 "walsender Pss"
	summary 11 "walsender Private_Dirty"
	echo
	echo "leak indicator (RssAnon growth last / baseline): engine $(summary 3 x | awk '{print $NF}')," \
		"walsender $(summary 8 x | awk '{print $NF}')"
	echo "plot: ${PNG#"$BENCH_REPO"/}$([ -s "$PNG" ] || echo ' (not written)')"
	echo "oracle: $ORACLE"
	bench_log_check
} | tee "$BENCH_REPORT"
log "report saved in ${BENCH_REPORT#"$BENCH_REPO"/}"
[ "$BENCH_FAILED" = 0 ] || { echo "memory: FAILED (see above)" >&2; exit 1; }
