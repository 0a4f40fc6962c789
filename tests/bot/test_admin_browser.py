"""The admin page in a real browser: headless Chromium (driven by selenium) against a real
``policybot serve`` over loopback. It reads the Chinese page of a server without an admin
token, is refused a bad upload in Chinese, drives a re-index job and watches its progress
bar, and previews, edits, adds and re-indexes a document whose version label and answer
it then reads. At each step the page is checked at 390 × 844 (a phone) and 1280 × 900: no
horizontal scroll, and a full-page screenshot kept under ``var/screenshots/`` (a CI
artifact; ignored by git).

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``scripts/install_browser.sh``);
skipped without them.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.storage import FILENAME, Storage
from index.store import current_version
from tests.bot.browser import BROWSER_TESTS, STEP_TIMEOUT_S, start_chromium
from tests.bot.servers import START_TIMEOUT_S, Server
from tests.bot.test_admin import TOKEN, prepare_library, warm_embeddings
from tests.conftest import LAW, LAW_QUESTION, LAW_TITLE, ROOT, SEED

SCREENSHOTS = ROOT / "var" / "screenshots"
SIZES = ((390, 844), (1280, 900))
JOB_TIMEOUT_S = 120.0
RAW_VERSION_ID = re.compile(r"\d{8}T\d{6}")

pytestmark = BROWSER_TESTS


# -- the servers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def library_dir(tmp_path_factory, embedding_cache) -> Path:
    """A data dir with the seed plan in its library, indexed and served (shared by the module's servers)."""
    scratch = tmp_path_factory.mktemp("admin-browser")
    cache = warm_embeddings(embedding_cache, scratch / "warm", (SEED, LAW))
    return prepare_library(scratch / "data", cache)


def _serve(data: Path, env: dict[str, str]) -> Iterator[str]:
    running = Server(data, workers=1, env=env)
    try:
        yield running.url(START_TIMEOUT_S)
    finally:
        running.stop()


@pytest.fixture(scope="module")
def server(library_dir) -> Iterator[str]:
    """The base URL of a real ``policybot serve`` with the admin page on."""
    yield from _serve(library_dir, {"POLICYBOT_ADMIN_TOKEN": TOKEN})


@pytest.fixture(scope="module")
def server_off(library_dir) -> Iterator[str]:
    """The same library served without an admin token."""
    yield from _serve(library_dir, {})


# -- the browser ------------------------------------------------------------------------------


@pytest.fixture
def browser(tmp_path) -> Iterator:
    driver = start_chromium(tmp_path / "chromium-profile")
    try:
        yield driver
        # Refusals (the 404 page, a 400 for a bad upload) are logged as failed loads; nothing else may be.
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
                  and "Failed to load resource: the server responded with a status of 4" not in entry["message"]]
        assert errors == [], errors  # no script error and no Content-Security-Policy violation
    finally:
        driver.quit()


def _wait(driver, condition: Callable[[object], object], timeout: float = STEP_TIMEOUT_S, what: str = ""):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        shot = _screenshot(driver, "timeout")
        pytest.fail(f"timed out after {timeout} s waiting for {what} (screenshot: {shot})")


def _text(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def _by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def _screenshot(driver, name: str) -> Path:
    """The whole page (not only the viewport) as ``var/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def check_layout(driver, name: str) -> None:
    """At each of :data:`SIZES`: the page is no wider than the window, and a screenshot is kept."""
    for width, height in SIZES:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
        driver.execute_script("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        scroll, inner = driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]")
        shot = _screenshot(driver, f"admin-{name}-{width}x{height}")
        assert inner == width and scroll <= inner, f"{name} at {width}px: page {scroll}px wide (see {shot})"
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def login(driver, url: str) -> None:
    driver.get(f"{url}/admin")
    _by_id(driver, "token").send_keys(TOKEN)
    _by_id(driver, "login-btn").click()
    _wait(driver, lambda d: "衡阳市教育局2020年工作要点" in _text(d, "docs-body"), what="the document list")


def record_progress(driver) -> None:
    """Keep every value the progress bar shows, in order, in ``window.progressSeen``."""
    driver.execute_script("""
        window.progressSeen = [];
        new MutationObserver(function () {
          window.progressSeen.push(Number(document.getElementById('job-progress').getAttribute('aria-valuenow')));
        }).observe(document.getElementById('job-progress'), {attributes: true, attributeFilter: ['aria-valuenow']});
    """)


def progress_seen(driver) -> list[float]:
    return driver.execute_script("return window.progressSeen")


# -- the tests --------------------------------------------------------------------------------


def test_without_a_token_the_page_says_in_chinese_how_to_enable_it(server_off, browser):
    browser.get(f"{server_off}/admin")
    text = _text(browser, "how-to-enable")
    assert "管理后台未开启" in browser.find_element("tag name", "h1").text
    assert "POLICYBOT_ADMIN_TOKEN" in text and "至少 16 个字符" in text and "重启服务" in text
    check_layout(browser, "off")


def test_a_bad_upload_is_refused_in_chinese(server, browser, tmp_path):
    notes = tmp_path / "会议记录.txt"
    notes.write_text("今天开会，大家发言踊跃。\n会后各自落实。\n", encoding="utf-8")
    browser.get(f"{server}/admin")
    _by_id(browser, "token").send_keys("wrong-token-0123456789")
    _by_id(browser, "login-btn").click()
    _wait(browser, lambda d: "登录失败：令牌不正确" in _text(d, "login-msg"), what="the refused login")
    check_layout(browser, "login")
    login(browser, server)
    _by_id(browser, "file").send_keys(str(notes))
    _wait(browser, lambda d: "无法预览" in _text(d, "upload-msg"), what="the refusal")
    assert "在 会议记录.txt 中没有找到章节或编号条目" in _text(browser, "upload-msg")
    assert not _by_id(browser, "preview").is_displayed()
    check_layout(browser, "upload-error")


@pytest.fixture
def jobs(library_dir) -> Iterator:
    """The server's jobs table, as another worker sees it."""
    storage = Storage(library_dir / FILENAME)
    try:
        yield storage.jobs
    finally:
        storage.close()


def test_the_progress_bar_moves_smoothly_and_never_back(server, browser, library_dir, jobs):
    login(browser, server)
    record_progress(browser)
    store = jobs
    job = store.create()  # a build that reports per batch, as the real one does, at a pace the test sets
    browser.execute_script("window.PolicybotAdmin.resumeJob()")
    store.update(job.id, state="running", stage="parse", done=0, total=0)
    for done in range(0, 11):
        store.update(job.id, stage="embed", done=done, total=10)
        time.sleep(0.4 if done != 5 else 1.5)  # one stall: the bar may slow down, never go back
    _wait(browser, lambda d: "计算向量（10/10）" in _text(d, "job-status"), what="the last batch")
    check_layout(browser, "progress")
    store.update(job.id, state="done", stage="done", done=1, total=1, version=current_version(library_dir),
                 finished=time.time())
    _wait(browser, lambda d: "重建完成" in _text(d, "index-msg"), what="the end of the job")
    _wait(browser, lambda d: progress_seen(d)[-1] == 100, what="the bar at 100 %")
    seen = progress_seen(browser)
    assert seen == sorted(seen), seen  # never backwards
    between = {value for value in seen if 5 < value < 90}
    assert len(between) >= 15, seen  # many small steps, not 0 % then 100 %
    assert "已完成 100%" in _text(browser, "job-status")


def test_preview_edit_add_reindex_label_and_answer(server, browser):
    title = "义务教育法（2018年修正）"
    login(browser, server)
    check_layout(browser, "library")

    _by_id(browser, "file").send_keys(str(LAW))
    _wait(browser, lambda d: _by_id(d, "preview").is_displayed(), what="the preview")
    summary = _text(browser, "preview-summary")
    assert re.search(r"解析出 2 个部分、14 个条目、\d+ 个句子", summary), summary
    assert "第一章" in _text(browser, "preview-outline") and "第一条" in _text(browser, "preview-outline")
    assert _by_id(browser, "doc-title").get_attribute("value") == LAW_TITLE
    assert _by_id(browser, "doc-year").get_attribute("value") == "2018"
    check_layout(browser, "preview")

    _by_id(browser, "doc-title").clear()
    _by_id(browser, "doc-title").send_keys(title)
    _by_id(browser, "upload-btn").click()
    _wait(browser, lambda d: "已添加" in _text(d, "upload-msg"), what="the upload to be accepted")
    _wait(browser, lambda d: title in _text(d, "docs-body") and "待重建索引" in _text(d, "docs-body"),
          what="the new document in the list")

    record_progress(browser)
    _by_id(browser, "reindex-btn").click()
    _wait(browser, lambda d: "重建完成" in _text(d, "index-msg") or "失败" in _text(d, "index-msg"),
          timeout=JOB_TIMEOUT_S, what="the re-index job")
    assert f"新增《{title}》，共 2 份文件" in _text(browser, "index-msg"), _text(browser, "index-msg")
    _wait(browser, lambda d: progress_seen(d)[-1] == 100, what="the bar at 100 %")
    seen = progress_seen(browser)
    assert seen == sorted(seen) and len(set(seen)) > 3, seen
    _wait(browser, lambda d: "索引已是最新" in _text(d, "library-status"), what="the library to be served")
    served = _text(browser, "version")
    assert f"新增《{title}》，共 2 份文件" in served and not RAW_VERSION_ID.search(served), served
    options = [o.text for o in _by_id(browser, "versions").find_elements("tag name", "option")]
    assert options[1].endswith("收录《衡阳市教育局2020年工作要点》，共 1 份文件"), options
    assert not any(RAW_VERSION_ID.search(o) for o in options), options

    ask_until_cited(browser, LAW_QUESTION, title)
    confirm_from_the_test_box(browser, server, LAW_QUESTION, title)
    _wait(browser, lambda d: "用户提问 0 次" in _text(d, "stats-summary"), what="the statistics")
    asked = urllib.request.Request(f"{server}/api/ask", data=json.dumps({"question": "明天放假吗"}).encode(),
                                   headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(asked, timeout=STEP_TIMEOUT_S) as response:  # a user's question, not a test
        assert response.status == 200
    browser.execute_script("window.PolicybotAdmin.loadStats()")
    _wait(browser, lambda d: "用户提问 1 次" in _text(d, "stats-summary"), what="the user's question counted")
    assert "明天放假吗（1 次）" in _text(browser, "stats-unanswered")
    today = time.localtime()
    assert f"{today.tm_mon}/{today.tm_mday}" in _text(browser, "stats-axis")  # the chart has dates
    check_layout(browser, "answered")


def confirm_from_the_test_box(browser, server: str, question: str, title: str) -> None:
    """就是这条 under the test box's hit citing ``title`` keeps the pair as a confirmed answer."""
    from selenium.webdriver.common.by import By

    row = next(r for r in _by_id(browser, "ask-hits").find_elements(By.TAG_NAME, "tr") if title in r.text)
    row.find_element(By.CLASS_NAME, "confirm-hit").click()
    _wait(browser, lambda d: "已确认" in _text(d, "ask-msg"), what="the confirmation")
    listed = urllib.request.Request(f"{server}/admin/confirmed", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(listed, timeout=STEP_TIMEOUT_S) as response:
        confirmed = json.loads(response.read())["confirmed"]
    assert [(c["question"], c["source"]) for c in confirmed] == [(question, "test")], confirmed


def ask_until_cited(browser, question: str, title: str, timeout: float = STEP_TIMEOUT_S) -> None:
    """Ask in the test box until a hit cites ``title``: the server swaps in the new version in the
    background, so the first answer may still come from the old one."""
    box = _by_id(browser, "ask-q")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        box.clear()
        box.send_keys(question)
        _by_id(browser, "ask-btn").click()
        _wait(browser, lambda d: _by_id(d, "ask-btn").is_enabled() and _text(d, "ask-hits"), what="an answer")
        if title in _text(browser, "ask-hits"):
            assert _text(browser, "ask-answer") and "置信度" in _text(browser, "ask-meta")
            return
        time.sleep(0.5)
    pytest.fail(f"no answer citing {title} within {timeout} s: {_text(browser, 'ask-hits')}")
