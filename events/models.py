"""Event contract v1: what a booking system publishes about an appointment.

Three event types share one appointment record. ``booked`` and ``rescheduled`` must say
when (a future ``start_time`` and a ``duration_minutes``); ``cancelled`` may leave both
out. Unknown fields are rejected, so a typo is an error instead of silently ignored data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from telemed.events.fields import (
    DisplayName,
    DurationMinutes,
    EmailAddress,
    IanaZone,
    Identifier,
    Rfc3339,
    Version,
    ZoomUser,
)

SCHEMA_VERSION = 1
EventType = Literal["appointment.booked", "appointment.rescheduled", "appointment.cancelled"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Doctor(_Strict):
    id: Identifier
    name: DisplayName
    email: EmailAddress
    zoom_user: ZoomUser | None = Field(
        default=None, description="Zoom user (email or user id); defaults to email"
    )

    @property
    def zoom_host(self) -> str:
        return str(self.zoom_user or self.email)


class Patient(_Strict):
    id: Identifier
    name: DisplayName
    email: EmailAddress


class Clinic(_Strict):
    id: Identifier
    name: DisplayName


class _AppointmentBase(_Strict):
    id: Identifier
    version: Version
    timezone: IanaZone
    doctor: Doctor
    patient: Patient
    clinic: Clinic | None = None


class ScheduledAppointment(_AppointmentBase):
    """An appointment that must have a meeting: when, and for how long."""

    start_time: Rfc3339
    duration_minutes: DurationMinutes

    @field_validator("start_time")
    @classmethod
    def _in_the_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        context = info.context or {}
        if context.get("allow_past"):
            return value
        now = context.get("now") or datetime.now(UTC)
        if value <= now:
            raise ValueError("must be in the future")
        return value


class CancelledAppointment(_AppointmentBase):
    start_time: Rfc3339 | None = None
    duration_minutes: DurationMinutes | None = None


class _EventBase(_Strict):
    event_id: Identifier
    occurred_at: Rfc3339


class BookedEvent(_EventBase):
    type: Literal["appointment.booked"]
    appointment: ScheduledAppointment


class RescheduledEvent(_EventBase):
    type: Literal["appointment.rescheduled"]
    appointment: ScheduledAppointment


class CancelledEvent(_EventBase):
    type: Literal["appointment.cancelled"]
    appointment: CancelledAppointment


AppointmentEvent = Annotated[
    BookedEvent | RescheduledEvent | CancelledEvent, Field(discriminator="type")
]


class EventEnvelope(BaseModel):
    """Wrapper so one model validates any of the three event types."""

    event: AppointmentEvent


def event_to_json(event: BookedEvent | RescheduledEvent | CancelledEvent) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude_none=True)
