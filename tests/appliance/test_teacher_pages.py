"""The teacher pages against a real gunicorn, and in a real headless Chromium.

The box is set up so that every grade goes to review (review_below = 1.0) and a
"USB stick" directory is mounted under its usb_mount_root.
"""
import re
import urllib.error
import urllib.request

import pytest
import requests

from appliance.config import load_config, to_toml
from appliance.ids import new_id
from appliance.store import Outbox
from appliance.store.teachers import TeacherAccounts
from conftest import provision_box, start_server
from helpers import request

TEACHER, PASSWORD = "ms-okafor", "chalk-and-talk-1"
ANSWER = {"exercise_id": "sci-states-of-matter-1", "answer": "the ice turns into water",
          "class_id": "class-5a", "nickname": "Ravi"}


@pytest.fixture(scope="module")
def teacher_box(tmp_path_factory, keypair, grade_bundle):
    root = tmp_path_factory.mktemp("teacher")
    data_dir = provision_box(root, keypair, grade_bundle)
    config = load_config(data_dir)
    (root / "media" / "STICK").mkdir(parents=True)
    settings = {**config.settings(), "review_below": 1.0, "usb_mount_root": str(root / "media")}
    config.config_path.write_text(to_toml(settings))
    accounts = TeacherAccounts(config.teachers_path)
    accounts.set_password(TEACHER, PASSWORD)
    accounts.set_password("mr-lee", "another-pass-1")  # the one the rate-limit test locks out
    server = start_server(data_dir, root / "gunicorn.log")
    server.data_dir = data_dir
    yield server
    server.stop()



def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def signed_in(box) -> tuple[requests.Session, str]:
    """A cookie-keeping client signed in as the teacher, and its CSRF token."""
    client = requests.Session()
    page = client.get(box.base_url + "/teacher/login")
    response = client.post(box.base_url + "/teacher/login", data={
        "username": TEACHER, "password": PASSWORD, "csrf_token": csrf(page.text)})
    assert response.status_code == 200 and response.url.endswith("/teacher/"), response.text
    return client, csrf(response.text)


@pytest.mark.browser
def test_teacher_signs_in_and_corrects_a_low_confidence_grade(browser, teacher_box):
    status, body = request("POST", teacher_box.base_url + "/api/v1/answers", ANSWER)
    assert status == 201, body
    record_id, predicted = body["record_id"], body["grade"]["label"]
    corrected = "incorrect" if predicted == "correct" else "correct"

    page = browser.new_page(viewport={"width": 390, "height": 844})  # a teacher's phone
    page.goto(teacher_box.base_url + "/teacher/review")
    assert "/teacher/login" in page.url  # not signed in yet
    page.get_by_label("Username").fill(TEACHER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/teacher/review")
    assert "40 of your daily 40 reviews left" in page.locator("#review-budget").inner_text()
    card = page.locator(f'article[data-record="{record_id}"]')
    assert ANSWER["answer"] in card.inner_text()
    assert card.locator(".prediction").inner_text() == predicted
    card.get_by_role("button", name=f"Mark {corrected}").click()
    page.wait_for_url("**/teacher/review")
    assert f"the answer is {corrected}" in page.get_by_role("status").first.inner_text()
    assert page.locator(f'article[data-record="{record_id}"]').count() == 0
    assert "39 of your daily 40 reviews left" in page.locator("#review-budget").inner_text()

    labels = [r for r in Outbox(load_config(teacher_box.data_dir).outbox_dir).records()
              if r.kind == "teacher_label"]
    assert [(r.ref_id, r.teacher_label) for r in labels] == [(record_id, corrected)]
    assert labels[0].texts["answer"] == ANSWER["answer"] and labels[0].model_version == "1.0.0"
    assert labels[0].texts["comment"].startswith("t-")  # the reviewer, by pseudonym
    # the pages use nothing from outside the box
    seen = []
    page.on("request", lambda req: seen.append(req.url))
    for path in ("/teacher/", "/teacher/content", "/teacher/model", "/teacher/sync"):
        page.goto(teacher_box.base_url + path)
        assert page.locator("h1").count() == 1
    assert seen and all(url.startswith(teacher_box.base_url) for url in seen)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def anonymous(method: str, url: str) -> tuple[int, dict, str]:
    """A request with no cookies and no redirects followed: (status, headers, body)."""
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, method=method, data=b"x=1" if method == "POST" else None)
    try:
        with opener.open(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_every_teacher_route_refuses_anonymous_access(teacher_box):
    from appliance.web import create_app

    app = create_app(load_config(teacher_box.data_dir))
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("teacher.")]
    assert len(rules) >= 13
    for rule in rules:
        path = re.sub(r"<[^>]+>", new_id(), rule.rule)
        for method in sorted(rule.methods & {"GET", "POST"}):
            status, headers, body = anonymous(method, teacher_box.base_url + path)
            if rule.endpoint == "teacher.login":  # the one public page; its POST needs CSRF
                assert status == (200 if method == "GET" else 400), (method, path)
            elif method == "GET":
                assert status == 302, (method, path, status)
                assert headers["Location"].startswith("/teacher/login?next="), headers
            else:
                assert status in (401, 403), (method, path, status)
                assert "Sign-in needed" in body and "<table" not in body and "<form" not in body
    # liveness and readiness stay open on purpose (no data in them); /metrics is open only
    # from the box itself (tests/appliance/test_api.py checks the network side)
    for path in ("/metrics", "/healthz", "/readyz"):
        assert anonymous("GET", teacher_box.base_url + path)[0] == 200, path


def test_a_post_without_the_csrf_token_is_refused(teacher_box):
    client, token = signed_in(teacher_box)
    new = {"id": "csrf-test", "subject": "science", "grade_band": "5-6", "question": "Q?",
           "reference_answer": "A."}
    for sent in ({}, {"csrf_token": "forged"}):
        response = client.post(teacher_box.base_url + "/teacher/content/exercises",
                               data={**new, **sent})
        assert response.status_code == 400 and "security token" in response.text
    assert request("GET", teacher_box.base_url + "/api/v1/exercises/csrf-test")[0] == 404
    response = client.post(teacher_box.base_url + "/teacher/content/exercises",
                           data={**new, "csrf_token": token})
    assert response.status_code == 200 and "Exercise csrf-test added" in response.text
    assert request("GET", teacher_box.base_url + "/api/v1/exercises/csrf-test")[0] == 200


def test_unknown_records_are_404_and_oversize_fields_400(teacher_box):
    client, token = signed_in(teacher_box)
    base = teacher_box.base_url + "/teacher"
    response = client.post(f"{base}/review/{new_id()}/label",
                           data={"label": "correct", "csrf_token": token})
    assert response.status_code == 404 and "no answer or grade record" in response.text
    assert client.post(f"{base}/content/exercises/nope/delete",
                       data={"csrf_token": token}).status_code == 404
    response = client.post(f"{base}/review/{new_id()}/answer", data={
        "answer": "x" * 4001, "subject": "s", "grade_band": "g", "csrf_token": token})
    assert response.status_code == 400 and "limit is 4000" in response.text
    big = client.post(f"{base}/content/exercises", data={"question": "x" * 70000,
                                                         "csrf_token": token})
    assert big.status_code == 413


def test_login_is_rate_limited(teacher_box):
    client = requests.Session()
    url = teacher_box.base_url + "/teacher/login"
    token = csrf(client.get(url).text)
    for _ in range(5):
        response = client.post(url, data={"username": "mr-lee", "password": "wrong-password",
                                           "csrf_token": token})
        assert response.status_code == 401 and "Wrong username or password" in response.text
    for password in ("wrong-password", "another-pass-1"):  # even the right one, for now
        response = client.post(url, data={"username": "mr-lee", "password": password,
                                          "csrf_token": token})
        assert response.status_code == 429 and "Too many failed sign-ins" in response.text


def test_csv_import_of_a_bad_file_shows_the_error_and_changes_nothing(teacher_box):
    client, token = signed_in(teacher_box)
    content = load_config(teacher_box.data_dir).content_path
    before = content.read_bytes()
    bad = ("id,subject,grade_band,question,reference_answer\n"
           "new-1,science,5-6,What melts?,Ice\n"
           "new 2,science,5-6,What boils?,Water\n")
    response = client.post(teacher_box.base_url + "/teacher/content/import",
                           data={"kind": "exercises", "mode": "replace", "csrf_token": token},
                           files={"file": ("exercises.csv", bad.encode(), "text/csv")})
    assert response.status_code == 400
    error = re.search(r'id="content-error">([^<]*)<', response.text).group(1)
    assert error.startswith("Nothing was imported: exercises.csv line 3:") and "&#39;id&#39;" in error
    assert content.read_bytes() == before

    good = bad.replace("new 2", "new-2")
    response = client.post(teacher_box.base_url + "/teacher/content/import",
                           data={"kind": "exercises", "csrf_token": token},
                           files={"file": ("mine.csv", good.encode(), "text/csv")})
    assert response.status_code == 200 and "Imported 2 exercises" in response.text
    assert request("GET", teacher_box.base_url + "/api/v1/exercises/new-2")[0] == 200


def test_sync_page_queues_a_usb_sync_for_the_worker(teacher_box):
    from appliance.queue import make_huey

    client, token = signed_in(teacher_box)
    page = client.get(teacher_box.base_url + "/teacher/sync")
    assert page.status_code == 200 and "STICK" in page.text and "unavailable" not in page.text
    stick = re.search(r'name="stick" value="([^"]+)"', page.text).group(1)
    response = client.post(teacher_box.base_url + "/teacher/sync/usb",
                           data={"stick": stick, "csrf_token": token})
    assert response.status_code == 200 and "queued" in response.text
    assert "waiting for the worker" in response.text
    assert make_huey(teacher_box.data_dir).pending_count() == 1
    refused = client.post(teacher_box.base_url + "/teacher/sync/usb",
                          data={"stick": "/etc", "csrf_token": token})
    assert refused.status_code == 404

