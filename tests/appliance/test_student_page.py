"""The student page in a real headless Chromium (Debian's chromium, driven by playwright)."""

import pytest

from appliance.config import load_config
from appliance.store import Outbox




@pytest.mark.browser
def test_student_joins_answers_and_sees_the_grade(browser, live_box):
    page = browser.new_page(viewport={"width": 800, "height": 1280})  # a tablet
    page.goto(live_box.base_url + "/")
    page.get_by_label("Class code").fill("class-4b")
    page.get_by_label("Your nickname").fill("Mei")
    page.get_by_role("button", name="Join").click()
    page.locator('#exercise-list button[data-id="sci-states-of-matter-1"]').click()
    page.get_by_label("Your answer").fill("The water boils and becomes steam")
    page.get_by_role("button", name="Check my answer").click()
    verdict = page.locator("#verdict")
    verdict.wait_for(state="visible", timeout=15000)
    assert verdict.inner_text() in ("Correct!", "Not quite yet.")
    assert "%" in page.locator("#confidence").inner_text()
    page.get_by_role("button", name="This grade seems wrong").click()
    page.locator("#thanks").wait_for(state="visible", timeout=10000)
    records = [r for r in Outbox(load_config(live_box.data_dir).outbox_dir).records()
               if r.texts.get("answer") == "The water boils and becomes steam"]
    assert len(records) == 1 and records[0].class_id == "class-4b"
    thumbs = [r for r in Outbox(load_config(live_box.data_dir).outbox_dir).records()
              if r.kind == "feedback" and r.ref_id == records[0].id]
    assert len(thumbs) == 1 and thumbs[0].feedback == "down"
    # the page uses nothing from outside the box
    assert all(req.startswith(live_box.base_url) for req in _requests(page, live_box))


def _requests(page, live_box):
    seen = []
    page.on("request", lambda req: seen.append(req.url))
    page.reload()
    page.wait_for_load_state("networkidle")
    return seen


@pytest.mark.browser
def test_an_answer_made_offline_is_sent_once_when_the_wifi_returns(browser, live_box):
    context = browser.new_context(viewport={"width": 800, "height": 1280})
    page = context.new_page()
    page.goto(live_box.base_url + "/?lang=en")
    page.get_by_label("Class code").fill("class-5c")
    page.get_by_label("Your nickname").fill("Ola")
    page.get_by_role("button", name="Join").click()
    page.locator('#exercise-list button[data-id="sci-states-of-matter-1"]').click()
    context.set_offline(True)  # the Wi-Fi drops
    page.get_by_label("Your answer").fill("it turns into steam when it boils")
    page.get_by_role("button", name="Check my answer").click()
    page.locator("#error").wait_for(state="visible", timeout=10000)
    assert "saved on this tablet" in page.locator("#error").inner_text()
    assert page.locator("#queue-status").inner_text().endswith("1")
    context.set_offline(False)  # back: the page re-sends (online event, or every 5 s)
    page.wait_for_function("JSON.parse(localStorage.getItem('chalkbox.queue')).length === 0",
                           timeout=20000)
    page.reload()  # and a second flush of the same queue entry would be deduplicated anyway
    stored = [r for r in Outbox(load_config(live_box.data_dir).outbox_dir).records()
              if r.texts.get("answer") == "it turns into steam when it boils"]
    assert len(stored) == 1 and stored[0].class_id == "class-5c"
    context.close()


@pytest.mark.browser
def test_the_page_speaks_chinese_and_explains_the_grade(browser, live_box):
    page = browser.new_page(locale="zh-CN")
    page.goto(live_box.base_url + "/")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    page.get_by_label("班级代码").fill("class-1a")
    page.get_by_label("你的昵称").fill("小明")
    page.get_by_role("button", name="加入").click()
    page.locator('#exercise-list button[data-id="sci-states-of-matter-1"]').click()
    page.get_by_label("你的答案").fill("水会结冰")
    page.get_by_role("button", name="检查我的答案").click()
    page.locator("#verdict").wait_for(state="visible", timeout=15000)
    assert page.locator("#verdict").inner_text() in ("正确！", "还不完全对。")
    page.locator("#hint").wait_for(state="visible", timeout=15000)
    assert page.locator("#hint").inner_text().startswith("提示: ")


@pytest.mark.browser
def test_a_student_asks_and_is_told_the_teacher_will_answer(browser, live_box):
    page = browser.new_page()
    page.goto(live_box.base_url + "/?lang=en")
    page.get_by_label("Class code").fill("class-2d")
    page.get_by_label("Your nickname").fill("Ravi")
    page.get_by_role("button", name="Join").click()
    page.get_by_label("Your question").fill("Why do cats purr?")
    page.get_by_role("button", name="Ask").click()
    result = page.locator("#ask-result")
    result.wait_for(state="visible", timeout=15000)
    # this box has no answer matcher installed: every question goes to the teacher
    assert "Your teacher will answer it" in result.inner_text()
    stored = [r for r in Outbox(load_config(live_box.data_dir).outbox_dir).records()
              if r.kind == "question" and r.texts.get("question") == "Why do cats purr?"]
    assert len(stored) == 1 and stored[0].prediction is None
