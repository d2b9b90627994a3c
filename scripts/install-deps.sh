#!/usr/bin/env bash
# Install the Debian packages pg_tviews needs to build, test and demo.
# Idempotent: installs only what is missing.  Works as root and, for a
# normal user, through sudo.
. "$(dirname "$0")/lib.sh"

PACKAGES=(
	build-essential
	postgresql-15
	postgresql-server-dev-15
	postgresql-contrib
	postgresql-15-pgtap
	pgtap
	postgresql-15-wal2json
	libipc-run-perl
	perl
	util-linux
)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	pgtv_log "all packages present"
	exit 0
fi

pgtv_log "installing: ${missing[*]}"
if [ "$PGTV_IS_ROOT" = 0 ] && ! command -v sudo >/dev/null; then
	pgtv_die "need root or sudo to install: ${missing[*]}"
fi
export DEBIAN_FRONTEND=noninteractive
$PGTV_SUDO apt-get update -qq
$PGTV_SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
