#!/usr/bin/env bash
# Install Debian's PostgreSQL server for the tests that run the bot's state on PostgreSQL
# (tests/bot/test_postgres*.py): they start a private cluster from /usr/lib/postgresql/<major>/bin
# in a temporary folder, unless POLICYBOT_TEST_DATABASE_URL names a server to use instead.
# Idempotent: does nothing when the server binaries are there (scripts/apt_install.sh installs
# them otherwise). The package's own cluster (if Debian creates one) is not used by the tests.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    echo "already installed: $(ls -d /usr/lib/postgresql/*/bin/initdb | tail -1)"
    exit 0
fi
if [[ -n "${POLICYBOT_TEST_DATABASE_URL:-}" ]]; then
    echo "POLICYBOT_TEST_DATABASE_URL is set: the tests use that server, nothing to install"
    exit 0
fi

bash "$(dirname "$0")/apt_install.sh" postgresql
ls /usr/lib/postgresql/*/bin/initdb
