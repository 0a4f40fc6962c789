"""The admin page in a real browser: headless Chromium (driven by selenium) logs in,
uploads a document, re-indexes, and asks a question whose answer cites the new
document, against a real server over loopback.

The server is ``policybot serve`` in a subprocess. Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``
(``scripts/install_browser.sh``); skipped without them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.bot.servers import START_TIMEOUT_S, Server
from tests.bot.test_admin import TOKEN, prepare_library, warm_embeddings
from tests.conftest import LAW, LAW_QUESTION, LAW_TITLE, SEED

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = Path("/tmp/admin.png")
STEP_TIMEOUT_S = 30.0
JOB_TIMEOUT_S = 120.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs /usr/bin/chromium and /usr/bin/chromedriver: run scripts/install_browser.sh"),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[dev]')")


# -- the server -------------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path, embedding_cache, clean_env) -> Iterator[str]:
    """The base URL of a real ``policybot serve`` with the admin API on, over the seed library."""
    cache = warm_embeddings(embedding_cache, tmp_path / "warm", (SEED, LAW))
    data = prepare_library(tmp_path / "data", cache)
    running = Server(data, workers=1, env={"POLICYBOT_ADMIN_TOKEN": TOKEN})
    try:
        yield running.url(START_TIMEOUT_S)
    finally:
        running.stop()


# -- the browser ------------------------------------------------------------------------------


@pytest.fixture
def browser(tmp_path) -> Iterator:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,2400", "--lang=zh-CN", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(STEP_TIMEOUT_S)
    driver.set_script_timeout(STEP_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition: Callable[[object], object], timeout: float = STEP_TIMEOUT_S, what: str = ""):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOT))
        pytest.fail(f"timed out after {timeout} s waiting for {what} (screenshot: {SCREENSHOT})")


def _text(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def test_admin_uploads_reindexes_and_answers_from_the_new_document(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/admin")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login-btn").click()
    _wait(browser, lambda d: "衡阳市教育局2020年工作要点" in _text(d, "docs-body"), what="the document list")

    browser.find_element(By.ID, "file").send_keys(str(LAW))
    browser.find_element(By.ID, "upload-btn").click()
    _wait(browser, lambda d: "已添加" in _text(d, "upload-msg"), what="the upload to be accepted")
    _wait(browser, lambda d: LAW_TITLE in _text(d, "docs-body") and "待重建索引" in _text(d, "docs-body"),
          what="the new document in the list")

    browser.find_element(By.ID, "reindex-btn").click()
    _wait(browser, lambda d: "重建完成" in _text(d, "index-msg") or "失败" in _text(d, "index-msg"),
          timeout=JOB_TIMEOUT_S, what="the re-index job")
    assert "重建完成" in _text(browser, "index-msg"), _text(browser, "index-msg")
    _wait(browser, lambda d: "索引已是最新" in _text(d, "library-status"), what="the library to be served")

    ask_until_cited(browser, LAW_QUESTION, LAW_TITLE)
    browser.save_screenshot(str(SCREENSHOT))
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors  # no script error and no Content-Security-Policy violation


def ask_until_cited(browser, question: str, title: str, timeout: float = STEP_TIMEOUT_S) -> None:
    """Ask in the test box until a hit cites ``title``: the server swaps in the new version in the
    background, so the first answer may still come from the old one."""
    from selenium.webdriver.common.by import By

    box = browser.find_element(By.ID, "ask-q")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        box.clear()
        box.send_keys(question)
        browser.find_element(By.ID, "ask-btn").click()
        _wait(browser, lambda d: d.find_element(By.ID, "ask-btn").is_enabled()
              and _text(d, "ask-hits"), what="an answer")
        if title in _text(browser, "ask-hits"):
            assert _text(browser, "ask-answer") and "置信度" in _text(browser, "ask-meta")
            return
        time.sleep(0.5)
    pytest.fail(f"no answer citing {title} within {timeout} s: {_text(browser, 'ask-hits')}")
