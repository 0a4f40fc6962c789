#!/usr/bin/env bash
# apt-get install the Debian packages named as arguments, as root or through sudo, refreshing the
# package lists only when apt has none yet or an install fails on stale lists. Used by the
# install_*.sh scripts once they have found what is missing.
set -euo pipefail

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "run as root, or: sudo apt-get install $*" >&2; exit 1; }
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

# No package lists at all means `apt-get update` never ran (typical in fresh containers).
if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    $SUDO apt-get update
fi
if ! $SUDO apt-get install -y --no-install-recommends "$@"; then
    # The lists may be stale (a version gone from the mirror): refresh once and retry.
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "$@"
fi
