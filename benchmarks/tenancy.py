"""What the tenancy benchmarks (items 8 and 9) share: clinics, each with a Zoom account of
its own, their bookings, and each booking's time from publish to its patient's
invitation.

Clinic ``c``'s doctors have addresses at ``c.example``, so every meeting create in the
simulator's request log (``POST /users/{host}/meetings``) names the clinic it was for,
whichever Zoom account it went to.

Each clinic is registered in the stack's clinic registry (the ``clinics`` table, as
``telemed clinics add`` does) with a server-to-server app of its own, and the simulator
grants tokens for each account and counts each one's limits apart:
:func:`give_own_accounts` is the one place they are wired.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from sqlmodel import col, func, select

from telemed.benchmarks.bookings import PER_DOCTOR, bench_booking
from telemed.benchmarks.stack import SIM_ACCOUNT, Stack
from telemed.events.publish import Publisher
from telemed.foundation.tenancy import ClinicProfile, ZoomApp, scoped
from telemed.store import clinics as registry
from telemed.store.models import OutboxMessage, utcnow
from telemed.zoom.simulator import ZoomSimulator

_INVITED = (OutboxMessage.role == "patient", OutboxMessage.kind == "invite", OutboxMessage.channel == "mail",
            OutboxMessage.status == "sent")
SHARED_ACCOUNT = "every clinic used the deployment's one Zoom account"


def clinic_ids(count: int, prefix: str = "clinic-") -> list[str]:
    return [f"{prefix}{n:03d}" for n in range(count)]


def profiles(ids: Iterable[str]) -> list[ClinicProfile]:
    """Each clinic with a server-to-server app of its own (made-up credentials)."""
    return [ClinicProfile(clinic_id=c, name=f"Bench clinic {c}",
                          zoom_account=ZoomApp(client_id=f"{c}-client", client_secret=f"{c}-secret",
                                               account_id=f"{c}-account"))
            for c in ids]


def give_own_accounts(stack: Stack, sim: ZoomSimulator, clinics: Sequence[ClinicProfile]) -> bool:
    """Register each clinic, with its Zoom account, where ``stack``'s processes find it, and
    the accounts in ``sim``; True: each clinic's calls go to its own account. Call it before
    the workers start (they cache the registry for a short while)."""
    with stack.database.session() as session:
        for profile in clinics:
            app = profile.zoom_account
            if app is None or app.account_id is None:
                raise ValueError(f"clinic {profile.clinic_id}: a benchmark clinic needs its own Zoom account")
            sim.add_account(app.account_id, app.client_id, app.client_secret)
            registry.add_clinic(session, profile.clinic_id, profile.name, zoom_account_id=app.account_id,
                                zoom_client_id=app.client_id, zoom_client_secret=app.client_secret)
    return True


def register_on_shared_account(stack: Stack, clinic_ids: Iterable[str]) -> None:
    """Register each clinic (work of a clinic the registry does not know is given up) on the
    deployment's one Zoom account, so they share its limits and its pacer."""
    with stack.database.session() as session:
        for clinic_id in clinic_ids:
            registry.add_clinic(session, clinic_id, f"Bench clinic {clinic_id}",
                                zoom_account_id=SIM_ACCOUNT["account_id"], zoom_client_id=SIM_ACCOUNT["client_id"],
                                zoom_client_secret=SIM_ACCOUNT["client_secret"])


def clinic_booking(clinic: str, prefix: str, n: int, base: datetime, per_doctor: int = PER_DOCTOR) -> dict[str, Any]:
    """Booking ``{prefix}{n}`` of ``clinic``, its doctor's address in the clinic's domain."""
    event = bench_booking(prefix, n, base, per_doctor)
    doctor = event["appointment"]["doctor"]
    doctor["email"] = doctor["email"].replace("@clinic.example", f"@{clinic}.example")
    return event


def clinic_of_create(path: str) -> str | None:
    """The clinic a create request was for, from its host's address; None if not ours."""
    parts = path.rstrip("/").split("/")
    if len(parts) < 3 or parts[-1] != "meetings" or parts[-3] != "users":
        return None
    _, at, domain = unquote(parts[-2]).rpartition("@")
    return domain.removesuffix(".example") if at and domain.endswith(".example") else None


def book_every(stack: Stack, clinic: str, prefix: str, count: int, interval: float,
               base: datetime) -> dict[str, datetime]:
    """Publish ``count`` bookings of ``clinic``, one every ``interval`` seconds; when each
    was published (by appointment key)."""
    published: dict[str, datetime] = {}
    start = time.monotonic()
    for n in range(count):
        time.sleep(max(0.0, start + n * interval - time.monotonic()))
        published[scoped(clinic, f"{prefix}{n}")] = utcnow()
        stack.publish(clinic_booking(clinic, prefix, n, base), clinic)
    return published


def invited_at(stack: Stack, keys: Iterable[str]) -> dict[str, datetime]:
    """When each appointment's patient invitation was sent (those sent so far)."""
    wanted = list(keys)
    with stack.database.session() as s:
        rows = s.exec(select(OutboxMessage.appointment_id, OutboxMessage.sent_at).where(
            col(OutboxMessage.appointment_id).in_(wanted), *_INVITED)).all()
    return {key: sent for key, sent in rows if sent is not None}


def latencies(stack: Stack, published: dict[str, datetime], *, timeout: float) -> list[float]:
    """Seconds from publish to the patient's invitation, for each booking, once all are sent."""
    deadline = time.monotonic() + timeout
    while True:
        sent = invited_at(stack, published)
        if len(sent) == len(published):
            return [(sent[key] - at).total_seconds() for key, at in published.items()]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(sent)} of {len(published)} invitations sent after {timeout:.0f} s")
        time.sleep(0.2)


def done_count(stack: Stack, clinic: str, prefix: str = "") -> int:
    """Bookings of ``clinic`` (ids starting ``prefix``) whose patient has been invited."""
    with stack.database.session() as s:
        return int(s.exec(select(func.count()).select_from(OutboxMessage).where(
            col(OutboxMessage.appointment_id).startswith(scoped(clinic, prefix)), *_INVITED)).one())


def invited_total(stack: Stack) -> int:
    """Patients invited in the stack's database, any clinic."""
    with stack.database.session() as s:
        return int(s.exec(select(func.count()).select_from(OutboxMessage).where(*_INVITED)).one())


def deferrals(stack: Stack, label: str = "worker") -> int:
    """Messages the stack's workers deferred on a busy Zoom pacer (their log lines)."""
    log = stack.workdir / f"{label}.log"
    if not log.exists():
        return 0
    with log.open(encoding="utf-8", errors="replace") as lines:
        return sum(1 for line in lines if "message deferred: its Zoom pacer is busy" in line)


def preload(stack: Stack, events: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    """Commit ``(clinic, event)`` pairs to the inbox without queueing them; their event
    keys, for ``stack.release`` (which queues each as its clinic's work)."""
    held: list[str] = []
    publisher = Publisher(database=stack.database, enqueue=held.append)
    for clinic, event in events:
        publisher.publish(event, clinic)
    return held
