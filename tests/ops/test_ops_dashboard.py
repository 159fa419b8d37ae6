"""The admin dashboard: admins only (key once, then a strict HttpOnly session cookie), no
outside resources, and in a real headless Chromium its numbers change as jobs run,
without a reload. The screenshot is kept in the test's folder (and, with `make
dashboard-picture`, in docs/dashboard.png)."""

import os
import re
import shutil
from pathlib import Path

import pytest
import requests

from support import make_key, missing_tool, submit_echo, wait_for, wait_status
from tasks.celery_app import queues_for

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--window-size=1400,1500"]


def test_dashboard_json_is_for_admins_only(http, gateway, auth, admin_auth, ops_worker):
    assert http.get(f"{gateway}/admin/dashboard.json").status_code == 401
    assert http.get(f"{gateway}/admin/dashboard.json", headers=auth).status_code == 403
    body = http.get(f"{gateway}/admin/dashboard.json", headers=admin_auth).json()
    assert set(body) >= {"jobs", "per_minute", "queues", "workers", "failures", "payments"}
    assert any(w["id"] == ops_worker.name for w in body["workers"])


def test_the_key_is_taken_once_and_kept_in_a_strict_httponly_cookie(gateway, admin_key,
                                                                     api_key, sessions):
    with requests.Session() as browser:
        login = browser.get(f"{gateway}/dashboard", params={"key": admin_key},
                            allow_redirects=False)
        assert login.status_code == 303 and login.headers["Location"].endswith("/dashboard")
        cookie = login.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and admin_key not in cookie
        assert browser.get(f"{gateway}/admin/dashboard.json").status_code == 200
        page = browser.get(f"{gateway}/dashboard")
        assert 'id="jobs-total"' in page.text
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        # Nothing loads from elsewhere: no script, style, image or link off this gateway.
        assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", page.text)
        browser.post(f"{gateway}/dashboard/logout")
        assert browser.get(f"{gateway}/admin/dashboard.json").status_code == 401

    for key in ("lpk_not-a-key", api_key):  # a user key does not open it either
        refused = requests.get(f"{gateway}/dashboard", params={"key": key},
                               allow_redirects=False)
        assert refused.status_code == 401 and "Set-Cookie" not in refused.headers

    revoked_admin = make_key(sessions, "soon-revoked", "admin")
    with requests.Session() as browser:
        browser.get(f"{gateway}/dashboard", params={"key": revoked_admin})
        assert browser.get(f"{gateway}/admin/dashboard.json").status_code == 200
        _revoke(sessions, revoked_admin)
        assert browser.get(f"{gateway}/admin/dashboard.json").status_code == 401


def _revoke(sessions, key: str) -> None:
    from sqlalchemy import func, update

    from app.api.auth import hash_key
    from app.store.db import transaction
    from app.store.tables import ApiKey

    with transaction(sessions) as session:
        session.execute(update(ApiKey).where(ApiKey.key_hash == hash_key(key))
                        .values(revoked_at=func.now()))


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        missing_tool("needs Debian's chromium and chromium-driver (make deps installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_dashboard_in_chromium_shows_live_numbers(chromium, http, gateway, auth, admin_key,
                                                  app, ops_worker, tmp_path):
    from selenium.webdriver.common.by import By

    def text(element_id: str) -> str:
        return chromium.find_element(By.ID, element_id).text

    chromium.get(f"{gateway}/dashboard")  # not logged in: the form
    chromium.find_element(By.ID, "key").send_keys(admin_key)
    chromium.find_element(By.CSS_SELECTOR, "form button").click()
    wait_for(lambda: chromium.find_elements(By.ID, "updated") and text("updated") != "never",
             timeout=20, what="the dashboard's first refresh")
    assert chromium.current_url == f"{gateway}/dashboard"  # the key is not in the address
    before = int(text("jobs-succeeded"))

    for _ in range(2):
        done = http.post(f"{gateway}/echo", json={"prompt": "dashboard"}, headers=auth)
        assert done.status_code == 200, done.text
    failed = submit_echo(http, gateway, auth, fail="error")
    wait_status(http, gateway, auth, failed, "failed")

    # The same page, never reloaded, catches up within a few polls.
    wait_for(lambda: int(text("jobs-succeeded")) >= before + 2, timeout=15,
             what="the succeeded count to rise")
    wait_for(lambda: failed[:8] in text("failures"), timeout=15, what="the failure to show")
    row = chromium.find_element(By.CSS_SELECTOR, f'tr[data-worker="{ops_worker.name}"]')
    assert "echo" in row.text
    declared = {q.name for q in queues_for(app.extensions["catalog"])}
    shown = {r.get_attribute("data-queue")
             for r in chromium.find_elements(By.CSS_SELECTOR, "#queues tr[data-queue]")}
    assert shown == declared
    assert chromium.find_elements(By.CSS_SELECTOR, "#chart rect")  # jobs this minute
    assert int(text("workers-live")) >= 2
    assert text("tickets-issued").isdigit()
    problems = [e for e in chromium.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, problems  # no CSP violation, no failed fetch

    shot = tmp_path / "dashboard.png"
    chromium.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    # The README's picture is refreshed on purpose only: `make dashboard-picture`.
    if os.environ.get("DASHBOARD_PICTURE"):
        shutil.copy(shot, os.environ["DASHBOARD_PICTURE"])
