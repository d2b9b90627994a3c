#!/usr/bin/env bash
# Run the pg_tviews test layers against servers this script starts itself.
# Must run as an unprivileged user (scripts/test.sh arranges that), from a
# tree where the extension is already built and installed.
#
#   scripts/run-tests.sh [regress] [isolation] [tap] [pgtap]   (default: all)
#
# Environment: PGTV_TAP_TESTS="test/t/010_x.pl ..." limits the TAP files;
# PGTV_LONG=1 asks the TAP tests for their long versions.
. "$(dirname "$0")/lib.sh"
cd "$PGTV_REPO"

BINDIR=$(pgtv_bindir)
PGXS_SRC=$(dirname "$(pg_config --pgxs)")/..
PG_REGRESS=$PGXS_SRC/test/regress/pg_regress
PG_ISOLATION_REGRESS=$PGXS_SRC/test/isolation/pg_isolation_regress
export PATH="$BINDIR:$PATH"

layers=("$@")
[ ${#layers[@]} -gt 0 ] || layers=(regress isolation tap pgtap)

PASS=0
FAIL=0
FAILED_LAYERS=()

# count "name ... ok" / "name ... FAILED" lines of pg_regress output
count_regress() {
	local out=$1 p f
	p=$(grep -cE '^(ok|test| ) .* \.\.\. +ok|^ok [0-9]+ ' "$out" || true)
	f=$(grep -cE '\.\.\. +FAILED|^not ok [0-9]+ ' "$out" || true)
	PASS=$((PASS + p)); FAIL=$((FAIL + f))
}

# count per-file lines of prove / pg_prove output
count_prove() {
	local out=$1 p f
	p=$(grep -cE '^[^ ]+\.(pl|sql|pg) \.+ ok' "$out" || true)
	f=$(grep -E '^[^ ]+\.(pl|sql|pg) \.+ ' "$out" | grep -cvE '\.+ ok' || true)
	PASS=$((PASS + p)); FAIL=$((FAIL + f))
}

run_regress() {
	local tests
	[ -f test/schedule ] || { pgtv_log "regress: no test/schedule"; return 0; }
	scripts/gen-test-conf.sh > test/regress.conf
	rm -rf tmp_check_regress results regression.diffs regression.out
	pgtv_log "pg_regress"
	local out=/tmp/pgtv-regress.$$.out rc=0
	"$PG_REGRESS" --inputdir=. --bindir="$BINDIR" \
		--temp-instance=tmp_check_regress --temp-config=test/regress.conf \
		--load-extension=pg_tviews --dbname=contrib_regression \
		--schedule=test/schedule 2>&1 | tee "$out" || rc=$?
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
	count_regress "$out"
	rm -f "$out"
	[ $rc = 0 ] || FAILED_LAYERS+=(regress)
}

run_isolation() {
	local specs
	specs=$(ls test/isolation/specs/*.spec 2>/dev/null | sed 's|.*/||; s|\.spec$||' | sort)
	[ -n "$specs" ] || { pgtv_log "isolation: no specs yet"; return 0; }
	scripts/gen-test-conf.sh > test/regress.conf
	rm -rf tmp_check_iso output_iso
	pgtv_log "pg_isolation_regress"
	local out=/tmp/pgtv-iso.$$.out rc=0
	"$PG_ISOLATION_REGRESS" --inputdir=test/isolation --outputdir=output_iso \
		--bindir="$BINDIR" --temp-instance=tmp_check_iso \
		--temp-config=test/regress.conf --load-extension=pg_tviews \
		--dbname=isolation_regression $specs 2>&1 | tee "$out" || rc=$?
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
	count_regress "$out"
	rm -f "$out"
	[ $rc = 0 ] || FAILED_LAYERS+=(isolation)
}

run_tap() {
	local files=${PGTV_TAP_TESTS:-$(ls test/t/*.pl 2>/dev/null | sort)}
	[ -n "$files" ] || { pgtv_log "tap: no tests"; return 0; }
	rm -rf test/tmp_check
	pgtv_log "TAP (prove)"
	local out=/tmp/pgtv-tap.$$.out rc=0
	TESTDIR="$PGTV_REPO/test" PG_REGRESS="$PG_REGRESS" PGTV_REPO="$PGTV_REPO" \
		prove -I "$PGXS_SRC/test/perl" -I "$PGTV_REPO/test/perl" $files 2>&1 |
		tee "$out" || rc=$?
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
	count_prove "$out"
	rm -f "$out"
	[ $rc = 0 ] || FAILED_LAYERS+=(tap)
}

run_pgtap() {
	local files
	files=$(ls test/pgtap/*.sql 2>/dev/null | sort)
	[ -n "$files" ] || { pgtv_log "pgtap: no tests"; return 0; }
	pgtv_log "pgTAP (pg_prove)"
	export PGTV_CLUSTER_DIR="$PGTV_REPO/tmp_check_pgtap" PGTV_PORT=${PGTV_PGTAP_PORT:-54339}
	scripts/cluster.sh destroy
	scripts/cluster.sh start
	scripts/cluster.sh psql -qc "CREATE EXTENSION IF NOT EXISTS pgtap"
	local out=/tmp/pgtv-pgtap.$$.out rc=0
	pg_prove -h /tmp -p "$PGTV_PORT" -d pg_tviews $files 2>&1 | tee "$out" || rc=$?
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
	count_prove "$out"
	rm -f "$out"
	scripts/cluster.sh stop
	[ $rc = 0 ] || FAILED_LAYERS+=(pgtap)
}

for layer in "${layers[@]}"; do
	case "$layer" in
		regress) run_regress ;;
		isolation) run_isolation ;;
		tap) run_tap ;;
		pgtap) run_pgtap ;;
		*) pgtv_die "unknown test layer: $layer (regress, isolation, tap, pgtap)" ;;
	esac
done

if [ ${#FAILED_LAYERS[@]} -gt 0 ]; then
	pgtv_log "failed layers: ${FAILED_LAYERS[*]}"
	[ -f regression.diffs ] && pgtv_log "see regression.diffs"
	# a failing layer counts as a failure even if no line was parsed
	[ "$FAIL" -gt 0 ] || FAIL=${#FAILED_LAYERS[@]}
fi
echo "tests: $PASS passed, $FAIL failed"
[ ${#FAILED_LAYERS[@]} -eq 0 ]
