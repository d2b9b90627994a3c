# scripts/lib.sh -- shared helpers of the pg_tviews scripts (sourced).
#
# PostgreSQL refuses to run as root.  When these scripts run as root (CI),
# every server-side command runs as the unprivileged user $PGTV_PG_USER
# (default: postgres, created by Debian's postgresql package); otherwise
# as the invoking user, who needs sudo only to install packages and the
# extension.

set -euo pipefail

PGTV_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGTV_PG_USER=${PGTV_PG_USER:-postgres}

if [ "$(id -u)" = 0 ]; then
	PGTV_SUDO=""
	PGTV_IS_ROOT=1
else
	PGTV_SUDO="sudo"
	PGTV_IS_ROOT=0
fi

pgtv_log() { printf '==> %s\n' "$*" >&2; }
pgtv_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The server's bin directory (initdb, pg_ctl, postgres, pg_recvlogical).
pgtv_bindir() {
	local b
	b=$(pg_config --bindir 2>/dev/null) || true
	[ -x "$b/initdb" ] || b=/usr/lib/postgresql/15/bin
	[ -x "$b/initdb" ] || pgtv_die "no PostgreSQL 15 server found; run scripts/install-deps.sh"
	printf '%s\n' "$b"
}

# Run a command as the user that owns PostgreSQL data directories.
pgtv_as_pg() {
	if [ "$PGTV_IS_ROOT" = 1 ]; then
		runuser -u "$PGTV_PG_USER" -- env PATH="$PATH" "$@"
	else
		"$@"
	fi
}

# Does this server know the (Debian-patched) output_plugin_libraries GUC?
# Writing an unknown setting into postgresql.conf stops the server, so
# every config writer asks first.
pgtv_has_output_plugin_libraries() {
	local names
	names=$("$(pgtv_bindir)/postgres" --describe-config 2>/dev/null | cut -f1) || true
	grep -qx output_plugin_libraries <<<"$names"
}

# The postgresql.conf lines pg_tviews needs (also used by pg_regress's
# --temp-config and by the TAP tests).
pgtv_server_conf() {
	cat <<CONF
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
max_worker_processes = 16
shared_preload_libraries = 'pg_tviews'
CONF
	if pgtv_has_output_plugin_libraries; then
		# A list GUC.  In a configuration file the list is one quoted
		# string; with ALTER SYSTEM the names go unquoted (ALTER SYSTEM SET
		# output_plugin_libraries = pgoutput, pg_tviews_decoder), since a
		# quoted string there becomes a single, wrong element.
		echo "output_plugin_libraries = 'pgoutput, test_decoding, pg_tviews_decoder, wal2json'"
	fi
}
