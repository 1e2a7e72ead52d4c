"""The student page in a real headless Chromium (Debian's chromium, driven by playwright)."""
import shutil

import pytest

from appliance.config import load_config
from appliance.store import Outbox

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


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
    records = [r for r in Outbox(load_config(live_box.data_dir).outbox_dir).records()
               if r.texts.get("answer") == "The water boils and becomes steam"]
    assert len(records) == 1 and records[0].class_id == "class-4b"
    # the page uses nothing from outside the box
    assert all(req.startswith(live_box.base_url) for req in _requests(page, live_box))


def _requests(page, live_box):
    seen = []
    page.on("request", lambda req: seen.append(req.url))
    page.reload()
    page.wait_for_load_state("networkidle")
    return seen
