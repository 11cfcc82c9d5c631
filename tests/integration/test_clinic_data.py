"""A clinic's data out (export) and gone (erasure), on both databases and both Redis backends.

Three clinics share one store and one Redis: ``acme`` and ``bolt`` (the same booking-system
ids, ``APT-1`` and ``D-1``, in each) and the default clinic. Every value each owns carries
its canary, so scanning every column of every table (decrypted) and every Redis key and
value shows whatever of a clinic is left, or has leaked into another's export.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet
from dramatiq.brokers.redis import RedisBroker

from telemed.clinic_deletion import DeletionRefused, ZoomMeetings, delete_clinic
from telemed.foundation.cipher import Cipher
from telemed.store import clinic_erasure
from telemed.store.clinic_erasure import PLAN_TABLES
from telemed.store.clinic_export import ExportRefused, write_export
from telemed.store.clinic_tables import Clinic
from telemed.store.db import Database
from telemed.workers.queue.work_queue import QUEUES
from telemed.zoom.tokens import account_token_keys
from telemed.zoom.user_tokens import user_token_keys
from tests.support.clinic_data import (
    Seeded,
    is_tombstone_clear,
    messages_naming,
    redis_dump,
    rows_of,
    seed_clinic,
    seed_redis,
    table_rows,
    traces_in_redis,
    traces_in_store,
)

pytestmark = pytest.mark.integration


@dataclass
class World:
    database: Database
    client: redis.Redis
    namespace: str
    broker: RedisBroker
    clinics: dict[str, Seeded]


@pytest.fixture
def world(backend: tuple[str, str], redis_namespace: str) -> Iterator[World]:
    redis_url, database_url = backend
    database = Database(database_url, cipher=Cipher([Fernet.generate_key().decode()]))
    client = redis.Redis.from_url(redis_url)
    broker = RedisBroker(url=redis_url, namespace=redis_namespace)
    clinics = {
        "acme": seed_clinic(database, "acme", meeting_base=0),
        "bolt": seed_clinic(database, "bolt", meeting_base=100),
        "default": seed_clinic(database, "default", meeting_base=200),
    }
    for seeded in clinics.values():
        seed_redis(client, broker, redis_namespace, seeded)
    yield World(database, client, redis_namespace, broker, clinics)
    for key in client.scan_iter(match=f"{redis_namespace}*", count=500):
        client.delete(key)
    broker.close()
    client.close()
    database.dispose()


def _token_keys(world: World, seeded: Seeded) -> tuple[str, ...]:
    keys: list[str] = []
    if seeded.zoom_account:
        keys += account_token_keys(world.namespace, *seeded.zoom_account)
    for doctor in seeded.doctor_keys:
        keys += user_token_keys(world.namespace, doctor)
    return tuple(keys)


def _export(world: World, clinic_id: str, page_size: int = 2) -> tuple[dict[str, Any], str]:
    out = io.StringIO()
    counts = write_export(world.database, clinic_id, out, page_size=page_size)
    text = out.getvalue()
    document = json.loads(text)
    assert {name: len(document[name]) for name in counts} == counts
    return document, text


# Export ---------------------------------------------------------------------------------------


def test_export_holds_the_clinics_own_data_and_nothing_of_anothers(world: World) -> None:
    document, text = _export(world, "acme")
    lowered = text.lower()
    assert "canaryacme" in lowered
    assert "canarybolt" not in lowered and "bolt/" not in lowered and "canarydefault" not in lowered
    # Its own patients, in full: they are the clinic's data.
    patients = {(a["patient_name"], a["patient_email"]) for a in document["appointments"]}
    assert patients == {("Pat CanaryAcme", f"pat.canaryacme.apt-{n}@patients.example") for n in (1, 2, 3)}
    # In the clinic's own ids, never our scoped keys.
    assert sorted(a["id"] for a in document["appointments"]) == ["APT-1", "APT-2", "APT-3"]
    assert {a["doctor_id"] for a in document["appointments"]} == {"D-1", "D-2"}
    assert sorted(d["id"] for d in document["doctors"]) == ["D-1", "D-2"]
    assert sorted(e["event_id"] for e in document["events"]) == [f"evt-APT-{n}-v{v}" for n in (1, 2, 3) for v in (1, 2)]
    assert all(e["payload"]["event_id"] == e["event_id"] for e in document["events"])  # as the booking system sent it
    ids_shown = [r.get(k) for section in document.values() if isinstance(section, list)
                 for r in section for k in ("id", "appointment_id", "doctor_id", "event_id") if isinstance(r.get(k), str)]
    assert ids_shown and not [i for i in ids_shown if "/" in i]
    # Every section the clinic has data in, each row once (pages of two rows were stitched).
    for section in ("doctors", "appointments", "events", "meetings", "notifications", "reminders",
                    "start_link_disclosures", "join_clicks", "alerts", "api_keys", "ingress_keys",
                    "ingress_refusals"):
        assert document[section], section
    assert len(document["meetings"]) == 3 and all(m["registrant_join_url"] for m in document["meetings"])
    assert {n["alert_id"] for n in document["notifications"] if n["role"] == "admin"} == \
        {a["id"] for a in document["alerts"]}
    # The doctor's Zoom connection as a state; no token, no secret of the clinic's.
    assert {d["zoom_connection"] for d in document["doctors"]} == {"connected", "none"}
    for secret in ("access-canaryacme", "refresh-canaryacme", "zoom-secret-", "oauth-secret-", "zwh-secret-",
                   "wh-secret-", "ingress-secret-", "start_url", "key_hash"):
        assert secret not in lowered, secret
    clinic = document["clinic"]
    assert clinic["id"] == "acme" and clinic["name"] == "CanaryAcme Clinic"
    assert clinic["zoom_client_secret_set"] is True and clinic["webhook_secret_set"] is True


def test_export_of_the_default_clinic_and_refusals(world: World) -> None:
    document, text = _export(world, "default", page_size=500)
    assert document["clinic"] == {"id": "default", "configured_by": "environment"}
    assert "canarydefault" in text.lower() and "canaryacme" not in text.lower() and "acme/" not in text
    with pytest.raises(ExportRefused, match="no clinic nobody"):
        write_export(world.database, "nobody", io.StringIO())


# Erasure --------------------------------------------------------------------------------------


def test_erasure_leaves_nothing_of_the_clinic_and_everything_of_the_others(world: World) -> None:
    acme, others = world.clinics["acme"], [world.clinics["bolt"], world.clinics["default"]]
    before = {s.clinic_id: rows_of(world.database, s) for s in others}
    redis_before = redis_dump(world.client, world.namespace)
    tokens = _token_keys(world, acme)
    assert {hit.split(".")[0] for hit in traces_in_store(world.database, acme)} == set(PLAN_TABLES)  # the scan sees it all
    assert traces_in_redis(world.client, world.namespace, acme, tokens)  # the scan sees them before
    assert all(k in redis_before for k in tokens[:2])

    with pytest.raises(DeletionRefused, match="3 meeting\\(s\\) still to come in Zoom"):
        delete_clinic(world.database, world.client, world.namespace, "acme")
    with world.database.session() as s:
        assert s.get(Clinic, "acme").status == "active"  # type: ignore[union-attr]  # refused: nothing changed

    report = delete_clinic(world.database, world.client, world.namespace, "acme",
                           zoom_meetings=ZoomMeetings.LEAVE, batch_size=2)
    assert report.meetings_left == 3 and not report.already_erased
    assert list(report.rows) == [t for t in PLAN_TABLES if t != "clinics"]
    assert {t for t, n in report.rows.items() if n == 0} == set()  # every table held some of acme
    assert report.redis["queued messages"] == 4 and report.redis["dead letters"] == 7

    assert traces_in_store(world.database, acme) == []
    left = table_rows(world.database)  # rows that name the clinic by a number only
    assert not {r["id"] for r in left["outbox"]} & set(acme.outbox_ids)
    assert not {r["id"] for r in left["zoom_webhook_receipts"]} & set(acme.receipt_ids)
    assert is_tombstone_clear(world.database, "acme")
    with world.database.session() as s:
        tombstone = s.get(Clinic, "acme")
        assert tombstone is not None and tombstone.status == "deleted" and tombstone.deleted_at is not None
    assert traces_in_redis(world.client, world.namespace, acme, tokens) == []
    assert messages_naming(world.client, world.namespace, acme.outbox_ids, "deliver_notification") == []
    assert messages_naming(world.client, world.namespace, acme.receipt_ids, "process_zoom_webhook") == []

    for seeded in others:  # untouched, row for row and key for key
        assert rows_of(world.database, seeded) == before[seeded.clinic_id]
    after = redis_dump(world.client, world.namespace)
    for key, value in redis_before.items():
        if not any(t in (key + value).lower() for t in ("canaryacme", "acme/", ":clinic:acme:")) and key not in tokens:
            if key.split(":", 1)[1].split(".")[0] in QUEUES:
                continue  # the shared queues: compared message by message below
            assert after.get(key) == value, key
    for seeded in others:
        assert messages_naming(world.client, world.namespace, seeded.outbox_ids, "deliver_notification")
        assert len(messages_naming(world.client, world.namespace, seeded.receipt_ids, "process_zoom_webhook")) == 2
        assert traces_in_redis(world.client, world.namespace, seeded)

    again = delete_clinic(world.database, world.client, world.namespace, "acme")
    assert again.already_erased and sum(again.redis.values()) == 0


class Crash(Exception):
    pass


@pytest.mark.parametrize("crash_after", [1, 9, 25])
def test_a_crash_half_way_and_a_rerun_finish_the_job(world: World, crash_after: int) -> None:
    acme, bolt = world.clinics["acme"], world.clinics["bolt"]
    bolt_before = rows_of(world.database, bolt)
    batches: list[str] = []

    def crash(table: str, removed: int) -> None:
        batches.append(table)
        if len(batches) == crash_after:
            raise Crash(f"killed after a batch of {table}")

    with pytest.raises(Crash):
        delete_clinic(world.database, world.client, world.namespace, "acme", zoom_meetings=ZoomMeetings.LEAVE,
                      batch_size=2, on_batch=crash)
    left = traces_in_store(world.database, acme)
    assert left  # stopped half-way: some rows remain
    with world.database.session() as s:
        assert s.get(Clinic, "acme").status == "deleting"  # type: ignore[union-attr]  # closed, not yet a tombstone

    report = delete_clinic(world.database, world.client, world.namespace, "acme", zoom_meetings=ZoomMeetings.LEAVE,
                           batch_size=2)
    assert not report.already_erased and report.rows
    assert traces_in_store(world.database, acme) == []
    assert traces_in_redis(world.client, world.namespace, acme, _token_keys(world, acme)) == []
    assert is_tombstone_clear(world.database, "acme")
    assert rows_of(world.database, bolt) == bolt_before


def test_the_default_clinic_and_unknown_ones_are_not_deleted(world: World) -> None:
    with pytest.raises(DeletionRefused, match="default clinic cannot be deleted"):
        delete_clinic(world.database, world.client, world.namespace, "default", zoom_meetings=ZoomMeetings.LEAVE)
    with pytest.raises(DeletionRefused, match="no clinic nobody"):
        delete_clinic(world.database, world.client, world.namespace, "nobody")
    default = world.clinics["default"]
    assert len(rows_of(world.database, default)["appointments"]) == 3


def test_the_id_of_a_deleted_clinic_stays_taken(world: World) -> None:
    delete_clinic(world.database, world.client, world.namespace, "bolt", zoom_meetings=ZoomMeetings.LEAVE)
    with pytest.raises(Exception) as raised:  # the tombstone's primary key
        with world.database.session() as s:
            s.add(Clinic(id="bolt", name="A newcomer"))
    assert "bolt" in str(raised.value) or "UNIQUE" in str(raised.value).upper()
    with pytest.raises(ExportRefused):
        write_export(world.database, "bolt", io.StringIO())


def test_meetings_already_over_do_not_hold_a_deletion_back(world: World) -> None:
    past = datetime.now(UTC) - timedelta(days=2)
    with world.database.session() as s:
        for meeting in clinic_erasure.upcoming_meetings(s, "acme"):
            meeting.start_time = past
            s.add(meeting)
    report = delete_clinic(world.database, world.client, world.namespace, "acme")
    assert report.meetings_left == 0 and report.rows["meetings"] == 3
