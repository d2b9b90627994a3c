#!/usr/bin/env bash
# Print the server settings the tests run with (pg_regress --temp-config).
. "$(dirname "$0")/lib.sh"
pgtv_server_conf
echo "max_prepared_transactions = 10"
echo "log_min_messages = warning"
