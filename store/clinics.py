"""The clinic registry: the clinics served besides the default one, and what each configures.

The default clinic (``foundation.tenancy.DEFAULT_CLINIC``) has no row: it is configured
from the environment (``TELEMED_*``, ``telemed.settings.default_profile``), so a
deployment has one place to change it, and a database from before clinics needs no row.
Its id is refused here. Every other clinic is a row of ``clinics``
(``store.clinic_tables``); its secrets are ``EncryptedText`` and leave this module only
inside a profile (``store.clinic_directory``).

Every value is checked here, so each caller (``telemed clinics``, the admin page) refuses
bad input with the same message, naming the field: :class:`ClinicError`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from email.utils import parseaddr

from sqlmodel import Session, col, select

from telemed.foundation.tenancy import DEFAULT_CLINIC, InvalidClinicId, check_clinic_id
from telemed.foundation.urls import require_secure_url
from telemed.store.clinic_tables import CLINIC_ACTIVE, CLINIC_DELETED, CLINIC_SUSPENDED, Clinic
from telemed.store.models import utcnow


class ClinicError(ValueError):
    """Bad input for the registry; the message names the field and the reason."""


class ClinicNotFound(LookupError):
    """No clinic by that id (a deleted clinic's tombstone counts as none)."""


# The fields an operator sets (besides the id); the secrets among them are encrypted.
FIELDS = ("name", "zoom_account_id", "zoom_client_id", "zoom_client_secret", "zoom_oauth_client_id",
          "zoom_oauth_client_secret", "zoom_webhook_secret", "mail_from", "mail_reply_to", "mail_display_name",
          "reminder_offsets", "webhook_url", "webhook_secret", "admin_emails")
SECRETS = ("zoom_client_secret", "zoom_oauth_client_secret", "zoom_webhook_secret", "webhook_secret")

_ASCII_TOKEN = re.compile(r"^[!-~]{1,128}$")  # Zoom's ids: visible ASCII, no spaces
_PLAIN_ADDRESS = re.compile(r"^[!-?A-~]{1,64}@[!-?A-~]{1,253}$")  # as the notifier sends to
_OFFSETS = re.compile(r"^\s*(\d+[smhd]\s*(,\s*\d+[smhd]\s*)*)?$")
_NON_ZERO = re.compile(r"[1-9]")


def _text(field: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ClinicError(f"{field}: must not be empty")
    value = value.strip()
    if len(value) > limit:
        raise ClinicError(f"{field}: at most {limit} characters")
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise ClinicError(f"{field}: control or invisible format characters are not allowed")
    return value


def _address(field: str, value: object) -> str:
    text = _text(field, value, 254)
    if not _PLAIN_ADDRESS.match(text):
        raise ClinicError(f"{field}: {text!r} is not a plain ASCII e-mail address")
    return text


def _sender(field: str, value: object) -> str:
    text = _text(field, value, 320)
    _name, address = parseaddr(text)
    if not _PLAIN_ADDRESS.match(address):
        raise ClinicError(f"{field}: must be an address, optionally with a name: 'Clinic <no-reply@clinic.example>'")
    return text


def _offsets(field: str, value: object) -> str:
    if not isinstance(value, str) or not _OFFSETS.match(value):
        raise ClinicError(f"{field}: must be like 24h,15m (numbers with s, m, h or d; empty for no reminders)")
    items = [item.strip() for item in value.split(",") if item.strip()]
    if any(not _NON_ZERO.search(item) for item in items):
        raise ClinicError(f"{field}: each offset must be more than zero")
    if len(",".join(items)) > 100:
        raise ClinicError(f"{field}: at most 100 characters")
    return ",".join(items)


def _url(field: str, value: object) -> str:
    text = _text(field, value, 2000)
    try:
        return require_secure_url(text, what=field)
    except ValueError as exc:
        raise ClinicError(str(exc)) from None


def _admins(field: str, value: object) -> str:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ClinicError(f"{field}: must be a list of addresses")
    addresses: list[str] = []
    for item in value:
        address = _address(field, item)
        if address.lower() not in {a.lower() for a in addresses}:
            addresses.append(address)
    if len(addresses) > 20:
        raise ClinicError(f"{field}: at most 20 addresses")
    return ",".join(addresses)


def _zoom_id(field: str, value: object) -> str:
    if not isinstance(value, str) or not _ASCII_TOKEN.match(value.strip()):
        raise ClinicError(f"{field}: 1 to 128 visible ASCII characters")
    return value.strip()


def _secret(field: str, value: object) -> str:
    return _text(field, value, 1000)


_CHECKS = {
    "name": lambda f, v: _text(f, v, 200), "zoom_account_id": _zoom_id, "zoom_client_id": _zoom_id,
    "zoom_oauth_client_id": _zoom_id, "mail_from": _sender, "mail_reply_to": _address,
    "mail_display_name": lambda f, v: _text(f, v, 200), "reminder_offsets": _offsets, "webhook_url": _url,
    "admin_emails": _admins, **{name: _secret for name in SECRETS},
}


def checked(changes: Mapping[str, object]) -> dict[str, object]:
    """``changes`` with every value checked and normalised; ``None`` clears a field."""
    out: dict[str, object] = {}
    for field, value in changes.items():
        if field not in _CHECKS:
            raise ClinicError(f"{field}: not a clinic setting")
        if value is None:
            if field == "name":
                raise ClinicError("name: a clinic must have a name")
            out[field] = "" if field == "admin_emails" else None
            continue
        out[field] = _CHECKS[field](field, value)
    return out


def new_clinic_id(clinic_id: str) -> str:
    """A valid id for a new clinic; ``default`` and malformed ids are refused."""
    try:
        check_clinic_id(clinic_id)
    except InvalidClinicId as exc:
        raise ClinicError(f"clinic id: {exc}") from None
    if clinic_id == DEFAULT_CLINIC:
        raise ClinicError("clinic id: 'default' is the clinic configured from environment variables "
                          "(TELEMED_*); it has no row")
    return clinic_id


def add_clinic(session: Session, clinic_id: str, name: str, **settings: object) -> Clinic:
    """A new active clinic. Refused: a taken id, a deleted clinic's id (never given again)."""
    clinic_id = new_clinic_id(clinic_id)
    values = checked({"name": name, **settings})
    if session.get(Clinic, clinic_id) is not None:
        raise ClinicError(f"clinic id: {clinic_id!r} is taken (a deleted clinic's id is never given again)")
    row = Clinic(id=clinic_id, **values)  # type: ignore[arg-type]
    _require_consistent(row)
    session.add(row)
    session.flush()
    return row


def update_clinic(session: Session, clinic_id: str, **changes: object) -> Clinic:
    """Change some settings of a clinic (``None`` clears one); returns the row."""
    row = live_clinic(session, clinic_id, for_update=True)
    for field, value in checked(changes).items():
        setattr(row, field, value)
    _require_consistent(row)
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def _require_consistent(row: Clinic) -> None:
    """The pairs that only mean something together: a Zoom app is its id and its secret."""
    s2s = (row.zoom_account_id, row.zoom_client_id, row.zoom_client_secret)
    if any(s2s) and not all(s2s):
        raise ClinicError("zoom_account_id, zoom_client_id and zoom_client_secret: a server-to-server app "
                          "needs all three (or none)")
    if bool(row.zoom_oauth_client_id) != bool(row.zoom_oauth_client_secret):
        raise ClinicError("zoom_oauth_client_id and zoom_oauth_client_secret: an OAuth app needs both (or neither)")
    if row.webhook_secret and not row.webhook_url:
        raise ClinicError("webhook_secret: set webhook_url too (the secret signs the calls to it)")


def get_clinic(session: Session, clinic_id: str) -> Clinic | None:
    """The clinic's row (a deleted clinic's tombstone too), or None."""
    return session.get(Clinic, clinic_id)


def list_clinics(session: Session, *, include_deleted: bool = False) -> list[Clinic]:
    statement = select(Clinic).order_by(col(Clinic.id))
    if not include_deleted:
        statement = statement.where(col(Clinic.status) != CLINIC_DELETED)
    return list(session.exec(statement))


def active_clinic_ids(session: Session) -> list[str]:
    return list(session.exec(select(Clinic.id).where(col(Clinic.status) == CLINIC_ACTIVE).order_by(col(Clinic.id))))


def is_registered(session: Session, clinic_id: str) -> bool:
    """Whether ``clinic_id`` names a clinic of this deployment, in any state (deleted too:
    its id stays taken), or the default clinic."""
    return clinic_id == DEFAULT_CLINIC or session.get(Clinic, clinic_id) is not None


def suspend_clinic(session: Session, clinic_id: str) -> bool:
    """Suspend: its events are refused (403); False when it already was."""
    return _set_status(session, clinic_id, CLINIC_SUSPENDED)


def resume_clinic(session: Session, clinic_id: str) -> bool:
    return _set_status(session, clinic_id, CLINIC_ACTIVE)


def _set_status(session: Session, clinic_id: str, status: str) -> bool:
    row = live_clinic(session, clinic_id, for_update=True)
    if row.status == status:
        return False
    row.status, row.updated_at = status, utcnow()
    session.add(row)
    return True


def live_clinic(session: Session, clinic_id: str, *, for_update: bool = False) -> Clinic:
    """The clinic's row unless it is missing or deleted (:class:`ClinicNotFound`)."""
    if clinic_id == DEFAULT_CLINIC:
        raise ClinicError("clinic id: 'default' is configured from environment variables (TELEMED_*), not here")
    statement = select(Clinic).where(col(Clinic.id) == clinic_id)
    if for_update:
        statement = statement.with_for_update()
    row = session.exec(statement).first()
    if row is None or row.status == CLINIC_DELETED:
        raise ClinicNotFound(f"no clinic {clinic_id!r}")
    return row

