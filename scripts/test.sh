#!/usr/bin/env bash
# The whole pg_tviews test suite, from a fresh Debian 12 machine:
# installs what is missing, builds, installs the extension, and runs every
# test layer (scripts/run-tests.sh) against servers it starts itself.
#
#   scripts/test.sh [layer ...]      (also: make test)
#
# As root (CI), the tests run as $PGTV_PG_USER in a copy of the tree that
# user owns; what they leave (regression.diffs, TAP logs) is copied back
# into test-results/.  As a normal user they run in place; sudo is needed
# only for package and extension installation.
. "$(dirname "$0")/lib.sh"

"$PGTV_REPO/scripts/install-deps.sh"

pgtv_log "building"
make -C "$PGTV_REPO" -s
pgtv_log "installing the extension"
$PGTV_SUDO make -C "$PGTV_REPO" -s install >/dev/null

if [ "$PGTV_IS_ROOT" = 0 ]; then
	exec "$PGTV_REPO/scripts/run-tests.sh" "$@"
fi

work=$(mktemp -d /tmp/pg_tviews-test.XXXXXX)
chmod 755 "$work"
if git -C "$PGTV_REPO" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$PGTV_REPO" && git ls-files -z -co --exclude-standard |
		tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$work"
else
	cp -a "$PGTV_REPO/." "$work/"
fi
chown -R "$PGTV_PG_USER": "$work"

# the tests' own settings (long modes, seeds, trial counts) go along
test_env=()
while IFS= read -r var; do
	test_env+=("$var=${!var}")
done < <(compgen -v | grep -E '^PGTV_(LONG|TAP_TESTS|[A-Z]+_SEED|(FAULT|SOAK|FUZZ|DIFF)_[A-Z_]+)$' || true)

rc=0
(cd "$work" && runuser -u "$PGTV_PG_USER" -- env PATH="$PATH" "${test_env[@]}" \
	scripts/run-tests.sh "$@") || rc=$?

results="$PGTV_REPO/test-results"
rm -rf "$results"
mkdir -p "$results"
for f in regression.diffs regression.out output_iso test/tmp_check/log tmp_check_regress/log; do
	[ -e "$work/$f" ] && cp -a "$work/$f" "$results/$(echo "$f" | tr / _)" || true
done
if [ $rc = 0 ]; then
	rm -rf "$work"
else
	pgtv_log "test tree kept in $work; logs copied to test-results/"
fi
exit $rc
