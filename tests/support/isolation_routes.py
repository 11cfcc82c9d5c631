"""How each HTTP route is exercised by one principal against one clinic's resource, for the
isolation matrix (tests/integration/test_isolation_matrix.py).

Each exerciser makes its requests through the cell's :class:`Transcript` (every answer's
body and ``Location`` is kept for the matrix's scan for other clinics' data and start
links), asserts what the principal may or may not get, and returns whether the answer is
due to carry the resource's start_url. A principal a route does not accept (an API key on
the admin page, a bearer key at the event door) gets a refusal, asserted here. Another
clinic's resource is answered exactly as a missing one.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.fernet import Fernet
from sqlmodel import col, select

from telemed.events import signing
from telemed.foundation import join_tokens, start_tokens
from telemed.foundation.connect_links import make_connect_token, read_connect_token
from telemed.foundation.tenancy import scoped
from telemed.samples import booking
from telemed.store import appointments, ingress_keys, zoom_tokens
from telemed.store.models import InboxEvent
from telemed.workers.meetings.zoom_events import handle_zoom_webhook
from telemed.zoom import webhooks
from tests.support.isolation_world import (
    DEFAULT_INGRESS_SECRET,
    DEFAULT_ZOOM_SECRET,
    A,
    B,
    ClinicData,
    World,
    csrf_of,
)

API_ROLES = ("admin", "booking", "doctor:D-1")


@dataclass(frozen=True)
class Principal:
    """Who asks: an API key of a clinic (``role``), a route's own credential (``kind``), or no one."""

    name: str
    clinic: str | None = None  # whose principal (None: no clinic's, as the default clinic holds nothing here)
    role: str | None = None  # an API key's role
    kind: str | None = None  # a credential a route takes: "ingress key", "zoom secret", "doctor link", ...

    def __str__(self) -> str:
        return self.name


A_ADMIN, A_BOOKING, A_DOCTOR = (Principal(f"A {n}", A, r) for n, r in (("admin", "admin"), ("booking", "booking"),
                                                                          ("doctor", "doctor:D-1")))
B_ADMIN, B_DOCTOR = Principal("B admin", B, "admin"), Principal("B doctor", B, "doctor:D-1")
NONE = Principal("none")
STANDARD = (A_ADMIN, A_BOOKING, A_DOCTOR, B_ADMIN, B_DOCTOR, NONE)


def credentials(kind: str, *, default: bool = False) -> tuple[Principal, ...]:
    """A route's own credential of clinic A and of B (and of the default clinic)."""
    found = tuple(Principal(f"{label} {kind}", clinic, kind=kind) for label, clinic in (("A", A), ("B", B)))
    return (*found, Principal(f"default {kind}", None, kind=kind)) if default else found


@dataclass
class Transcript:
    """Every answer a cell got: its bodies and redirect targets."""

    texts: list[str] = field(default_factory=list)
    typed: list[str] = field(default_factory=list)  # what the principal typed into a form, shown back in it

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        self.texts.append(f"{response.status_code} {response.headers.get('location', '')}\n{response.text}")

    @contextmanager
    def client(self, world: World, **options: Any) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=world.url, timeout=10, event_hooks={"response": [self._keep]},
                          **options) as client:
            yield client

    def text(self) -> str:
        """Every answer, without the form fields that show back what the principal typed
        (a search for another clinic's patient shows the name searched for, and nothing else)."""
        text = "\n".join(self.texts)
        for typed in self.typed:
            text = text.replace(f'value="{escape(typed, quote=True)}"', 'value="(typed)"')
        return text


Exerciser = Callable[[World, Principal, ClinicData, Transcript], bool]


def headers_of(world: World, who: Principal) -> dict[str, str]:
    """An API key principal's key, as the access API takes it; nothing for anyone else."""
    if who.role is None or who.clinic is None:
        return {}
    return {"Authorization": f"Bearer {world.clinics[who.clinic].keys[who.role]}"}


def _may_read(who: Principal, resource: ClinicData) -> bool:
    # Both clinics' appointments are assigned to their doctor D-1, the doctors' keys' doctor.
    return who.clinic == resource.id and who.role in API_ROLES


def _forged_key() -> list[str]:
    """Keys that are not the deployment's: what anyone without a link can sign with."""
    return [Fernet.generate_key().decode()]


def _swap_claim(token: str, claim_of: str) -> str:
    """``token``'s signature over another token's claim: a link edited to name something else."""
    return f"{claim_of.rsplit('.', 1)[0]}.{token.rsplit('.', 1)[1]}"


# The access API ------------------------------------------------------------------------------


def _same_as_missing(answer: httpx.Response, missing: httpx.Response, asked: str) -> None:
    assert answer.status_code == missing.status_code == 404, (answer.status_code, answer.text)
    assert answer.json()["detail"] == missing.json()["detail"].replace("NOPE-1", asked)


def access_appointment(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    with t.client(world, headers=headers_of(world, who)) as web:
        answer = web.get(f"/v1/appointments/{resource.appointment}")
        if who.role is None:
            assert answer.status_code == 401, answer.text
        elif _may_read(who, resource):
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert (body["id"], body["clinic_id"], body["doctor_id"]) == (resource.appointment, resource.id, "D-1")
        else:
            _same_as_missing(answer, web.get("/v1/appointments/NOPE-1"), resource.appointment)
    return False


def access_meeting(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    with t.client(world, headers=headers_of(world, who)) as web:
        answer = web.get(f"/v1/appointments/{resource.appointment}/meeting")
        if who.role is None:
            assert answer.status_code == 401, answer.text
            return False
        if not _may_read(who, resource):
            _same_as_missing(answer, web.get("/v1/appointments/NOPE-1/meeting"), resource.appointment)
            return False
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["zoom_meeting_id"], body["join_url"]) == (resource.meeting_id, resource.join_url)
    # The clinic's admins and the assigned doctor (D-1, whose key this is), never the booking system.
    due = who.role in {"admin", "doctor:D-1"}
    assert ("start_url" in body) == due, body.keys()
    return due


# The admin page ------------------------------------------------------------------------------


@contextmanager
def _browser(world: World, who: Principal, t: Transcript) -> Iterator[tuple[httpx.Client, bool]]:
    """A browser of ``who``: signed in with an admin key's session, else refused at sign-in
    (another role's key; no key) and holding no session. An API key sent as a bearer
    header is no session either."""
    signed_in = who.role == "admin" and who.clinic is not None
    cookies = world.admin_cookies[who.clinic] if signed_in and who.clinic else None
    with t.client(world, cookies=cookies, headers=headers_of(world, who)) as browser:
        if not signed_in:
            form = browser.get("/admin/login")
            refused = browser.post("/admin/login", data={"api_key": headers_of(world, who).get(
                "Authorization", "").removeprefix("Bearer "), "csrf": csrf_of(form.text)})
            assert refused.status_code == 401 and "That is not an active admin API key." in refused.text
            assert "telemed_admin" not in browser.cookies
        yield browser, signed_in


def _to_sign_in(answer: httpx.Response) -> None:
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/login", answer.status_code


def _ids(html: str, attribute: str) -> list[str]:
    return re.findall(rf'{attribute}="([^"]+)"', html)


def _mine(who: Principal, resource: ClinicData) -> bool:
    return who.clinic == resource.id


def admin_list(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    with _browser(world, who, t) as (browser, signed_in):
        answer = browser.get("/admin/appointments", params={"when": "all"})
        if not signed_in:
            _to_sign_in(answer)
            return False
        assert answer.status_code == 200
        listed = _ids(answer.text, "data-appointment-id")
        assert "APT-SAME" in listed  # its own appointment of the id both clinics use
        assert (resource.appointment in listed) == _mine(who, resource)
        assert (resource.mark in answer.text) == _mine(who, resource)
    return False


def admin_search(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    with _browser(world, who, t) as (browser, signed_in):
        csrf = csrf_of(browser.get("/admin/appointments").text) if signed_in else "0" * 64
        for query in ({"patient": resource.patient_name}, {"patient": resource.patient_email},
                      {"appointment": resource.appointment}):
            t.typed.extend(query.values())
            answer = browser.post("/admin/appointments/search", data={"csrf": csrf, "when": "all", **query})
            if not signed_in:
                _to_sign_in(answer)
                continue
            assert answer.status_code == 303, answer.text
            found = browser.get(answer.headers["location"])
            listed = _ids(found.text, "data-appointment-id")
            assert listed == ([resource.appointment] if _mine(who, resource) else []), (query, listed)
    return False


def admin_detail(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    with _browser(world, who, t) as (browser, signed_in):
        answer = browser.get(f"/admin/appointments/{resource.appointment}")
        if not signed_in:
            _to_sign_in(answer)
            return False
        missing = browser.get("/admin/appointments/NOPE-1")
        assert missing.status_code == 404 and "There is no such appointment." in missing.text
        if _mine(who, resource):
            assert answer.status_code == 200 and resource.patient_name in answer.text
        else:
            assert answer.status_code == 404 and answer.text == missing.text
        # Its key, however spelled, is no clinic's own id: never a way into a row.
        for spelled in (f"{resource.id}%2F{resource.appointment}", f"{resource.id}/{resource.appointment}"):
            other = browser.get(f"/admin/appointments/{spelled}")
            assert other.status_code == 404 and other.text == missing.text, spelled
    return False


def admin_doctors(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    with _browser(world, who, t) as (browser, signed_in):
        answer = browser.get("/admin/doctors")
        if not signed_in:
            _to_sign_in(answer)
            return False
        listed = _ids(answer.text, "data-doctor-id")
        assert "D-1" in listed  # its own D-1, the id both clinics use
        assert (resource.other_doctor in listed) == _mine(who, resource)
        assert (f"Dr Other {resource.mark}" in answer.text) == _mine(who, resource)
    return False


def admin_connect_link(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    with _browser(world, who, t) as (browser, signed_in):
        csrf = csrf_of(browser.get("/admin/doctors").text) if signed_in else "0" * 64
        answer = browser.post(f"/admin/doctors/{resource.other_doctor}/connect-link", data={"csrf": csrf})
        if not signed_in:
            _to_sign_in(answer)
            return False
        missing = browser.post("/admin/doctors/NOPE-1/connect-link", data={"csrf": csrf})
        assert missing.status_code == 404 and "There is no such doctor." in missing.text
        if _mine(who, resource):
            assert answer.status_code == 200, answer.text
            token = re.search(r"/oauth/zoom/connect\?token=([A-Za-z0-9._-]+)", answer.text)
            assert token, answer.text
            claim = read_connect_token(world.settings.fernet_keys, token.group(1))
            assert claim.doctor_id == scoped(resource.id, resource.other_doctor)
        else:
            assert answer.status_code == 404 and answer.text == missing.text
        for spelled in (f"{resource.id}%2F{resource.doctor}", f"{resource.id}/{resource.other_doctor}"):
            other = browser.post(f"/admin/doctors/{spelled}/connect-link", data={"csrf": csrf})
            assert other.status_code == 404 and other.text == missing.text, spelled
    return False


def admin_problems(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    letter = world.dead_letter(resource)
    try:
        with _browser(world, who, t) as (browser, signed_in):
            answer = browser.get("/admin/problems")
            if not signed_in:
                _to_sign_in(answer)
                return False
            assert answer.status_code == 200
            assert (letter in _ids(answer.text, "data-message-id")) == _mine(who, resource)
            assert (f"Zoom refused the host of {resource.mark}" in answer.text) == _mine(who, resource)
    finally:
        world.drop_letter(letter)
    return False


def admin_retry(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    letter = world.dead_letter(resource)
    queued = len(world.recorder.calls)
    try:
        with _browser(world, who, t) as (browser, signed_in):
            csrf = csrf_of(browser.get("/admin/problems").text) if signed_in else "0" * 64
            answer = browser.post(f"/admin/dead-letters/{letter}/retry", data={"csrf": csrf})
            if not signed_in:
                _to_sign_in(answer)
            elif _mine(who, resource):
                assert answer.headers["location"] == "/admin/problems?done=retried"
                assert world.recorder.calls[queued:] == [("sync_meeting", (resource.key,))]
                assert not world.is_dead(letter)
                return False
            else:
                assert answer.headers["location"] == "/admin/problems?done=gone"  # as for a missing one
        assert world.is_dead(letter) and world.recorder.calls[queued:] == []
    finally:
        world.drop_letter(letter)
    return False


def admin_sign_in(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    key = headers_of(world, who).get("Authorization", "").removeprefix("Bearer ")
    with t.client(world) as browser:
        form = browser.get("/admin/login")
        answer = browser.post("/admin/login", data={"api_key": key, "csrf": csrf_of(form.text)})
        if who.role != "admin":
            assert answer.status_code == 401 and "That is not an active admin API key." in answer.text
            return False
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/appointments"
        page = browser.get("/admin/appointments", params={"when": "all"})
        own = world.clinics[who.clinic or ""]
        assert f"{own.mark} Clinic" in page.text  # the session is bounded by the key's clinic
        assert (resource.appointment in _ids(page.text, "data-appointment-id")) == _mine(who, resource)
    return False


def admin_sign_out(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    """Signing out ends the caller's own session only, never a session of the resource's
    clinic's admin (kept out of the transcript: it is that admin's view)."""
    theirs = world.sign_in(resource.id)
    try:
        with _browser(world, who, t) as (browser, signed_in):
            if signed_in:
                browser.cookies = world.fresh_session(who.clinic or "")  # a session of its own to end
                csrf = csrf_of(browser.get("/admin/appointments").text)
            else:
                csrf = "0" * 64
            _to_sign_in(browser.post("/admin/logout", data={"csrf": csrf}))
            _to_sign_in(browser.get("/admin/appointments"))
        page = theirs.get("/admin/appointments", params={"when": "all"})
        assert page.status_code == 200 and resource.appointment in _ids(page.text, "data-appointment-id")
    finally:
        theirs.close()
    return False


# Signed links --------------------------------------------------------------------------------


def _expiry() -> datetime:
    return datetime.now(UTC) + timedelta(days=5)


def _start_token(world: World, keys: list[str], appointment: ClinicData, doctor_of: ClinicData) -> str:
    return start_tokens.issue(keys, appointment_id=appointment.key, doctor_id=scoped(doctor_of.id, doctor_of.doctor),
                              expires_at=_expiry())


def start_link(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    keys = list(world.settings.fernet_keys)
    with t.client(world, headers=headers_of(world, who)) as web:
        if who.kind != "doctor link" or who.clinic is None:
            # No link: a token naming the resource, signed with a key that is not the deployment's.
            answer = web.get(f"/start/{_start_token(world, _forged_key(), resource, resource)}")
            assert answer.status_code == 403 and "This start link is not valid" in answer.text
            return False
        own = world.clinics[who.clinic]
        token = _start_token(world, keys, own, own)  # the link its doctor got in their mail
        if _mine(who, resource):
            answer = web.get(f"/start/{token}")
            assert answer.status_code == 302, answer.text
            assert answer.headers["location"].startswith(f"https://zoom.us/s/{resource.meeting_id}?")
            return True
        # The link edited to name the other clinic's appointment: the signature no longer holds.
        edited = _swap_claim(token, _start_token(world, keys, resource, resource))
        answer = web.get(f"/start/{edited}")
        assert answer.status_code == 403 and "This start link is not valid" in answer.text
        # Even a link the deployment signed naming its doctor (D-1, as the other's is) and
        # the other clinic's appointment opens nothing: the doctors are not the same one.
        mixed = web.get(f"/start/{_start_token(world, keys, resource, own)}")
        assert mixed.status_code == 403 and "This appointment is no longer yours" in mixed.text
    return False


def _join_token(keys: list[str], appointment: ClinicData) -> str:
    return join_tokens.issue(keys, appointment_id=appointment.key, patient_id=appointment.patient_id)


def join_link(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    keys = list(world.settings.fernet_keys)
    with t.client(world, headers=headers_of(world, who)) as web:
        if who.kind != "patient link" or who.clinic is None:
            answer = web.get(f"/join/{_join_token(_forged_key(), resource)}")
            assert answer.status_code == 403 and "This link is not valid" in answer.text
            return False
        token = _join_token(keys, world.clinics[who.clinic])
        if _mine(who, resource):
            answer = web.get(f"/join/{token}")
            assert answer.status_code == 302 and answer.headers["location"] == resource.join_url
            return False
        answer = web.get(f"/join/{_swap_claim(token, _join_token(keys, resource))}")
        assert answer.status_code == 403 and "This link is not valid" in answer.text
    return False


# A doctor's Zoom connection ------------------------------------------------------------------


def _connect_token(keys: list[str], doctor_of: ClinicData) -> str:
    return make_connect_token(keys, scoped(doctor_of.id, doctor_of.other_doctor), timedelta(hours=1))


def oauth_connect(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    keys = list(world.settings.fernet_keys)
    with t.client(world, headers=headers_of(world, who)) as web:
        if who.kind != "connect link" or who.clinic is None:
            answer = web.get("/oauth/zoom/connect", params={"token": _connect_token(_forged_key(), resource)})
            assert answer.status_code == 400 and "This connect link is not valid" in answer.text
            return False
        token = _connect_token(keys, world.clinics[who.clinic])
        if _mine(who, resource):
            answer = web.get("/oauth/zoom/connect", params={"token": token})
            assert answer.status_code == 302, answer.text
            query = parse_qs(urlsplit(answer.headers["location"]).query)
            assert query["client_id"] == [resource.oauth_app[0]]  # the clinic's own OAuth app
            return False
        edited = _swap_claim(token, _connect_token(keys, resource))
        answer = web.get("/oauth/zoom/connect", params={"token": edited})
        assert answer.status_code == 400 and "This connect link is not valid" in answer.text
    return False


def _to_callback(world: World, browser: httpx.Client, doctor_of: ClinicData) -> dict[str, str]:
    """Open the doctor's connect link in ``browser`` and consent at Zoom: the callback's query."""
    token = _connect_token(list(world.settings.fernet_keys), doctor_of)
    to_zoom = browser.get("/oauth/zoom/connect", params={"token": token})
    assert to_zoom.status_code == 302, to_zoom.text
    world.sim.authorize_as(doctor_of.other_doctor_email)
    to_us = httpx.get(to_zoom.headers["location"], follow_redirects=False, timeout=10)
    assert to_us.status_code == 302 and to_us.headers["location"].startswith(f"{world.url}/oauth/zoom/callback?")
    return {k: v[0] for k, v in parse_qs(urlsplit(to_us.headers["location"]).query).items()}


def _grant_version(world: World, doctor_of: ClinicData) -> int:
    with world.database.session() as s:
        grant = zoom_tokens.load_grant(s, scoped(doctor_of.id, doctor_of.other_doctor))
    return grant.version if grant is not None else 0


def oauth_callback(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    before = {c: _grant_version(world, d) for c, d in world.clinics.items()}
    with t.client(world, headers=headers_of(world, who)) as browser:
        if who.kind == "oauth browser" and who.clinic is not None and _mine(who, resource):
            answer = browser.get("/oauth/zoom/callback", params=_to_callback(world, browser, resource))
            assert answer.status_code == 200 and "Your Zoom account is connected" in answer.text
            after = {c: _grant_version(world, d) for c, d in world.clinics.items()}
            assert after == {**before, resource.id: before[resource.id] + 1}  # its doctor's, no one else's
            return False
        if who.kind == "oauth browser" and who.clinic is not None:
            _to_callback(world, browser, world.clinics[who.clinic])  # its own connection under way
        with httpx.Client(base_url=world.url, timeout=10) as theirs:  # the resource's doctor's browser
            query = _to_callback(world, theirs, resource)
        answer = browser.get("/oauth/zoom/callback", params=query)
        assert answer.status_code == 400 and "This sign-in could not be completed" in answer.text
    assert {c: _grant_version(world, d) for c, d in world.clinics.items()} == before
    return False


# The door: events from booking systems -------------------------------------------------------


def event_about(resource: ClinicData, labelled: str) -> tuple[str, bytes]:
    """An event about the resource's appointment (its id and doctor's id: all a sender of
    another clinic could know of it) whose clinic label is ``labelled``."""
    event_id = f"evt-m-{uuid.uuid4().hex[:12]}"
    event = booking(resource.appointment, 1, datetime.now(UTC) + timedelta(days=3), event_id=event_id,
                    doctor=(resource.doctor, "Dr Sender"), patient="Pat Sender")
    event["appointment"]["clinic"] = {"id": labelled, "name": f"Clinic {labelled}"}
    return event_id, json.dumps(event).encode()


def inbox_clinics(world: World, event_id: str) -> dict[str, str]:
    """Where an event id landed: {event key: clinic}."""
    with world.database.session() as s:
        rows = s.exec(select(InboxEvent).where(col(InboxEvent.event_id).endswith(event_id))).all()
        return {r.event_id: r.clinic_id for r in rows}


def signed_event(secret: str, body: bytes, key_id: str | None) -> dict[str, str]:
    headers = signing.sign(secret, body).headers
    return headers | ({"X-Telemed-Key-Id": key_id} if key_id else {})


def post_event(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    event_id, body = event_about(resource, resource.id)
    with t.client(world) as web:
        if who.kind != "ingress key":
            answer = web.post("/v1/events", content=body, headers={"Content-Type": "application/json",
                                                                   **headers_of(world, who)})
            assert answer.status_code == 401, answer.text  # the door takes signatures, not API keys
            assert inbox_clinics(world, event_id) == {}
            return False
        signer = world.clinics[who.clinic] if who.clinic else None
        secret, key_id = (signer.ingress_secret, signer.ingress_key_id) if signer else (DEFAULT_INGRESS_SECRET, None)
        answer = web.post("/v1/events", content=body, headers=signed_event(secret, body, key_id))
        if _mine(who, resource):
            assert answer.status_code == 202 and answer.json() == {"event_id": event_id, "status": "accepted"}
            assert inbox_clinics(world, event_id) == {scoped(resource.id, event_id): resource.id}
            return False
        assert answer.status_code == 403, answer.text
        assert answer.json()["detail"] == f"this key's clinic may not send events for clinic {resource.id!r}"
        assert inbox_clinics(world, event_id) == {}
        if signer is None:
            return False
        with world.database.session() as s:
            assert event_id in {r.event_id for r in ingress_keys.refusals(s, signer.id)}
        # The same appointment id under its own label is its own clinic's appointment of that id.
        own_id, own_body = event_about(resource, signer.id)
        answer = web.post("/v1/events", content=own_body, headers=signed_event(secret, own_body, key_id))
        assert answer.status_code == 202, answer.text
        assert inbox_clinics(world, own_id) == {scoped(signer.id, own_id): signer.id}
    with world.database.session() as s:
        theirs = appointments.get_appointment(s, resource.key)
        assert theirs is not None and theirs.version == 1 and theirs.patient_name == resource.patient_name
    return False


# Zoom's webhooks -----------------------------------------------------------------------------


def _notification(resource: ClinicData) -> bytes:
    return json.dumps({"event": "meeting.started", "event_ts": time.time_ns() // 1000,
                       "payload": {"account_id": resource.zoom_account[0],
                                   "object": {"id": str(resource.meeting_id), "host_id": "h-1",
                                              "topic": "Telemed video appointment"}}}).encode()


def _zoom_signed(secret: str, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    return {webhooks.TIMESTAMP_HEADER: ts, webhooks.SIGNATURE_HEADER: webhooks.zoom_signature(secret, ts, body),
            "Content-Type": "application/json"}


def _zoom_secret(world: World, who: Principal) -> str | None:
    if who.kind != "zoom secret":
        return None
    return world.clinics[who.clinic].zoom_webhook_secret if who.clinic else DEFAULT_ZOOM_SECRET


def _state(world: World, resource: ClinicData) -> tuple[str, int, bool]:
    with world.database.session() as s:
        row = appointments.get_appointment(s, resource.key)
        meeting = appointments.live_meeting(s, resource.key)
        assert row is not None
        return row.state, row.version, meeting is not None


def _deliver(world: World, web: httpx.Client, path: str, body: bytes, headers: dict[str, str],
             resource: ClinicData) -> str:
    """Post a signed notification to ``path`` and handle it as the worker does: its outcome."""
    queued = len(world.recorder.calls)
    answer = web.post(path, content=body, headers=headers)
    assert answer.status_code == 200 and answer.json() == {"status": "accepted"}, answer.text
    [(actor, (receipt_id,))] = world.recorder.calls[queued:]
    assert actor == "process_zoom_webhook"
    return handle_zoom_webhook(world.ctx, receipt_id).outcome


def _refused(web: httpx.Client, path: str, body: bytes, headers: dict[str, str]) -> None:
    answer = web.post(path, content=body, headers=headers)
    assert answer.status_code == 401, (path, answer.status_code, answer.text)


def clinic_zoom_webhook(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    body, secret = _notification(resource), _zoom_secret(world, who)
    before = _state(world, resource)
    with t.client(world) as web:
        if secret is None:  # unsigned; an API key is no Zoom signature
            _refused(web, f"/zoom/webhook/{resource.id}", body,
                     {"Content-Type": "application/json", **headers_of(world, who)})
        elif who.clinic is None:  # the default clinic's secret opens no other clinic's endpoint
            _refused(web, f"/zoom/webhook/{resource.id}", body, _zoom_signed(secret, body))
        else:
            other = B if who.clinic == A else A
            _refused(web, f"/zoom/webhook/{other}", body, _zoom_signed(secret, body))  # not its endpoint
            outcome = _deliver(world, web, f"/zoom/webhook/{who.clinic}", body, _zoom_signed(secret, body), resource)
            if _mine(who, resource):
                assert outcome == "in_progress" and _state(world, resource)[0] == "in_progress"
                return False
            assert outcome == "ignored: not a meeting of this clinic", outcome
    assert _state(world, resource) == before
    return False


def default_zoom_webhook(world: World, who: Principal, resource: ClinicData, t: Transcript) -> bool:
    body, secret = _notification(resource), _zoom_secret(world, who)
    before = _state(world, resource)
    with t.client(world) as web:
        if secret is not None and who.clinic is None:  # the default clinic's own endpoint and secret
            outcome = _deliver(world, web, "/zoom/webhook", body, _zoom_signed(secret, body), resource)
            assert outcome == "ignored: not a meeting of this clinic", outcome
        elif secret is not None:
            _refused(web, "/zoom/webhook", body, _zoom_signed(secret, body))
        else:
            _refused(web, "/zoom/webhook", body, {"Content-Type": "application/json", **headers_of(world, who)})
    assert _state(world, resource) == before
    return False
