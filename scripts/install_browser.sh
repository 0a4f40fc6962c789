#!/usr/bin/env bash
# Install headless Chromium, its WebDriver and a CJK font (Debian packages) for
# tests/bot/test_admin_browser.py: /usr/bin/chromium and /usr/bin/chromedriver.
# Idempotent: does nothing when every package is installed, and refreshes the package
# lists only when apt has none yet or an install fails on stale lists.
set -euo pipefail

# Without a CJK font the admin page renders as boxes in screenshots (the test still passes).
PACKAGES=(chromium chromium-driver fonts-wqy-zenhei)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for package in "${PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "already installed: ${PACKAGES[*]}"
    exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "run as root, or: sudo apt-get install ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

# No package lists at all means `apt-get update` never ran (typical in fresh containers).
if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    $SUDO apt-get update
fi
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
    # The lists may be stale (a version gone from the mirror): refresh once and retry.
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
/usr/bin/chromedriver --version
