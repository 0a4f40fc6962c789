"""Headless Chromium for the page tests: Debian's chromium and chromedriver, started with the
flags this closed network needs (no background connections) and a private profile."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
STEP_TIMEOUT_S = 30.0

#: ``pytestmark`` of a page test module: slow, and skipped (with the way to fix it) without a browser.
BROWSER_TESTS = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs /usr/bin/chromium and /usr/bin/chromedriver: run scripts/install_browser.sh"),
    pytest.mark.skipif(importlib.util.find_spec("selenium") is None,
                       reason="needs selenium (pip install -e '.[dev]')"),
]


def start_chromium(profile: Path, *, width: int = 1280, height: int = 900):
    """A headless Chromium driven by selenium, its browser log kept (tests read script errors)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={width},{height}", "--lang=zh-CN", "--hide-scrollbars",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(STEP_TIMEOUT_S)
    driver.set_script_timeout(STEP_TIMEOUT_S)
    return driver
