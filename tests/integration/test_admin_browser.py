"""The admin page in a real headless Chromium (Debian's).

Over a real worker pipeline: sign in with an admin API key, read appointments, doctors,
failures and dead letters, and retry a dead letter with the button: the worker then
finishes the appointment. Over two clinics' data: clinic a's admin searches, pages and
reads an appointment's whole story, and never meets clinic b's canary patient.
Locally the test skips when chromium is missing; in CI (.ci/run installs it) it fails.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
import redis
from dramatiq.message import Message

from telemed.events.publish import Publisher
from telemed.foundation import dead_letters
from telemed.samples import DOCTORS, booking
from telemed.store import api_keys
from telemed.store import notifications as alerts
from tests.support.webapp import Recorder, broker_forwarder, running_app, settings_for, web_services

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1600"]


def _browser(tmp_path):  # type: ignore[no-untyped-def]
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        reason = f"admin browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("TELEMED_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)  # CI installs them: missing there is a failure, not a skip
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    return driver


def _submit(driver, css: str, then: str) -> None:  # type: ignore[no-untyped-def]
    """Click a submit button and wait until the next page shows ``then`` (a CSS selector)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, css).click()
    wait = WebDriverWait(driver, 15)
    wait.until(lambda _: _left_document(old))
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, then)))


def _left_document(element) -> bool:  # type: ignore[no-untyped-def]
    """Whether the browser has replaced the document ``element`` belonged to.

    selenium's ``staleness_of`` expects StaleElementReferenceException, but while Chromium swaps
    documents it may instead answer "Node with given id does not belong to the document" as a
    plain WebDriverException (seen in CI with Chromium 156). Both mean the old page is gone.
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in (error.msg or ""):
            return True
        raise
    return False


def test_admin_page_in_chromium(single_pipeline, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    pipeline = single_pipeline

    driver = _browser(tmp_path)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    pipeline.publish([booking("B-1", 1, start), booking("B-2", 1, start, doctor=DOCTORS[1])])
    pipeline.wait_settled()
    late = booking("B-3", 1, start, doctor=DOCTORS[2])
    # Its queue message arrives before the event is in the inbox: a dead letter.
    pipeline.broker.enqueue(Message(queue_name="events", actor_name="process_event", args=(late["event_id"],),
                                    kwargs={}, options={}))
    client = redis.Redis.from_url(pipeline.redis_url)
    pipeline.wait_until(lambda: len(dead_letters.list_dead(client, pipeline.namespace)) == 1, what="a dead letter")
    with pipeline.database.session() as s:
        _, admin_key = api_keys.create_key(s, "admin", "browser test")
        alerts.record_alert(s, "webhook_gone", "Booking webhook answered 410", "disabled", None)

    recorder = Recorder(forward=broker_forwarder(pipeline.redis_url, pipeline.namespace))
    settings = settings_for(pipeline.namespace, public_url="http://127.0.0.1:9/", secret_keys=pipeline.secret_key)
    try:
        with running_app(web_services(settings, pipeline.database, client, recorder)) as url:
            driver.get(f"{url}/admin")
            assert driver.current_url.endswith("/admin/login")
            driver.find_element(By.ID, "api_key").send_keys("tmk_wrongwrong_" + "x" * 43)
            _submit(driver, "#login button", "#error")
            assert "not an active admin API key" in driver.find_element(By.ID, "error").text
            driver.find_element(By.ID, "api_key").send_keys(admin_key)
            _submit(driver, "#login button", "#appointments")
            assert driver.current_url.endswith("/admin/appointments")

            rows = {r.get_attribute("data-appointment-id"): r.text
                    for r in driver.find_elements(By.CSS_SELECTOR, "#appointments tr[data-appointment-id]")}
            assert set(rows) == {"B-1", "B-2"} and all("provisioned" in text for text in rows.values())
            _submit(driver, "#nav-doctors", "#doctors")
            doctors = driver.find_elements(By.CSS_SELECTOR, "#doctors tr[data-doctor-id]")
            assert {d.get_attribute("data-doctor-id") for d in doctors} == {"D-1", "D-2"}
            # A reconnect link for a doctor, minted on request.
            _submit(driver, "#doctors tr[data-doctor-id] button", "#link")
            assert "/oauth/zoom/connect?token=" in driver.find_element(By.ID, "link").get_attribute("value")

            driver.get(f"{url}/admin/problems")
            assert "Booking webhook answered 410" in driver.find_element(By.ID, "failures").text
            [dead] = driver.find_elements(By.CSS_SELECTOR, "#dead-letters tr[data-message-id]")
            assert late["event_id"] in dead.text and "no such event in the inbox" in dead.text
            # Fix the cause, then press Retry: the worker provisions the late booking.
            Publisher(database=pipeline.database, enqueue=lambda _: None).publish(json.loads(json.dumps(late)))
            _submit(driver, "#dead-letters button", "#notice")
            assert "sent to its queue again" in driver.find_element(By.ID, "notice").text
            assert recorder.calls == [("process_event", (late["event_id"],))]
            pipeline.wait_settled()
            driver.get(f"{url}/admin/problems")
            assert driver.find_element(By.ID, "dead-letters").text == "No dead letters."
            _submit(driver, "#nav-appointments", "#appointments")
            row = driver.find_element(By.CSS_SELECTOR, '#appointments tr[data-appointment-id="B-3"]')
            assert "provisioned" in row.text
            driver.save_screenshot(str(tmp_path / "admin.png"))  # left in tmp_path for a person to look at

            _submit(driver, "#logout button", "#login")  # sign out
            driver.get(f"{url}/admin")
            assert driver.current_url.endswith("/admin/login")
    finally:
        driver.quit()


def test_a_clinic_admin_searches_pages_and_reads_a_story_in_chromium(  # type: ignore[no-untyped-def]
        database, redis_client, redis_namespace, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.support import admin_clinics as seed

    driver = _browser(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    a = seed.seed_clinic(database, "a", first_start=now + timedelta(days=1), count=70)
    b = seed.seed_clinic(database, "b", first_start=now + timedelta(days=1), count=3, canary=True)
    seed.story(database, a, "A-050", 111)
    seed.story(database, b, "A-002", 222)
    with database.session() as s:
        _, admin_key = api_keys.create_key(s, "admin", "browser test", clinic_id="a")
    settings = settings_for(redis_namespace, public_url="http://127.0.0.1:9/")
    seen: list[str] = []

    def rows(keep: bool = True) -> list[str]:
        if keep:  # a page to look through for the canary at the end
            seen.append(driver.page_source)
        return [r.get_attribute("data-appointment-id")
                for r in driver.find_elements(By.CSS_SELECTOR, "#appointments tr[data-appointment-id]")]

    def search(**fields: str) -> None:
        for name, value in fields.items():
            box = driver.find_element(By.ID, f"q-{name}")
            box.clear()
            box.send_keys(value)
        Select(driver.find_element(By.ID, "q-when")).select_by_value("all")
        _submit(driver, "#search button", "#appointments")

    try:
        with running_app(web_services(settings, database, redis_client)) as url:
            driver.get(f"{url}/admin/login")
            driver.find_element(By.ID, "api_key").send_keys(admin_key)
            _submit(driver, "#login button", "#appointments")
            assert driver.find_element(By.ID, "clinic").text == "a"

            # Paging: 50, then the other 20, in start order.
            assert rows() == a.ids[:50] and "1–50 of 70" in driver.find_element(By.ID, "count").text
            _submit(driver, "#pager-top a.next", "#appointments")
            assert rows() == a.ids[50:]
            _submit(driver, "#pager-top a.prev", "#appointments")
            assert rows() == a.ids[:50]

            # A patient by a word of the name, in any case: the URL holds only the search's handle.
            search(patient="GRACE")
            grace = [i for i, p in a.patients.items() if p == "Grace Hopper"]
            assert sorted(rows()) == sorted(grace)
            assert "grace" not in driver.current_url.lower() and "search=" in driver.current_url
            # The canary is no patient of clinic a (the page shows the word only in the search box).
            search(patient=seed.CANARY_WORD)
            assert rows(keep=False) == [] and "match the search" in driver.find_element(By.ID, "appointments").text
            assert driver.page_source.count(seed.CANARY_WORD) == 1

            # One appointment's whole story.
            driver.find_element(By.ID, "q-patient").clear()
            search(appointment="A-050")
            assert rows() == ["A-050"]
            _submit(driver, '#appointments tr[data-appointment-id="A-050"] a', "#versions")
            seen.append(driver.page_source)
            versions = driver.find_elements(By.CSS_SELECTOR, "#versions tr[data-version]")
            assert [v.get_attribute("data-version") for v in versions] == ["1", "2"]
            assert "appointment.rescheduled" in versions[1].text
            assert "111" in driver.find_element(By.ID, "meeting").text
            notices = driver.find_element(By.ID, "notices").text
            assert "invite" in notices and "sent" in notices and "550 mailbox refused for A-050" in notices
            disclosures = driver.find_element(By.ID, "disclosures").text
            assert "doctor:D-1" in disclosures and "signed start link" in disclosures and "access API" in disclosures
            assert "redirected" in driver.find_element(By.ID, "join-clicks").text
            assert a.patients["A-050"] in driver.find_element(By.ID, "patient").text
            driver.save_screenshot(str(tmp_path / "admin-appointment.png"))

            # Clinic b's appointment, by its id: not found, like any missing one.
            driver.get(f"{url}/admin/appointments/A-002")
            seen.append(driver.page_source)
            assert seed.CANARY_NAME not in driver.page_source  # a's own A-002
            for other in ("B-ONLY-1", "b%2FA-002"):
                driver.get(f"{url}/admin/appointments/{other}")
                seen.append(driver.page_source)
                assert driver.find_element(By.ID, "not-found").text == "There is no such appointment."
            for section in ("doctors", "problems"):
                driver.get(f"{url}/admin/{section}")
                seen.append(driver.page_source)
            assert len(seen) == 11
            for page in seen:
                assert seed.CANARY_NAME not in page and seed.CANARY_WORD not in page and seed.CANARY_EMAIL not in page
    finally:
        driver.quit()
