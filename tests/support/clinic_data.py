"""Clinics full of canary data, in every table and in Redis, for the export and erasure tests.

Every value a clinic owns carries its canary (``Canary<Clinic>``, any case) or one of its
scoped keys (``<clinic>/…``), so a scan of every column of every table (decrypted) and of
every Redis key and value tells whether anything of the clinic is left, or leaked into
another clinic's export.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.message import Message
from sqlalchemy import select
from sqlmodel import SQLModel

import telemed.store.schema  # noqa: F401  (every table known to the metadata)
from telemed.events.publish import Publisher
from telemed.foundation.tenancy import DEFAULT_CLINIC, scoped
from telemed.samples import booking
from telemed.store import api_keys, intents, notifications, oauth_states, operations, outbox, registrations
from telemed.store import zoom_tokens as tokens
from telemed.store.clinic_tables import Clinic, ClinicIngressKey, IngressRefusal
from telemed.store.db import Database
from telemed.store.models import Meeting
from telemed.workers.apply_event import apply_event
from telemed.zoom.tokens import account_token_keys
from telemed.zoom.user_tokens import user_token_keys


def canary(clinic_id: str) -> str:
    return f"Canary{clinic_id.capitalize()}"


@dataclass
class Seeded:
    clinic_id: str
    appointment_keys: list[str] = field(default_factory=list)
    doctor_keys: list[str] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    receipt_ids: list[int] = field(default_factory=list)
    zoom_meeting_ids: list[int] = field(default_factory=list)
    zoom_account: tuple[str, str] | None = None
    webhook_url: str | None = None

    @property
    def mark(self) -> str:
        return canary(self.clinic_id).lower()

    @property
    def zoom_secret(self) -> str:
        """The client secret of the clinic's Zoom account app (``zoom_account``)."""
        return f"zoom-secret-{canary(self.clinic_id)}"

    @property
    def prefix(self) -> str:
        return f"{self.clinic_id}/"


def _event(clinic_id: str, appointment: str, version: int, start: datetime, doctor: str) -> dict[str, Any]:
    mark = canary(clinic_id)
    event = booking(appointment, version, start, doctor=(doctor, f"Dr {mark} {doctor}"), patient=f"Pat {mark}")
    event["appointment"]["doctor"]["email"] = f"dr.{mark.lower()}.{doctor.lower()}@clinic.example"
    event["appointment"]["patient"]["email"] = f"pat.{mark.lower()}.{appointment.lower()}@patients.example"
    event["appointment"]["clinic"] = {"id": "C-1", "name": f"{mark} Clinic"}
    return event


def seed_clinic(database: Database, clinic_id: str, *, appointments: int = 3, meeting_base: int = 0,
                now: datetime | None = None) -> Seeded:
    """A clinic with data in every table; the default clinic gets no clinics row of its own.

    Two clinics may use the same booking-system ids (``APT-1``, ``D-1``): they are scoped.
    """
    now = now or datetime.now(UTC)
    mark = canary(clinic_id)
    seeded = Seeded(clinic_id)
    if clinic_id != DEFAULT_CLINIC:
        seeded.zoom_account = (f"acct-{mark}", f"client-{mark}")
        seeded.webhook_url = f"https://hooks.{mark.lower()}.example/status"
        with database.session() as s:
            s.add(Clinic(
                id=clinic_id, name=f"{mark} Clinic", zoom_account_id=seeded.zoom_account[0],
                zoom_client_id=seeded.zoom_account[1], zoom_client_secret=seeded.zoom_secret,
                zoom_oauth_client_id=f"oauth-{mark}", zoom_oauth_client_secret=f"oauth-secret-{mark}",
                zoom_webhook_secret=f"zwh-secret-{mark}", mail_from=f"office@{mark.lower()}.example",
                mail_reply_to=f"desk@{mark.lower()}.example", mail_display_name=f"{mark} Desk",
                reminder_offsets="24h,1h", webhook_url=seeded.webhook_url, webhook_secret=f"wh-secret-{mark}",
                admin_emails=f"admin@{mark.lower()}.example",
            ))
            s.add(ClinicIngressKey(key_id=f"key-{mark}", clinic_id=clinic_id, secret=f"ingress-secret-{mark}"))
    publisher = Publisher(database=database, enqueue=lambda _: None)
    for n in range(1, appointments + 1):
        doctor = f"D-{1 + n % 2}"
        start = now + timedelta(days=n)
        for version in (1, 2):
            event = _event(clinic_id, f"APT-{n}", version, start + timedelta(hours=version - 1), doctor)
            publisher.publish(event, clinic_id=clinic_id)
            key = apply_event(database, scoped(clinic_id, event["event_id"]))
        assert key is not None
        seeded.appointment_keys.append(key)
    seeded.doctor_keys = sorted({scoped(clinic_id, f"D-{1 + n % 2}") for n in range(1, appointments + 1)})

    with database.session() as s:
        for index, key in enumerate(seeded.appointment_keys):
            zoom_id = 9_000_000_000 + meeting_base + index
            seeded.zoom_meeting_ids.append(zoom_id)
            s.add(Meeting(
                appointment_id=key, zoom_meeting_id=zoom_id, host=f"dr.{mark.lower()}.d-1@clinic.example",
                join_url=f"https://zoom.example/j/{zoom_id}?pwd={mark}", passcode=f"pc{mark}",
                start_time=now + timedelta(days=index + 1), duration_minutes=30, timezone="Europe/Berlin",
                synced_version=2, registration="registered", doctor_id=seeded.doctor_keys[0],
                registrant_id=f"reg-{index}", registrant_join_url=f"https://zoom.example/w/{zoom_id}?tk={mark}",
                registrant_key=f"rk-{mark}",
            ))
            message = outbox.add_message(s, appointment_id=key, version=2, role="patient", kind="invite")
            assert message is not None and message.id is not None
            seeded.outbox_ids.append(message.id)
            notifications.record_reminder(s, appointment_id=key, version=2, role="patient", offset_seconds=3600,
                                          status="queued", outbox_id=message.id)
            notifications.record_disclosure(s, appointment_id=key, doctor_id=seeded.doctor_keys[0],
                                            principal=f"doctor:{seeded.doctor_keys[0]}", via="start_link")
            registrations.record_join_click(s, key, "redirected")
            intents.begin_intent(s, appointment_id=key, marker=f"marker-{mark}-{index}", host="me")
        _, alert_outbox = notifications.queue_alert(
            s, "zoom_policy", f"Alert for {mark}", f"Body naming {seeded.appointment_keys[0]} {mark}",
            seeded.appointment_keys[0])
        _, clinic_alert_outbox = notifications.queue_alert(s, "clinic_zoom", f"Clinic alert {mark}",
                                                           f"The clinic {mark}'s Zoom app")
        seeded.outbox_ids += [alert_outbox, clinic_alert_outbox]
        for alert in notifications.alerts(s):
            if mark in alert.subject:
                alert.clinic_id = clinic_id
                s.add(alert)
        key_row, _ = api_keys.create_key(s, "admin", label=f"laptop of {mark}")
        key_row.clinic_id = clinic_id
        s.add(key_row)
        doctor = seeded.doctor_keys[0]
        tokens.connect(s, doctor, tokens.NewGrant(f"access-{mark}", f"refresh-{mark}", 3600, "meeting:write"))
        oauth_states.issue_state(s, doctor, timedelta(minutes=10))
        registrations.flag_fallback_host(s, f"doctor:{doctor}", f"Basic user {mark}")
        registrations.flag_fallback_host(s, f"dr.{mark.lower()}.d-1@clinic.example", f"approval {mark}")
        if seeded.webhook_url:
            # As the delivery worker disables a clinic's webhook that answered 410 Gone.
            notifications.disable_webhook(s, seeded.webhook_url, f"410 from {mark}", clinic_id)
        receipt, _ = operations.record_receipt(
            s, raw_body=f"meeting.deleted {mark}".encode(), event="meeting.deleted",
            payload=json.dumps({"topic": f"Visit {mark}"}), zoom_meeting_id=seeded.zoom_meeting_ids[0])
        deauth, _ = operations.record_receipt(
            s, raw_body=f"app_deauthorized {mark}".encode(), event="app_deauthorized",
            payload=json.dumps({"user": f"dr.{mark.lower()}.d-2@clinic.example"}),
            zoom_user_id=f"DR.{mark.upper()}.D-2@clinic.example")
        assert receipt.id is not None and deauth.id is not None
        seeded.receipt_ids += [receipt.id, deauth.id]
        if clinic_id != DEFAULT_CLINIC:
            s.add(IngressRefusal(signer_clinic_id=clinic_id, key_id=f"key-{mark}", named_clinic_id="someone-else",
                                 event_id=scoped(clinic_id, "evt-refused"), reason=f"names another clinic {mark}"))
    return seeded


# Redis -------------------------------------------------------------------------------------


def _dead(client: redis.Redis, namespace: str, queue: str, actor: str, args: tuple[Any, ...]) -> None:
    """A dead letter as Dramatiq's nack leaves it: in the queue's .XQ set and .XQ.msgs hash."""
    message = Message(queue_name=queue, actor_name=actor, args=args, kwargs={},
                      options={"failure": f"PermanentFailure: {actor} failed"})
    client.zadd(f"{namespace}:{queue}.XQ", {message.message_id: int(time.time() * 1000)})
    client.hset(f"{namespace}:{queue}.XQ.msgs", message.message_id, message.encode())


def seed_redis(client: redis.Redis, broker: RedisBroker, namespace: str, seeded: Seeded) -> None:
    """The clinic's state in Redis: cached tokens, locks, queued, delayed and dead work."""
    mark = canary(seeded.clinic_id)
    if seeded.zoom_account:
        cache_key, lock_key = account_token_keys(namespace, *seeded.zoom_account)
        client.set(cache_key, f"sealed-token-{mark}")
        client.set(lock_key, "holder")
    for doctor in seeded.doctor_keys:
        _lock, rescue = user_token_keys(namespace, doctor)
        client.set(rescue, f"sealed-pair-{mark}")
    first = seeded.appointment_keys[0]
    client.set(f"{namespace}:lock:sync:{first}", "token")
    client.set(f"{namespace}:zoom:daily-wait:{first}", "1")
    client.rpush(f"{namespace}:clinic:{seeded.clinic_id}:waiting", first)
    broker.enqueue(Message(queue_name="meetings", actor_name="sync_meeting", args=(first,), kwargs={}, options={}))
    broker.enqueue(Message(queue_name="notifications", actor_name="deliver_notification",
                           args=(seeded.outbox_ids[0],), kwargs={}, options={}))
    broker.enqueue(Message(queue_name="meetings", actor_name="sync_meeting", args=(seeded.appointment_keys[1],),
                           kwargs={}, options={}), delay=3_600_000)
    # A queue this code does not name (a per-clinic queue of the admission gate, say).
    broker.enqueue(Message(queue_name="meetings.gate", actor_name="sync_meeting", args=(seeded.appointment_keys[2],),
                           kwargs={}, options={}))
    _dead(client, namespace, "events", "process_event", (scoped(seeded.clinic_id, "evt-APT-1-v1"),))
    _dead(client, namespace, "meetings", "sync_meeting", (first,))
    _dead(client, namespace, "notifications", "deliver_notification", (seeded.outbox_ids[1],))
    _dead(client, namespace, "notifications", "deliver_notification", (seeded.outbox_ids[-1],))  # an alert's
    _dead(client, namespace, "notifications", "notification_failed",
          ({"args": [seeded.outbox_ids[2]], "actor_name": "deliver_notification"}, {"retries": 5}))
    _dead(client, namespace, "events", "process_zoom_webhook", (seeded.receipt_ids[0],))
    _dead(client, namespace, "events", "process_zoom_webhook", (seeded.receipt_ids[1],))


def is_tombstone_clear(database: Database, clinic_id: str) -> bool:
    """The clinic row is a tombstone keeping nothing but its id, status and dates."""
    kept = {"id", "status", "created_at", "updated_at", "deleted_at"}
    with database.session() as s:
        row = s.get(Clinic, clinic_id)
        return row is not None and row.status == "deleted" and all(
            getattr(row, c.name) in (None, "") for c in Clinic.__table__.columns if c.name not in kept)  # type: ignore[attr-defined]


# Scanning ------------------------------------------------------------------------------------


def table_rows(database: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, decrypted, as {column: value}."""
    found: dict[str, list[dict[str, Any]]] = {}
    with database.session() as s:
        for name, table in SQLModel.metadata.tables.items():
            found[name] = [dict(row._mapping) for row in s.execute(select(table))]
    return found


def traces_in_store(database: Database, seeded: Seeded) -> list[str]:
    """Every (table, column, value) that still names the clinic: its canary or one of its keys."""
    hits = []
    for name, rows in table_rows(database).items():
        for row in rows:
            for column, value in row.items():
                text = str(value).lower()
                if seeded.mark in text or seeded.prefix in text:
                    hits.append(f"{name}.{column}={value!r}")
    return hits


def rows_of(database: Database, seeded: Seeded) -> dict[str, list[dict[str, Any]]]:
    """The rows that name the clinic, per table (to compare before and after another's erasure)."""
    found = {}
    for name, rows in table_rows(database).items():
        mine = [r for r in rows if any(seeded.mark in str(v).lower() or seeded.prefix in str(v).lower()
                                       for v in r.values())]
        found[name] = mine
    return found


def redis_dump(client: redis.Redis, namespace: str) -> dict[str, str]:
    """Every key of the namespace with its value rendered as text."""
    dump = {}
    for raw in client.scan_iter(match=f"{namespace}:*", count=500):
        key = raw.decode()
        kind = client.type(raw).decode()
        if kind == "string":
            value: Any = client.get(raw)
        elif kind == "hash":
            value = client.hgetall(raw)
        elif kind == "list":
            value = client.lrange(raw, 0, -1)
        elif kind == "set":
            value = sorted(client.smembers(raw))
        elif kind == "zset":
            value = client.zrange(raw, 0, -1)
        else:
            value = kind
        dump[key] = repr(value)
    return dump


def traces_in_redis(client: redis.Redis, namespace: str, seeded: Seeded, extra: tuple[str, ...] = ()) -> list[str]:
    """Keys (or values) that name the clinic: its canary, its keys, its clinic prefix, or
    one of ``extra`` (keys whose names are hashes: its token keys)."""
    hits = []
    for key, value in redis_dump(client, namespace).items():
        text = (key + " " + value).lower()
        if (seeded.mark in text or seeded.prefix in text or f":clinic:{seeded.clinic_id}:" in key
                or key in extra):
            hits.append(key)
    return hits


def messages_naming(client: redis.Redis, namespace: str, ids: list[int], actor: str) -> list[str]:
    """Queued or dead messages of ``actor`` whose first argument is one of ``ids`` (numbers
    name no clinic in their text, so they are looked for by id)."""
    found = []
    for raw in client.scan_iter(match=f"{namespace}:*.msgs", count=500):
        for message_id, body in client.hgetall(raw).items():
            data = json.loads(body)
            first = (data.get("args") or [None])[0]
            if isinstance(first, dict):
                first = (first.get("args") or [None])[0]
            if data.get("actor_name") in {actor, "notification_failed"} and first in ids:
                found.append(f"{raw.decode()}:{message_id.decode()}")
    return found
