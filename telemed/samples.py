"""Sample events for the demo, tests and benchmarks (made-up people, future times)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DOCTORS = [
    ("D-1", "Dr. Ada Lovelace"), ("D-2", "Dr. Alan Turing"), ("D-3", "Dr. Katherine Johnson"),
    ("D-4", "Dr. Edsger Dijkstra"), ("D-5", "Dr. Barbara Liskov"),
]
PATIENTS = ["Grace Hopper", "Linus Pauling", "Marie Curie", "Rosalind Franklin", "Carl Gauss",
            "Emmy Noether", "Niels Bohr", "Lise Meitner", "Srinivasa Ramanujan", "Hedy Lamarr"]
# The booking system's own label of its clinic (the event's ``appointment.clinic``).
NORTHSIDE = ("C-1", "Northside Clinic")
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London", "Australia/Sydney"]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class SampleSet:
    events: list[dict[str, Any]] = field(default_factory=list)
    expected_cancelled: set[str] = field(default_factory=set)
    expected_start: dict[str, datetime] = field(default_factory=dict)


def booking(
    appointment_id: str, version: int, start: datetime, *, type: str = "appointment.booked",
    doctor: tuple[str, str] = DOCTORS[0], patient: str = PATIENTS[0], zone: str = "Europe/Berlin",
    duration: int = 30, event_id: str | None = None, domain: str = "example.org",
    clinic: tuple[str, str] = NORTHSIDE,
) -> dict[str, Any]:
    doctor_id, doctor_name = doctor
    slug = doctor_id.lower()
    appointment: dict[str, Any] = {
        "id": appointment_id,
        "version": version,
        "start_time": _iso(start),
        "duration_minutes": duration,
        "timezone": zone,
        "doctor": {"id": doctor_id, "name": doctor_name, "email": f"{slug}@clinic.example"},
        "patient": {
            "id": f"P-{appointment_id}",
            "name": patient,
            "email": f"{patient.split()[0].lower()}.{appointment_id.lower()}@{domain}",
        },
        "clinic": {"id": clinic[0], "name": clinic[1]},
    }
    if type == "appointment.cancelled":
        appointment.pop("start_time")
        appointment.pop("duration_minutes")
    return {
        "event_id": event_id or f"evt-{appointment_id}-v{version}",
        "type": type,
        "occurred_at": _iso(datetime.now(UTC)),
        "appointment": appointment,
    }


def sample_events(
    bookings: int, *, seed: int = 7, now: datetime | None = None, reschedule_share: float = 0.2,
    cancel_share: float = 0.12, prefix: str = "A-", domain: str = "example.org",
    clinic: tuple[str, str] = NORTHSIDE,
) -> SampleSet:
    """Bookings, then reschedules and cancels of some of them, plus one duplicate and
    one stale (out-of-order) event to show they change nothing."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    now = now or datetime.now(UTC)
    samples = SampleSet()
    originals: list[tuple[str, dict[str, Any]]] = []
    for n in range(1, bookings + 1):
        appointment_id = f"{prefix}{1000 + n}"
        day = now + timedelta(days=rng.randint(1, 14))
        start = day.replace(hour=rng.randint(7, 17), minute=rng.choice([0, 15, 30, 45]), second=0, microsecond=0)
        kwargs = dict(doctor=rng.choice(DOCTORS), patient=rng.choice(PATIENTS), zone=rng.choice(ZONES),
                      duration=rng.choice([15, 20, 30, 45]), domain=domain, clinic=clinic)
        samples.events.append(booking(appointment_id, 1, start, **kwargs))  # type: ignore[arg-type]
        samples.expected_start[appointment_id] = start
        originals.append((appointment_id, kwargs))
    picked = rng.sample(originals, k=min(len(originals), round(bookings * (reschedule_share + cancel_share))))
    n_reschedule = round(bookings * reschedule_share)
    for index, (appointment_id, kwargs) in enumerate(picked):
        if index < n_reschedule:
            moved = samples.expected_start[appointment_id] + timedelta(hours=rng.choice([1, 2, 24]))
            samples.events.append(booking(appointment_id, 2, moved, type="appointment.rescheduled", **kwargs))  # type: ignore[arg-type]
            samples.expected_start[appointment_id] = moved
        else:
            samples.events.append(
                booking(appointment_id, 2, samples.expected_start[appointment_id], type="appointment.cancelled", **kwargs)  # type: ignore[arg-type]
            )
            samples.expected_cancelled.add(appointment_id)
    if samples.events:
        samples.events.append(dict(samples.events[0]))  # a duplicate delivery
        first_id, kwargs = originals[0]
        stale = booking(first_id, 1, now + timedelta(days=30), event_id=f"evt-{first_id}-late", **kwargs)  # type: ignore[arg-type]
        samples.events.append(stale)  # same version arriving late under another id: ignored
    return samples
