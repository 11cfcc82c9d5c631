"""What the crash test publishes, and what the store and Zoom must show afterwards.

Each appointment gets a history (booked, then maybe rescheduled once or twice, then maybe
cancelled), every version at a different time, so "the latest schedule" is checkable.
The histories are interleaved into one delivery order the way a booking system under
load sends them: mostly in order, a few versions swapped (a newer one arrives first), a
few events delivered twice. Pure and seeded: the same seed gives the same run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from telemed.samples import DOCTORS, ZONES, booking

PATIENT_DOMAIN = "patients.chaos.example"


@dataclass
class History:
    appointment_id: str
    events: list[dict[str, Any]] = field(default_factory=list)  # by version, v1 first
    starts: dict[int, datetime] = field(default_factory=dict)  # version -> start

    @property
    def final(self) -> dict[str, Any]:
        return self.events[-1]

    @property
    def final_version(self) -> int:
        return int(self.final["appointment"]["version"])

    @property
    def cancelled(self) -> bool:
        return bool(self.final["type"] == "appointment.cancelled")

    @property
    def final_start(self) -> datetime:
        """The start of the newest scheduled version (a cancel carries none of its own)."""
        return self.starts[max(self.starts)]

    @property
    def patient_email(self) -> str:
        return str(self.events[0]["appointment"]["patient"]["email"])


@dataclass
class ChaosPlan:
    histories: dict[str, History]
    deliveries: list[dict[str, Any]]  # the events in the order they are posted (repeats included)
    swapped: int = 0  # appointments whose versions arrive out of order
    repeated: int = 0  # events delivered twice

    @property
    def events(self) -> int:
        return sum(len(h.events) for h in self.histories.values())

    def count(self, kind: str) -> int:
        return sum(1 for h in self.histories.values() for e in h.events if e["type"] == f"appointment.{kind}")


def patient_email(appointment_id: str) -> str:
    return f"patient.{appointment_id.lower()}@{PATIENT_DOMAIN}"


def build_plan(bookings: int, *, seed: int = 20260601, now: datetime | None = None, prefix: str = "X-",
               reschedule_share: float = 0.4, cancel_share: float = 0.2, swap_share: float = 0.05,
               repeat_share: float = 0.05) -> ChaosPlan:
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    histories: dict[str, History] = {}
    timed: list[tuple[float, int, dict[str, Any]]] = []
    swapped = 0
    for n in range(1, bookings + 1):
        appointment_id = f"{prefix}{n:04d}"
        history = History(appointment_id)
        doctor = rng.choice(DOCTORS)
        zone = rng.choice(ZONES)
        duration = rng.choice([15, 20, 30, 45])
        # Days ahead: no reminder falls due during the run, so every mail is event-driven.
        start = now + timedelta(days=rng.randint(3, 20), hours=rng.randint(0, 9))
        versions = 1 + (rng.randint(1, 2) if rng.random() < reschedule_share else 0)
        cancel = rng.random() < cancel_share
        for version in range(1, versions + 1):
            kind = "appointment.booked" if version == 1 else "appointment.rescheduled"
            moment = start + timedelta(hours=version - 1, minutes=15 * (version - 1))
            history.starts[version] = moment
            history.events.append(_event(appointment_id, version, moment, kind, doctor, zone, duration))
        if cancel:
            version = versions + 1
            history.events.append(_event(appointment_id, version, history.starts[versions],
                                         "appointment.cancelled", doctor, zone, duration))
        # Delivery times: each version after the one before, interleaved with everyone else.
        at = rng.uniform(0.0, 0.75)
        times = []
        for _ in history.events:
            times.append(at)
            at += rng.uniform(0.01, 0.25)
        if len(times) > 1 and rng.random() < swap_share * 4:  # a newer version overtakes an older one
            i = rng.randrange(len(times) - 1)
            times[i], times[i + 1] = times[i + 1], times[i]
            swapped += 1
        for index, (moment, event) in enumerate(zip(times, history.events, strict=True)):
            timed.append((moment, n * 10 + index, event))
        histories[appointment_id] = history
    timed.sort(key=lambda item: (item[0], item[1]))
    deliveries = [event for _, _, event in timed]
    repeats = [event for event in deliveries if rng.random() < repeat_share]
    for event in repeats:  # the same event again, somewhat later
        deliveries.insert(min(len(deliveries), deliveries.index(event) + rng.randint(1, 40)), event)
    return ChaosPlan(histories, deliveries, swapped=swapped, repeated=len(repeats))


def _event(appointment_id: str, version: int, start: datetime, kind: str, doctor: tuple[str, str], zone: str,
           duration: int) -> dict[str, Any]:
    event = booking(appointment_id, version, start, type=kind, doctor=doctor, zone=zone, duration=duration,
                    patient=f"Chaospatient {appointment_id.replace('-', '')}qz")
    event["appointment"]["patient"]["email"] = patient_email(appointment_id)
    return event
