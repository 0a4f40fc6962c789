"""The chat page in a real browser, at a phone's size (390 x 844) and a desktop's (1280 x 900):
headless Chromium (selenium) against ``policybot serve`` over loopback asks a question, opens a
citation in place, rates the answer, keeps the conversation across a reload, and gets an FAQ
an admin added (through the admin API) as the answer. Screenshots go to var/screenshots/.

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``scripts/install_browser.sh``).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from tests.bot.browser import BROWSER_TESTS, STEP_TIMEOUT_S, start_chromium
from tests.bot.servers import START_TIMEOUT_S, Server
from tests.bot.test_admin import TOKEN, prepare_library, warm_embeddings
from tests.conftest import ROOT, SEED

SCREENSHOTS = ROOT / "var" / "screenshots"
SIZES = [(390, 844), (1280, 900)]
QUESTION = "乡村教师有没有补贴？"
POPULAR = "校园安全今年重点抓哪些工作？"  # never rated unhelpful here: a suggestion
FAQ = {"question": "今年寒假什么时候开始放？", "answer": "寒假放假时间以学校发布的校历为准。"}

pytestmark = BROWSER_TESTS


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedding_cache) -> Iterator[str]:
    """A real ``policybot serve`` over the seed library, admin API on (one for both sizes)."""
    scratch = tmp_path_factory.mktemp("chat-browser")
    cache = warm_embeddings(embedding_cache, scratch / "warm", (SEED,))
    running = Server(prepare_library(scratch / "data", cache), workers=1,
                     env={"POLICYBOT_ADMIN_TOKEN": TOKEN, "POLICYBOT_RATE_PER_MINUTE": "0"})
    try:
        yield running.url(START_TIMEOUT_S)
    finally:
        running.stop()


@pytest.fixture(params=SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def browser(request, tmp_path) -> Iterator:
    width, height = request.param
    driver = start_chromium(tmp_path / "chromium-profile", width=width, height=height)
    driver.size_name = f"{width}x{height}"
    emulate(driver, mobile=True)
    try:
        yield driver
    finally:
        driver.quit()


def emulate(driver, *, mobile: bool) -> None:
    """Headless windows are at least 500 px wide: the size is emulated as DevTools does (a phone's
    viewport when ``mobile`` and the size is a phone's)."""
    width, height = map(int, driver.size_name.split("x"))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile and width < 600})


def wait(driver, condition, what: str):
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        # a turn is redrawn when its answer arrives: an element read mid-redraw is looked up again
        return WebDriverWait(driver, STEP_TIMEOUT_S, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        shoot(driver, "timeout")
        pytest.fail(f"timed out after {STEP_TIMEOUT_S} s waiting for {what} (screenshot in {SCREENSHOTS})")


def shoot(driver, step: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"chat-{driver.size_name}-{step}.png"))


def admin(base: str, method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/admin{path}", data=data, method=method, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=STEP_TIMEOUT_S) as response:
        return json.loads(response.read())


def no_horizontal_scroll(driver) -> bool:
    return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def ask(driver, question: str):
    """Send ``question`` and return the last turn once its answer arrived."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    before = len(driver.find_elements(By.CSS_SELECTOR, "#log .turn"))
    box = driver.find_element(By.ID, "question")
    box.send_keys(question)
    box.send_keys(Keys.ENTER)
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log .turn")) == before + 1
         and not d.find_elements(By.CSS_SELECTOR, "#log .pending"), what=f"the answer to {question}")
    return driver.find_elements(By.CSS_SELECTOR, "#log .turn")[-1]


def test_chat_page_end_to_end(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server)
    assert browser.execute_script("return window.innerWidth") == int(browser.size_name.split("x")[0])
    assert no_horizontal_scroll(browser)

    # a question: the newest turn is the last one, and its answer quotes and cites the plan
    turn = ask(browser, QUESTION)
    assert turn.find_element(By.CSS_SELECTOR, ".q").text == QUESTION
    answer = turn.find_element(By.CSS_SELECTOR, ".a")
    assert "《衡阳市教育局2020年工作要点》" in answer.text and "“" in answer.text
    assert no_horizontal_scroll(browser)
    shoot(browser, "1-answer")

    # the citation opens the whole item in place
    turn.find_element(By.CSS_SELECTOR, "button.ref").click()
    item = wait(browser, lambda d: next((n for n in turn.find_elements(By.CSS_SELECTOR, ".item")
                                         if n.text and "正在打开" not in n.text), None), what="the item")
    assert answer.text[1:11] in item.text.replace("\n", "")  # the quote's opening words, in the full item
    assert no_horizontal_scroll(browser)
    shoot(browser, "2-item")

    # feedback: 👎 is recorded as this answer's rating
    turn.find_element(By.CSS_SELECTOR, ".rate button[aria-label='没用']").click()
    wait(browser, lambda d: "谢谢反馈" in turn.find_element(By.CSS_SELECTOR, ".rate").text, what="the rating")
    assert QUESTION in [r["question"] for r in admin(server, "GET", "/feedback")["unhelpful"]]

    # an FAQ added by an admin answers at once, cited as 《常见问题》
    added = admin(server, "POST", "/faq", FAQ)
    try:
        faq_turn = ask(browser, "今年寒假什么时候开始放")
        faq_answer = faq_turn.find_element(By.CSS_SELECTOR, ".a").text
        assert faq_answer.startswith(FAQ["answer"]) and "《常见问题》" in faq_answer
        assert no_horizontal_scroll(browser)
        shoot(browser, "3-faq")
    finally:
        admin(server, "DELETE", f"/faq/{added['id']}")

    # the conversation survives a reload, the rating with it
    browser.refresh()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log .turn")) == 2, what="the kept turns")
    first = browser.find_elements(By.CSS_SELECTOR, "#log .turn")[0]
    assert first.find_element(By.CSS_SELECTOR, ".q").text == QUESTION
    assert first.find_element(By.CSS_SELECTOR, ".rate button[aria-label='没用']").get_attribute("aria-pressed") \
        == "true"
    assert no_horizontal_scroll(browser)
    shoot(browser, "4-reloaded")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors


def test_empty_chat_offers_the_questions_many_asked(server, browser):
    from selenium.webdriver.common.by import By

    for _visitor in range(2):  # two visitors asked it (no cookie: each request is a new visitor)
        request = urllib.request.Request(f"{server}/api/ask", data=json.dumps({"question": POPULAR}).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=STEP_TIMEOUT_S).close()
    browser.get(server)

    def offered(driver):
        found = next((b for b in driver.find_elements(By.CSS_SELECTOR, "#suggest button") if b.text == POPULAR), None)
        if found is None:
            driver.refresh()  # a worker keeps its suggestions a few seconds (curation.POPULAR_FOR_S)
        return found

    suggestion = wait(browser, offered, what="the suggestion")
    assert no_horizontal_scroll(browser)
    shoot(browser, "0-suggestions")
    suggestion.click()
    wait(browser, lambda d: "《衡阳市教育局2020年工作要点》" in d.find_element(By.CSS_SELECTOR, "#log .a").text,
         what="the suggested question answered")
    assert not browser.find_element(By.ID, "suggest").is_displayed()


def test_faq_written_from_an_unanswered_question_is_then_answered(server, browser):
    from selenium.webdriver.common.by import By

    unanswered = "教育局的办公电话是多少？"
    browser.get(server)
    declined = ask(browser, unanswered).find_element(By.CSS_SELECTOR, ".a").text
    assert declined.startswith("抱歉")

    # The admin page is still wider than a phone (its layout is another change): a mobile viewport
    # would zoom it out and misplace clicks, so it is shown in a plain window of the same width.
    emulate(browser, mobile=False)
    browser.get(f"{server}/admin")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login-btn").click()
    row = wait(browser, lambda d: next((li for li in d.find_elements(By.CSS_SELECTOR, "#cur-unanswered li")
                                        if unanswered in li.text), None), what="the unanswered question")
    row.find_element(By.XPATH, ".//button[text()='写回答']").click()  # the one click
    assert browser.find_element(By.ID, "faq-q").get_attribute("value") == unanswered
    browser.find_element(By.ID, "faq-a").send_keys("办公电话请见教育局网站“联系我们”栏目。")
    browser.find_element(By.ID, "faq-add").click()
    wait(browser, lambda d: "已添加" in d.find_element(By.ID, "faq-msg").text, what="the FAQ to be added")
    section = browser.find_element(By.ID, "curation")
    assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", section)
    browser.execute_script("arguments[0].scrollIntoView()", section)
    shoot(browser, "5-admin-faq")
    try:
        emulate(browser, mobile=True)
        browser.get(server)
        answer = ask(browser, unanswered).find_element(By.CSS_SELECTOR, ".a").text
        assert answer.startswith("办公电话请见教育局网站") and "《常见问题》" in answer
        shoot(browser, "6-faq-answered")
    finally:
        for entry in admin(server, "GET", "/faq")["faq"]:
            admin(server, "DELETE", f"/faq/{entry['id']}")
