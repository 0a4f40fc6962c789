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

bash "$(dirname "$0")/apt_install.sh" "${missing[@]}"
/usr/bin/chromedriver --version
