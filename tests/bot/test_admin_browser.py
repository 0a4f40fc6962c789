"""The admin page in a real browser: headless Chromium (driven by selenium) logs in,
uploads a document, re-indexes, and asks a question whose answer cites the new
document, against a real server over loopback.

The server is ``policybot serve`` in a subprocess when ``create_app`` mounts the admin
blueprint; until it does, the same app with the blueprint registered runs in a
werkzeug server thread. Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``
(``scripts/install_browser.sh``); skipped without them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot import admin
from tests.bot.test_admin import LAW, LAW_QUESTION, LAW_TITLE, TOKEN, prepare_library, warm_embeddings
from tests.conftest import ROOT, SEED

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = Path("/tmp/admin.png")
START_TIMEOUT_S = 60.0
STEP_TIMEOUT_S = 30.0
JOB_TIMEOUT_S = 120.0
LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs /usr/bin/chromium and /usr/bin/chromedriver: run scripts/install_browser.sh"),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[dev]')")


# -- the server -------------------------------------------------------------------------------


class ServeProcess:
    """``policybot serve --workers 1`` in its own process group, on a port the OS picks."""

    def __init__(self, data: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_")}
        env.update(POLICYBOT_DATA=str(data), POLICYBOT_ADMIN_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", "0", "--workers", "1"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.log: list[str] = []
        self.url: str | None = None
        self._found = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._found.wait(START_TIMEOUT_S) or self.url is None:
            self.stop()
            raise AssertionError("server did not start:\n" + "".join(self.log))

    def _read(self) -> None:
        for line in self.process.stdout:  # to the end, or the server would block on a full pipe
            self.log.append(line)
            match = LISTENING.search(line)
            if match and self.url is None:
                self.url = match.group(1)
                self._found.set()
        self._found.set()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._reader.join(timeout=5)
        self.process.stdout.close()


class ServeThread:
    """The same app, with the admin blueprint registered here, in a werkzeug server thread."""

    def __init__(self, data: Path, instance: Path) -> None:
        from werkzeug.serving import make_server

        from bot.app import create_app

        self.app = create_app({"DATA": data, "ADMIN_TOKEN": TOKEN}, instance_path=instance)
        if "admin" not in self.app.blueprints:
            self.app.register_blueprint(admin.bp)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        from bot.service import get_service

        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        get_service(self.app).close()


def _serve_mounts_admin(data: Path, instance: Path) -> bool:
    from bot.app import create_app
    from bot.service import get_service

    app = create_app({"DATA": data, "ADMIN_TOKEN": TOKEN}, instance_path=instance)
    get_service(app).close()
    return "admin" in app.blueprints


@pytest.fixture
def server(tmp_path, embedding_cache, clean_env) -> Iterator[ServeProcess | ServeThread]:
    cache = warm_embeddings(embedding_cache, tmp_path / "warm", (SEED, LAW))
    data = prepare_library(tmp_path / "data", cache)
    running = ServeProcess(data) if _serve_mounts_admin(data, tmp_path / "probe") else ServeThread(
        data, tmp_path / "instance")
    try:
        yield running
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

    browser.get(f"{server.url}/admin")
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
