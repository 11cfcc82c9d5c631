"""``publish``: validate, commit to the inbox, then queue the event's id.

The store is the truth and the queue only a trigger (principle 1): the inbox row is
committed before anything is queued, and only the event id goes to Redis. If queueing
fails after the commit, the reconciler queues the event later; nothing is lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Literal

import structlog

from telemed.events.models import event_to_json
from telemed.events.parsing import parse_event
from telemed.foundation.tenancy import DEFAULT_CLINIC, scoped
from telemed.store import inbox
from telemed.store.db import Database

Enqueue = Callable[[str], object]  # what it returns (a Dramatiq Message) is ignored
log = structlog.get_logger("telemed.events")


@dataclass(frozen=True)
class PublishResult:
    event_id: str
    status: Literal["accepted", "duplicate"]
    queued: bool


@dataclass
class Publisher:
    """What ``publish`` needs: a store and a way to queue ``process_event(event_id)``."""

    database: Database
    enqueue: Enqueue
    check_queue: Callable[[], None] | None = None

    def publish(self, event: Any, clinic_id: str = DEFAULT_CLINIC) -> PublishResult:
        """Validate ``event`` and commit it to the inbox of ``clinic_id`` (the signer's clinic)."""
        parsed = parse_event(event)
        if self.check_queue is not None:
            # Refuse before writing anything when the queue is down, so a caller that
            # gets an error can simply retry (503 at the HTTP edge).
            self.check_queue()
        appointment = parsed.appointment
        with self.database.session() as session:
            is_new = inbox.record_event(
                session,
                event_id=scoped(clinic_id, parsed.event_id),
                clinic_id=clinic_id,
                type=parsed.type,
                appointment_id=scoped(clinic_id, appointment.id),
                version=appointment.version,
                occurred_at=parsed.occurred_at,
                payload=json.dumps(event_to_json(parsed), separators=(",", ":")),
            )
        # A repeat queues nothing: if its first delivery never reached the queue, the
        # reconciler re-queues the pending inbox row.
        queued = is_new and self._try_enqueue(scoped(clinic_id, parsed.event_id))
        status: Literal["accepted", "duplicate"] = "accepted" if is_new else "duplicate"
        log.info("event recorded", event_id=parsed.event_id, appointment_id=scoped(clinic_id, appointment.id),
                 clinic_id=clinic_id, outcome=status, version=appointment.version)
        return PublishResult(event_id=parsed.event_id, status=status, queued=queued)

    def _try_enqueue(self, event_key: str) -> bool:
        try:
            self.enqueue(event_key)
        except Exception as exc:  # noqa: BLE001 - any queue failure: the event is committed; the reconciler queues it
            log.warning("queueing failed; the reconciler will pick the event up",
                        event_id=event_key, error_type=type(exc).__name__)
            return False
        return True


_default: Publisher | None = None
# The composition root offers the default publisher through the package's metadata
# (pyproject.toml, [project.entry-points."telemed.wiring"]), so this package names no
# module above it and builds nothing itself.
WIRING_GROUP = "telemed.wiring"


def configure(publisher: Publisher | None) -> None:
    """Install the publisher ``publish`` uses."""
    global _default
    _default = publisher


def publish(event: Any, clinic_id: str = DEFAULT_CLINIC) -> PublishResult:
    """Validate one event and accept it. Raises ``InvalidEvent`` listing each bad field.

    Unless ``configure`` was called, the publisher is the installed composition root's
    (``telemed.bootstrap.default_publisher``: from settings, on first use).
    """
    global _default
    if _default is None:
        (factory,) = entry_points(group=WIRING_GROUP, name="publisher")
        _default = factory.load()()
    return _default.publish(event, clinic_id)
