#!/usr/bin/env bash
# Manage a throwaway PostgreSQL cluster configured for pg_tviews.
#
#   scripts/cluster.sh init      create it (wal_level=logical, preload, ...)
#   scripts/cluster.sh start     start it (init first if needed)
#   scripts/cluster.sh stop      stop it
#   scripts/cluster.sh status    is it running?
#   scripts/cluster.sh psql ...  psql into it (extra args passed on)
#   scripts/cluster.sh env       print PGHOST/PGPORT/PGDATABASE exports
#   scripts/cluster.sh destroy   stop it and delete its files
#
# The cluster lives in $PGTV_CLUSTER_DIR (default: .cluster/ in the repo),
# listens on port $PGTV_PORT (default 54329) on a Unix socket in
# $PGTV_SOCKET_DIR (default /tmp), and as root runs as $PGTV_PG_USER.
. "$(dirname "$0")/lib.sh"

PGTV_PORT=${PGTV_PORT:-54329}
PGTV_SOCKET_DIR=${PGTV_SOCKET_DIR:-/tmp}
PGTV_CLUSTER_DIR=${PGTV_CLUSTER_DIR:-$PGTV_REPO/.cluster}
BINDIR=$(pgtv_bindir)
DATA=$PGTV_CLUSTER_DIR/data
LOG=$PGTV_CLUSTER_DIR/server.log
DB=${PGTV_DATABASE:-pg_tviews}

# As root, the cluster directory must belong to the unprivileged user.
prepare_dir() {
	mkdir -p "$PGTV_CLUSTER_DIR"
	if [ "$PGTV_IS_ROOT" = 1 ]; then
		chown "$PGTV_PG_USER": "$PGTV_CLUSTER_DIR"
		pgtv_as_pg test -w "$PGTV_CLUSTER_DIR" ||
			pgtv_die "$PGTV_PG_USER cannot write $PGTV_CLUSTER_DIR (a parent directory is not searchable?); set PGTV_CLUSTER_DIR"
	fi
}

running() {
	pgtv_as_pg "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

cmd_init() {
	if [ -f "$DATA/PG_VERSION" ]; then
		return 0
	fi
	prepare_dir
	pgtv_log "initdb in $DATA"
	pgtv_as_pg "$BINDIR/initdb" -D "$DATA" -A trust -U "$(pg_superuser)" \
		--encoding=UTF8 --locale=C.UTF-8 >/dev/null
	{
		echo "# pg_tviews throwaway cluster"
		echo "port = $PGTV_PORT"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$PGTV_SOCKET_DIR'"
		pgtv_server_conf
	} | pgtv_as_pg tee -a "$DATA/postgresql.conf" >/dev/null
	# replication connections for pg_recvlogical (trust, local socket only)
	echo "local replication all trust" | pgtv_as_pg tee -a "$DATA/pg_hba.conf" >/dev/null
}

# The cluster's superuser: the OS user that runs the server.
pg_superuser() {
	if [ "$PGTV_IS_ROOT" = 1 ]; then echo "$PGTV_PG_USER"; else id -un; fi
}

cmd_start() {
	cmd_init
	if running; then
		return 0
	fi
	pgtv_log "starting cluster on port $PGTV_PORT"
	pgtv_as_pg "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null ||
		{ tail -n 30 "$LOG" >&2; pgtv_die "server did not start"; }
	if ! psql_cmd -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
		psql_cmd -d postgres -qc "CREATE DATABASE \"$DB\""
	fi
}

cmd_stop() {
	if running; then
		pgtv_as_pg "$BINDIR/pg_ctl" -D "$DATA" -w -m fast stop >/dev/null
	fi
}

psql_cmd() {
	"$BINDIR/psql" -X -h "$PGTV_SOCKET_DIR" -p "$PGTV_PORT" -U "$(pg_superuser)" "$@"
}

case "${1:-}" in
	init) cmd_init ;;
	start) cmd_start ;;
	stop) cmd_stop ;;
	status) if running; then echo "running on port $PGTV_PORT"; else echo "stopped"; exit 3; fi ;;
	psql) shift; psql_cmd -d "$DB" "$@" ;;
	env)
		echo "export PGHOST=$PGTV_SOCKET_DIR PGPORT=$PGTV_PORT PGUSER=$(pg_superuser) PGDATABASE=$DB"
		;;
	destroy) cmd_stop; rm -rf "$PGTV_CLUSTER_DIR" ;;
	*) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
