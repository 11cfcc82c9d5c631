"""The admin page scoped to a clinic, over real HTTP: clinic a's admin against clinic b's
data on every admin route, the search (appointment, doctor, patient) and paging.

Both clinics have appointments A-001... and a doctor D-1 (ids are per clinic); clinic b's
patients are all the canary, who must never reach clinic a's admin in any page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis
from sqlalchemy import text

from telemed.foundation import dead_letters as dlq
from telemed.store import api_keys
from telemed.store.clinic_tables import CLINIC_DELETED, Clinic
from telemed.store.db import Database
from tests.support import admin_clinics as seed
from tests.support.webapp import Recorder, running_app, settings_for, web_services

pytestmark = pytest.mark.integration
SECRETS = ("JOINCANARY", "PASSCANARY", "REGCANARY", "start_url", "zoom.us/s/")


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert match, html
    return match.group(1)


def _ids(html: str) -> list[str]:
    return [unescape(i) for i in re.findall(r'<tr data-appointment-id="([^"]+)"', html)]


@dataclass
class World:
    url: str
    database: Database
    redis: redis.Redis
    namespace: str
    recorder: Recorder
    a: seed.Clinic
    b: seed.Clinic
    keys: dict[str, str]

    @contextmanager
    def admin(self, who: str) -> Iterator[httpx.Client]:
        """A browser signed in with ``who``'s admin key."""
        with httpx.Client(base_url=self.url) as client:
            form = client.get("/admin/login")
            answer = client.post("/admin/login", data={"api_key": self.keys[who], "csrf": _csrf(form.text)})
            assert answer.status_code == 303, answer.text
            yield client


@pytest.fixture
def world(database: Database, redis_client: redis.Redis, redis_namespace: str) -> Iterator[World]:
    now = datetime.now(UTC).replace(microsecond=0)
    # Clinic a: 10 past appointments (the 10th started 1.5 h ago), then 115 from 30 min ago on.
    a = seed.seed_clinic(database, "a", first_start=now - timedelta(hours=10, minutes=30), count=125)
    b = seed.seed_clinic(database, "b", first_start=now + timedelta(days=1), count=3, extra=("B-ONLY-1",),
                         canary=True)
    seed.story(database, a, "A-050", 111)
    seed.story(database, b, "A-002", 222)
    seed.park(database, a, "A-060", "Zoom refused the host of a/A-060")
    seed.park(database, b, "A-003", f"B's own trouble with {seed.CANARY_NAME}")
    seed.dead_letters(database, redis_client, redis_namespace, a, "A-050")
    seed.dead_letters(database, redis_client, redis_namespace, b, "A-002")
    keys = {}
    with database.session() as s:
        s.add(Clinic(id="a", name="Northside Clinic A"))
        for who, role, clinic in (("a", "admin", "a"), ("b", "admin", "b"), ("default", "admin", "default"),
                                  ("a-booking", "booking", "a")):
            _, keys[who] = api_keys.create_key(s, role, "test", clinic_id=clinic)
    recorder = Recorder()
    settings = settings_for(redis_namespace, public_url="http://127.0.0.1:9/")
    with running_app(web_services(settings, database, redis_client, recorder)) as url:
        yield World(url, database, redis_client, redis_namespace, recorder, a, b, keys)


def _every_page(client: httpx.Client, when: str, search: str | None = None) -> list[httpx.Response]:
    pages, number = [], 1
    while True:
        params = {"when": when, "page": str(number)} | ({"search": search} if search else {})
        answer = client.get("/admin/appointments", params=params)
        assert answer.status_code == 200, answer.text
        pages.append(answer)
        if 'rel="next"' not in answer.text:
            return pages
        number += 1


def _search(client: httpx.Client, **fields: str) -> tuple[httpx.Response, str | None]:
    token = _csrf(client.get("/admin/appointments").text)
    answer = client.post("/admin/appointments/search", data={"csrf": token, "when": "all"} | fields)
    if answer.status_code != 303:
        return answer, None
    location = answer.headers["location"]
    handle = parse_qs(urlsplit(location).query).get("search", [None])[0]
    return client.get(location), handle


def _no_canary(answer: httpx.Response) -> None:
    body = answer.text
    assert seed.CANARY_NAME not in body and seed.CANARY_EMAIL not in body and seed.CANARY_WORD not in body
    assert "B-ONLY-1" not in body and "D-9" not in body and "Only In B" not in body and "Liskov" not in body
    assert not re.search(r"\b[ab]/(A-|B-|D-|evt-)", body)  # never a scoped key
    for secret in SECRETS:
        assert secret not in body


def test_the_list_is_the_clinics_own_by_start_time_and_pages(world: World) -> None:
    with world.admin("a") as client:
        assert client.get("/admin").headers["location"] == "/admin/appointments"
        assert '<span class="clinic" id="clinic">Northside Clinic A <span class="muted">(a)</span>' in \
            client.get("/admin/appointments").text
        upcoming = _every_page(client, "upcoming")
        past = _every_page(client, "past")
        every = _every_page(client, "all")
        for answer in upcoming + past + every:
            _no_canary(answer)
            assert answer.headers["cache-control"] == "no-store"
        listed = [i for page in upcoming for i in _ids(page.text)]
        assert [len(_ids(p.text)) for p in upcoming] == [50, 50, 15]
        assert listed == world.a.ids[10:]  # soonest first, each once, no gaps: a stable order
        assert "1–50 of 115" in upcoming[0].text and "page 3 of 3" in upcoming[2].text
        assert [i for page in past for i in _ids(page.text)] == list(reversed(world.a.ids[:10]))
        assert [i for page in every for i in _ids(page.text)] == list(reversed(world.a.ids))
        assert "Grace Hopper" in upcoming[0].text  # the clinic's admin sees its own patients
        # Past the end: the last page.
        assert _ids(client.get("/admin/appointments", params={"page": "99"}).text) == world.a.ids[110:]
    with world.admin("b") as client:
        page = client.get("/admin/appointments").text
        assert _ids(page) == ["A-001", "A-002", "A-003", "B-ONLY-1"] and seed.CANARY_NAME in page
        assert "Grace Hopper" not in page and "Lovelace" not in page


def test_detail_shows_the_story_and_another_clinics_id_is_a_plain_404(world: World) -> None:
    with world.admin("a") as client:
        page = client.get("/admin/appointments/A-050")
        assert page.status_code == 200
        _no_canary(page)
        body = unescape(page.text)
        versions = re.findall(r'<tr data-version="(\d+)">', page.text)
        assert versions == ["1", "2"] and "appointment.rescheduled" in body and "evt-A-050-v2" in body
        assert "111" in body and "host@a-clinic.example" in body and "registered (their own link)" in body
        notices = body[body.index('id="notices"'):body.index('id="reminders"')]
        rows = [re.sub(r"<[^>]+>", " ", r).split() for r in notices.split("<tr>")[2:]]
        assert [r[:5] for r in rows] == [["1", "patient", "invite", "mail", "sent"],
                                         ["2", "doctor", "updated", "mail", "pending"],
                                         ["2", "patient", "updated", "mail", "failed"]]
        assert "550 mailbox refused for A-050" in notices
        assert 'id="reminders"' in body and "1 h" in body
        disclosures = body[body.index('id="disclosures"'):body.index('id="join-clicks"')]
        assert "doctor:D-1" in disclosures and "signed start link" in disclosures
        assert "admin key:abcdef0123" in disclosures and "access API" in disclosures
        assert "redirected" in body[body.index('id="join-clicks"'):]
        assert "Appointment A-050 needs attention (a)" in body
        assert world.a.patients["A-050"] in body and world.a.emails["A-050"] in body

        missing = client.get("/admin/appointments/NOPE-1")
        for other in ("B-ONLY-1", "b%2FB-ONLY-1", "b%2FA-002", "..%2Fb%2FA-002"):
            answer = client.get(f"/admin/appointments/{other}")
            assert answer.status_code == 404 and answer.text == missing.text
        assert missing.status_code == 404 and "There is no such appointment." in missing.text
        # Its own A-002 is its own patient's, not b's.
        own = client.get("/admin/appointments/A-002")
        assert own.status_code == 200
        _no_canary(own)
    with world.admin("default") as client:
        # The default clinic's keys are bare ids: a '/' must not reach another clinic's row.
        missing = client.get("/admin/appointments/NOPE-1")
        for other in ("b%2FA-002", "a%2FA-050", "b/A-002"):
            answer = client.get(f"/admin/appointments/{other}")
            assert answer.status_code == 404
            if "%2F" in other:
                assert answer.text == missing.text
        listing = client.get("/admin/appointments", params={"when": "all"})
        assert _ids(listing.text) == [] and seed.CANARY_NAME not in listing.text
    with world.admin("b") as client:
        page = client.get("/admin/appointments/A-002")
        assert page.status_code == 200 and seed.CANARY_NAME in page.text and seed.CANARY_EMAIL in page.text
        assert "222" in page.text and "111" not in page.text
        missing = client.get("/admin/appointments/NOPE-1")
        for other in ("A-050", "a%2FA-050"):  # a's, not b's
            answer = client.get(f"/admin/appointments/{other}")
            assert answer.status_code == 404 and answer.text == missing.text


def test_search_by_appointment_doctor_and_patient_stays_in_the_clinic(world: World) -> None:
    with world.admin("a") as client:
        found, handle = _search(client, appointment="A-05")
        assert _ids(found.text) == [f"A-{i:03d}" for i in range(59, 49, -1)] and handle  # latest first
        found, _ = _search(client, appointment="A-050")
        assert _ids(found.text) == ["A-050"]
        found, _ = _search(client, doctor="D-2")
        assert len(_ids(found.text)) == 50 and "Turing" in found.text and "Lovelace" not in found.text
        found, _ = _search(client, doctor="lovelace")
        assert "Turing" not in found.text and "Lovelace" in found.text
        # Patients: a whole word of the name (any case, any accents), the whole e-mail, the id.
        grace = [i for i, p in world.a.patients.items() if p == "Grace Hopper"]
        assert 0 < len(grace) <= 50
        for query in ("hopper", "HOPPER grace", "  Grace   Hopper "):
            found, _ = _search(client, patient=query)
            assert sorted(_ids(found.text)) == sorted(grace), query
        emile = [i for i, p in world.a.patients.items() if p.startswith("Émile")]
        for query in ("emile", "ÉMILE zola", "Emile"):
            found, _ = _search(client, patient=query)
            assert sorted(_ids(found.text)) == sorted(emile), query
        found, _ = _search(client, patient="hopp")  # not a whole word
        assert _ids(found.text) == []
        found, _ = _search(client, patient="grace.a-007@a-clinic.example")
        assert _ids(found.text) == []  # A-007's patient is not Grace
        found, _ = _search(client, patient=world.a.emails["A-005"].upper())
        assert _ids(found.text) == ["A-005"]
        found, _ = _search(client, patient="P-A-012")
        assert _ids(found.text) == ["A-012"]
        found, _ = _search(client, doctor="D-1", patient="grace")  # together: AND
        assert all(world.a.patients[i] == "Grace Hopper" for i in _ids(found.text)) and _ids(found.text)
        # The canary is no patient of clinic a, by name, word or address; nor b's ids.
        for fields in ({"patient": seed.CANARY_NAME}, {"patient": seed.CANARY_WORD}, {"patient": seed.CANARY_EMAIL},
                       {"appointment": "B-ONLY"}, {"doctor": "D-9"}, {"doctor": "Liskov"}):
            found, _ = _search(client, **fields)
            assert found.status_code == 200 and _ids(found.text) == [], fields
            assert "No appointments match the search." in found.text
    with world.admin("b") as client:
        found, _ = _search(client, patient=seed.CANARY_WORD.lower())
        assert _ids(found.text) == ["B-ONLY-1", "A-003", "A-002", "A-001"]
        found, _ = _search(client, patient=seed.CANARY_EMAIL)
        assert len(_ids(found.text)) == 4
        found, _ = _search(client, patient="grace")
        assert _ids(found.text) == []


def test_searches_page_and_keep_the_patient_out_of_every_url(world: World) -> None:
    with world.admin("a") as client:
        found, handle = _search(client, patient="Grace", when="all")
        assert handle is not None
        total = len([p for p in world.a.patients.values() if p == "Grace Hopper"])
        assert total > 0
        # The redirect and every link carry the handle, never the patient.
        urls = [*re.findall(r'href="([^"]+)"', found.text), str(found.url)]
        assert urls and not any("grace" in unescape(u).lower() for u in urls)
        assert 'value="Grace"' in found.text  # the form shows what was searched
        pages = _every_page(client, "all", handle)
        assert sum(len(_ids(p.text)) for p in pages) == total
        # Another session (even of the same key) cannot use the handle.
        with world.admin("a") as other:
            answer = other.get("/admin/appointments", params={"when": "all", "search": handle})
            assert "That search has expired" in answer.text and len(_ids(answer.text)) == 50
        with world.admin("b") as other:
            answer = other.get("/admin/appointments", params={"when": "all", "search": handle})
            assert "That search has expired" in answer.text and "Grace" not in answer.text
        # The handle is kept encrypted in Redis.
        stored = [world.redis.get(k) for k in world.redis.scan_iter(match=f"{world.namespace}:admin:search:*")]
        assert stored and not any(b"Grace" in (v or b"") for v in stored)


def test_rows_from_before_the_index_are_found_after_a_search(world: World) -> None:
    with world.database.engine.begin() as connection:
        connection.execute(text("UPDATE appointments SET patient_index = NULL"))
    with world.admin("a") as client:
        found, _ = _search(client, patient="mathison")
        expected = [i for i, p in world.a.patients.items() if p == "Alan Mathison"]
        assert sorted(_ids(found.text)) == sorted(expected) and len(expected) == 31
    with world.database.engine.connect() as connection:
        rows = connection.execute(text("SELECT clinic_id, patient_index FROM appointments")).all()
    assert all(index for clinic, index in rows if clinic == "a")
    assert not any(index for clinic, index in rows if clinic == "b")  # another clinic's search is not b's business


def test_bad_input_is_named_and_posts_need_the_csrf_token(world: World) -> None:
    with world.admin("a") as client:
        answer = client.get("/admin/appointments", params={"page": "abc"})
        assert answer.status_code == 400 and "page: a whole number" in answer.text
        answer = client.get("/admin/appointments", params={"when": "someday"})
        assert answer.status_code == 400 and "when: one of upcoming, past, all" in answer.text
        answer, _ = _search(client, patient="x" * 321)
        assert answer.status_code == 400 and "patient: at most 320 characters" in answer.text
        answer, _ = _search(client, appointment="b/A-002")
        assert answer.status_code == 400 and "appointment: an appointment id has no" in answer.text
        forged = client.post("/admin/appointments/search", data={"csrf": "0" * 64, "patient": "grace"})
        assert forged.status_code == 303 and forged.headers["location"] == "/admin/appointments?done=csrf"
        for path in ("/admin/doctors/D-1/connect-link", "/admin/dead-letters/x/retry"):
            forged = client.post(path, data={"csrf": "0" * 64})
            assert forged.status_code == 303 and forged.headers["location"].endswith("?done=csrf")


def test_doctors_and_connect_links_are_the_clinics_own(world: World) -> None:
    with world.admin("a") as client:
        page = client.get("/admin/doctors")
        _no_canary(page)
        assert re.findall(r'data-doctor-id="([^"]+)"', page.text) == ["D-1", "D-2"]
        assert "Lovelace" in page.text
        token = _csrf(page.text)
        link = client.post("/admin/doctors/D-1/connect-link", data={"csrf": token})
        assert link.status_code == 200 and "/oauth/zoom/connect?token=" in link.text
        missing = client.post("/admin/doctors/D-404/connect-link", data={"csrf": token})
        assert missing.status_code == 404 and "There is no such doctor." in missing.text
        for other in ("D-9", "b%2FD-9", "b%2FD-1"):
            answer = client.post(f"/admin/doctors/{other}/connect-link", data={"csrf": token})
            assert answer.status_code == 404 and answer.text == missing.text
    with world.admin("b") as client:
        page = client.get("/admin/doctors")
        assert re.findall(r'data-doctor-id="([^"]+)"', page.text) == ["D-1", "D-9"] and "Lovelace" not in page.text


def test_failures_and_dead_letters_are_the_clinics_own(world: World) -> None:
    with world.admin("a") as client:
        page = client.get("/admin/problems")
        _no_canary(page)
        body = unescape(page.text)
        assert "Zoom refused the host of A-060" in body and "Appointment A-050 needs attention (a)" in body
        assert "550 mailbox refused for A-050" in body
        rows = re.findall(r'data-message-id="([^"]+)"', page.text)
        assert sorted(rows) == sorted(world.a.letters.values())
        assert "appointment A-050" in body and "invite to patient about appointment A-050" in body
        assert "gave up on A-050 (a)" in body
        token = _csrf(page.text)
        # Clinic b's dead letter, by its real message id: as if it did not exist, and left alone.
        for message_id in world.b.letters.values():
            answer = client.post(f"/admin/dead-letters/{message_id}/retry", data={"csrf": token})
            assert answer.headers["location"] == "/admin/problems?done=gone"
            assert dlq.get_dead(world.redis, world.namespace, message_id) is not None
        assert world.recorder.calls == []
        own = world.a.letters["sync"]
        answer = client.post(f"/admin/dead-letters/{own}/retry", data={"csrf": token})
        assert answer.headers["location"] == "/admin/problems?done=retried"
        assert world.recorder.calls == [("sync_meeting", ("a/A-050",))]
        assert dlq.get_dead(world.redis, world.namespace, own) is None
    with world.admin("b") as client:
        page = client.get("/admin/problems")
        assert sorted(re.findall(r'data-message-id="([^"]+)"', page.text)) == sorted(world.b.letters.values())
        assert "A-060" not in page.text and seed.CANARY_NAME in unescape(page.text)
        answer = client.post(f"/admin/dead-letters/{world.a.letters['delivery']}/retry",
                             data={"csrf": _csrf(page.text)})
        assert answer.headers["location"] == "/admin/problems?done=gone"
        assert dlq.get_dead(world.redis, world.namespace, world.a.letters["delivery"]) is not None
        assert len(world.recorder.calls) == 1
    with world.admin("default") as client:
        page = client.get("/admin/problems")
        assert "data-message-id" not in page.text and "Nothing failed lately." in page.text


def test_a_key_of_another_role_or_a_revoked_key_gets_nothing(world: World) -> None:
    with httpx.Client(base_url=world.url) as client:
        form = client.get("/admin/login")
        refused = client.post("/admin/login", data={"api_key": world.keys["a-booking"], "csrf": _csrf(form.text)})
        assert refused.status_code == 401
        for path in ("/admin/appointments", "/admin/appointments/A-050", "/admin/doctors", "/admin/problems"):
            assert client.get(path).headers["location"] == "/admin/login"
    with world.admin("a") as client:
        assert client.get("/admin/appointments").status_code == 200
        with world.database.session() as s:
            api_keys.revoke_key(s, world.keys["a"].split("_")[1])
        assert client.get("/admin/appointments").headers["location"] == "/admin/login"
    # A deleted clinic's admins are signed out and cannot sign in again.
    with world.admin("b") as client:
        with world.database.session() as s:
            s.add(Clinic(id="b", name="B", status=CLINIC_DELETED))
        assert client.get("/admin/appointments").headers["location"] == "/admin/login"
        form = client.get("/admin/login")
        refused = client.post("/admin/login", data={"api_key": world.keys["b"], "csrf": _csrf(form.text)})
        assert refused.status_code == 401
