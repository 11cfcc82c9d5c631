"""``POST /v1/events`` with clinics, over real HTTP on the real store and Redis: the key id
picks the clinic, two keys live side by side during a rotation, a retired or unknown key
is a bad signature, an event naming another clinic is refused and recorded, and the
same ids in two clinics are two appointments. Without the header, nothing changed."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
from sqlmodel import select

from telemed.samples import booking
from telemed.store import clinics, ingress_keys
from telemed.store.db import Database
from telemed.store.models import Appointment, InboxEvent
from telemed.web import metrics
from telemed.workers.apply_event import apply_event
from tests.support.webapp import INGRESS_SECRET, Recorder, running_app, settings_for, web_services

pytestmark = pytest.mark.integration
PATIENT = "Canary Crossclinic"


@dataclass
class Door:
    url: str
    recorder: Recorder
    database: Database
    keys: dict[str, tuple[str, str]]  # clinic → (key id, secret)

    def post(self, event: dict[str, Any], *, key_id: str | None = None, secret: str | None = None,
             clinic: str | None = None) -> httpx.Response:
        """Sign as ``clinic`` (its first key), or with the key and secret given, or as the
        default clinic (no key id)."""
        if clinic is not None:
            key_id, secret = self.keys[clinic]
        body = json.dumps(event).encode()
        headers = _sign(body, secret or INGRESS_SECRET)
        if key_id is not None:
            headers["X-Telemed-Key-Id"] = key_id
        return httpx.post(f"{self.url}/v1/events", content=body, headers=headers)

    def inbox(self) -> list[InboxEvent]:
        with self.database.session() as s:
            return list(s.exec(select(InboxEvent)))


def _sign(body: bytes, secret: str) -> dict[str, str]:
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), b"v1:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Telemed-Timestamp": ts, "X-Telemed-Signature": f"v1={mac}", "Content-Type": "application/json"}


def _event(appointment_id: str = "A-1", *, clinic_label: str | None = "C-1", event_id: str | None = None
           ) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    event = booking(appointment_id, 1, start, patient=PATIENT, event_id=event_id)
    if clinic_label is None:
        del event["appointment"]["clinic"]
    else:
        event["appointment"]["clinic"]["id"] = clinic_label
    return event


def _start(database: Database, redis_client: redis.Redis, namespace: str, **settings: Any) -> Iterator[Door]:
    recorder = Recorder()
    keys = {}
    with database.session() as s:
        for clinic in ("north", "south"):
            clinics.add_clinic(s, clinic, f"Clinic {clinic}")
            info, secret = ingress_keys.add_key(s, clinic)
            keys[clinic] = (info.key_id, secret)
    services = web_services(settings_for(namespace, **settings), database, redis_client, recorder)
    with running_app(services) as url:
        yield Door(url, recorder, database, keys)


@pytest.fixture
def door(database: Database, redis_client: redis.Redis, redis_namespace: str) -> Iterator[Door]:
    yield from _start(database, redis_client, redis_namespace)


def _rejected(reason: str) -> float:
    return metrics.EVENTS_REJECTED.labels(source="http", reason=reason)._value.get()  # type: ignore[no-any-return]


def test_the_key_id_puts_the_event_into_its_clinic(door: Door) -> None:
    event = _event(event_id="evt-1")
    answer = door.post(event, clinic="north")
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"event_id": "evt-1", "status": "accepted"}  # the clinic's own id
    [row] = door.inbox()
    assert (row.event_id, row.appointment_id, row.clinic_id) == ("north/evt-1", "north/A-1", "north")
    assert door.recorder.calls == [("process_event", ("north/evt-1",))]
    again = door.post(event, clinic="north")
    assert again.json() == {"event_id": "evt-1", "status": "duplicate"}


def test_the_same_ids_in_two_clinics_and_the_default_are_three_appointments(door: Door) -> None:
    event = _event(event_id="evt-1", clinic_label=None)
    for clinic in ("north", "south", None):
        answer = door.post(event, clinic=clinic)
        assert answer.status_code == 202 and answer.json()["status"] == "accepted", (clinic, answer.text)
    queued = [args[0] for _name, args in door.recorder.calls]
    assert sorted(queued) == ["evt-1", "north/evt-1", "south/evt-1"]
    for key in queued:
        apply_event(door.database, key)
    with door.database.session() as s:
        rows = {a.id: (a.clinic_id, a.doctor_id) for a in s.exec(select(Appointment))}
    assert rows == {"A-1": ("default", "D-1"), "north/A-1": ("north", "north/D-1"),
                    "south/A-1": ("south", "south/D-1")}


def test_two_active_keys_during_a_rotation_then_the_old_one_is_refused(door: Door) -> None:
    old_id, old_secret = door.keys["north"]
    with door.database.session() as s:
        new, new_secret = ingress_keys.add_key(s, "north")
    with door.database.session() as s, pytest.raises(ingress_keys.TooManyKeys, match="retire one first"):
        ingress_keys.add_key(s, "north")
    assert door.post(_event("R-1"), key_id=old_id, secret=old_secret).status_code == 202
    assert door.post(_event("R-2"), key_id=new.key_id, secret=new_secret).status_code == 202
    # A key's secret is its own: the new id with the old secret is a bad signature.
    assert door.post(_event("R-3"), key_id=new.key_id, secret=old_secret).status_code == 401
    with door.database.session() as s:
        assert ingress_keys.retire_key(s, old_id) is not None
    refused = door.post(_event("R-4"), key_id=old_id, secret=old_secret)
    bad_signature = door.post(_event("R-5"), key_id=new.key_id, secret="not-the-secret")
    assert refused.status_code == bad_signature.status_code == 401
    assert refused.json() == bad_signature.json() == {"detail": "signature does not match the body"}
    assert door.post(_event("R-6"), key_id=new.key_id, secret=new_secret).status_code == 202
    assert {r.appointment_id for r in door.inbox()} == {"north/R-1", "north/R-2", "north/R-6"}
    with door.database.session() as s:  # a third key may be added once one is retired
        ingress_keys.add_key(s, "north")


def test_unknown_and_malformed_key_ids_look_like_a_bad_signature(door: Door) -> None:
    _key_id, secret = door.keys["north"]
    answers = [door.post(_event(), key_id=key_id, secret=secret)
               for key_id in ("ck_0000000000000000", "ck_nothex", "x" * 5000, "")]
    bad = door.post(_event(), key_id=door.keys["north"][0], secret="wrong")
    for answer in [*answers, bad]:
        assert answer.status_code == 401 and answer.json() == {"detail": "signature does not match the body"}
    assert door.inbox() == []


def test_an_event_naming_another_clinic_is_refused_and_recorded(door: Door) -> None:
    before = _rejected("other_clinic")
    north_key = door.keys["north"][0]
    cases = [("north", "south"), ("north", "default"), (None, "north")]
    for signer, named in cases:
        answer = door.post(_event(f"X-{named}", clinic_label=named, event_id=f"evt-x-{named}"), clinic=signer)
        assert answer.status_code == 403, (signer, named, answer.text)
        assert named in answer.json()["detail"]
    assert door.inbox() == [] and door.recorder.calls == []
    assert _rejected("other_clinic") - before == len(cases)
    with door.database.session() as s:
        north = [(r.key_id, r.named_clinic_id, r.event_id) for r in ingress_keys.refusals(s, "north")]
        default = [(r.key_id, r.named_clinic_id, r.event_id) for r in ingress_keys.refusals(s, "default")]
        assert ingress_keys.refusals(s, "south") == []
        stored = [r.model_dump() for r in ingress_keys.refusals(s, "north")]
    assert sorted(north) == [(north_key, "default", "evt-x-default"), (north_key, "south", "evt-x-south")]
    assert default == [(None, "north", "evt-x-north")]
    assert PATIENT not in repr(stored)  # never the payload


def test_naming_itself_or_a_label_that_is_no_clinic_is_accepted_into_the_signer(door: Door) -> None:
    for appointment, label in (("S-1", "north"), ("S-2", "C-1"), ("S-3", "South"), ("S-4", None)):
        answer = door.post(_event(appointment, clinic_label=label), clinic="north")
        assert answer.status_code == 202, (label, answer.text)
    assert {(r.appointment_id, r.clinic_id) for r in door.inbox()} == {
        ("north/S-1", "north"), ("north/S-2", "north"), ("north/S-3", "north"), ("north/S-4", "north")}
    # The default clinic names itself, or its booking system's own label, as before.
    assert door.post(_event("S-5", clinic_label="default")).status_code == 202
    assert door.post(_event("S-6", clinic_label="C-1")).status_code == 202


def test_a_suspended_clinics_events_are_refused_after_the_signature(door: Door) -> None:
    with door.database.session() as s:
        clinics.suspend_clinic(s, "north")
    answer = door.post(_event(), clinic="north")
    assert answer.status_code == 403 and "suspended" in answer.json()["detail"]
    # Without a good signature nobody learns that the clinic is suspended.
    assert door.post(_event(), key_id=door.keys["north"][0], secret="wrong").status_code == 401
    with door.database.session() as s:
        clinics.resume_clinic(s, "north")
    assert door.post(_event(), clinic="north").status_code == 202


def test_last_used_is_kept_to_the_minute(door: Door) -> None:
    key_id = door.keys["north"][0]

    def last_used() -> datetime | None:
        with door.database.session() as s:
            return next(k.last_used_at for k in ingress_keys.list_keys(s, "north") if k.key_id == key_id)

    assert last_used() is None
    assert door.post(_event("U-1"), clinic="north").status_code == 202
    first = last_used()
    assert first is not None
    assert door.post(_event("U-2"), clinic="north").status_code == 202
    assert last_used() == first  # within the minute: not written again


def test_the_default_clinic_without_a_key_id_is_unchanged(door: Door) -> None:
    answer = door.post(_event(event_id="evt-d"))
    assert answer.status_code == 202 and answer.json() == {"event_id": "evt-d", "status": "accepted"}
    [row] = door.inbox()
    assert (row.event_id, row.appointment_id, row.clinic_id) == ("evt-d", "A-1", "default")


def test_without_the_deployment_secret_only_keyed_clinics_are_served(
        database: Database, redis_client: redis.Redis, redis_namespace: str) -> None:
    for door in _start(database, redis_client, redis_namespace, ingress_secret=None):
        answer = door.post(_event())
        assert answer.status_code == 503 and "TELEMED_INGRESS_SECRET" in answer.json()["detail"]
        assert door.post(_event(), clinic="south").status_code == 202


def test_the_openapi_description_names_the_key_id_and_the_403(door: Door) -> None:
    spec = httpx.get(f"{door.url}/openapi.json").json()
    operation = spec["paths"]["/v1/events"]["post"]
    assert "X-Telemed-Key-Id" in {p["name"] for p in operation["parameters"]}
    assert "403" in operation["responses"]
