"""Who signed an event at ``POST /v1/events``, and whether it may speak for the clinic it names.

Without ``X-Telemed-Key-Id`` the signer is the default clinic, with TELEMED_INGRESS_SECRET
(as before clinics). With it, the signer is the clinic that owns that key
(``store.ingress_keys``). An unknown, malformed or retired key id is answered exactly as
a bad signature is (401, the same detail), so key ids cannot be probed.

Once the signature holds, the event's own label of its clinic (``appointment.clinic.id``)
may name the signer, or a label that is no clinic of this deployment, but never another
registered clinic (nor ``default`` when the signer is not the default clinic): that is a
booking system using the wrong key, and the event is refused (403), recorded for the
signer's operators (``telemed clinics refusals``) with the event id and the clinic named,
never the payload.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import structlog

from telemed.events import signing
from telemed.events.fields import ID_PATTERN
from telemed.foundation.tenancy import DEFAULT_CLINIC
from telemed.store import clinics, ingress_keys
from telemed.store.clinic_tables import CLINIC_ACTIVE
from telemed.store.ingress_keys import SigningKey
from telemed.web.services import WebServices

KEY_ID_HEADER = "X-Telemed-Key-Id"
log = structlog.get_logger("telemed.web.ingress")
_EVENT_ID = re.compile(ID_PATTERN)
# Checked against when the key id is unknown, so that answer takes the same path (and
# says the same) as a bad signature.
_DECOY_SECRET = secrets.token_hex(32)


class Rejected(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        self.status, self.reason, self.detail = status, reason, detail


@dataclass(frozen=True)
class Signer:
    clinic_id: str
    key: SigningKey | None = None  # None: the default clinic's TELEMED_INGRESS_SECRET

    @property
    def key_id(self) -> str | None:
        return self.key.key_id if self.key else None


def authenticate(svc: WebServices, key_id: str | None, timestamp: str | None, signature: str | None,
                 body: bytes) -> Signer:
    """The signer of ``body``; raises :class:`Rejected` (401, or 403 for a suspended clinic)."""
    tolerance = svc.settings.ingress_tolerance_seconds
    if key_id is None:
        secret = svc.settings.ingress_secret
        assert secret is not None  # the caller answered 503 without one
        _verify(secret.get_secret_value(), timestamp, signature, body, tolerance)
        return Signer(DEFAULT_CLINIC)
    with svc.database.session() as session:
        key = ingress_keys.find_key(session, key_id.strip())
    if key is None or key.retired:
        _verify(_DECOY_SECRET, timestamp, signature, body, tolerance)  # raises, as for a bad signature
        raise Rejected(401, "signature_mismatch", "signature does not match the body")
    _verify(key.secret, timestamp, signature, body, tolerance)
    if key.clinic_status != CLINIC_ACTIVE:
        raise Rejected(403, "clinic_suspended", f"clinic {key.clinic_id!r} is {key.clinic_status}: "
                                                "its events are not accepted")
    return Signer(key.clinic_id, key)


def _verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, tolerance: int) -> None:
    try:
        signing.verify(secret, timestamp, signature, body, tolerance_seconds=tolerance)
    except signing.SignatureError as exc:
        raise Rejected(401, f"signature_{exc.reason}", str(exc)) from None


def named_clinic(event: dict[str, Any]) -> str | None:
    """The event's own label of its clinic, when it gives one (read before the contract
    is checked: who may send an event comes before whether it is well formed)."""
    appointment = event.get("appointment")
    clinic = appointment.get("clinic") if isinstance(appointment, dict) else None
    named = clinic.get("id") if isinstance(clinic, dict) else None
    return named if isinstance(named, str) and named else None


def refuse_other_clinic(svc: WebServices, signer: Signer, event: dict[str, Any]) -> None:
    """Raise :class:`Rejected` (403) when the event names a registered clinic other than
    its signer's, after recording the refusal (the door's handler counts it in
    ``telemed_events_rejected_total{reason="other_clinic"}``)."""
    named = named_clinic(event)
    if named is None or named == signer.clinic_id:
        return
    with svc.database.session() as session:
        if not clinics.is_registered(session, named):
            return  # a label of the booking system's own, not a clinic of ours
        raw_id = event.get("event_id")
        event_id = raw_id if isinstance(raw_id, str) and _EVENT_ID.match(raw_id) else None
        ingress_keys.record_refusal(session, signer_clinic_id=signer.clinic_id, key_id=signer.key_id,
                                    named_clinic_id=named, event_id=event_id, reason="names another clinic")
    log.warning("event refused: it names another clinic", signer_clinic=signer.clinic_id, key_id=signer.key_id,
                named_clinic=named, event_id=event_id)
    raise Rejected(403, "other_clinic", f"this key's clinic may not send events for clinic {named!r}")


def note_use(svc: WebServices, signer: Signer) -> None:
    """Keep the key's ``last_used_at`` to the minute (a write at most once a minute per key)."""
    if signer.key is None or not ingress_keys.use_is_due(signer.key):
        return
    with svc.database.session() as session:
        ingress_keys.note_use(session, signer.key.key_id)
