"""Clinics (tenants): their ids, the scoped keys of what they own, and their profile.

One deployment serves many clinics. Each clinic's booking system names its doctors,
appointments and events with its own ids, and two clinics may both have a doctor ``D-1``.
Inside telemed every such id is a **scoped key**: ``"<clinic>/<id>"``. The default clinic
(the one configured from environment variables, as before clinics existed) keeps its bare
ids, so a database from before clinics keeps every key it had. ``/`` is not a character
any contract id may hold (``events.fields.ID_PATTERN``), so keys of different clinics can
never collide, and a key tells its clinic without a database read: the queue, the locks,
the dead letters and the logs all carry keys and so carry the clinic.

The edges translate: the door scopes what a booking system sends (``scoped``); whatever
goes back to a clinic (its API, its webhook, its admin page, its export) shows the
clinic's own id again (``external_id``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

DEFAULT_CLINIC = "default"
SEPARATOR = "/"
# Lower-case letters, digits and dashes, like a DNS label: safe in a Redis key, a log
# field, a metric label, a URL path and a file name without quoting.
CLINIC_ID_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
MAX_CLINIC_ID_LENGTH = 40
# A contract id (128) behind the longest clinic id and the separator.
MAX_KEY_LENGTH = 128 + MAX_CLINIC_ID_LENGTH + 1


class InvalidClinicId(ValueError):
    pass


def check_clinic_id(clinic_id: str) -> str:
    """``clinic_id`` if it may name a clinic; raises :class:`InvalidClinicId` naming why."""
    if not isinstance(clinic_id, str) or not CLINIC_ID_PATTERN.match(clinic_id):
        raise InvalidClinicId(
            "a clinic id is 1 to 40 of a-z, 0-9 and '-', starting and ending with a letter or digit"
        )
    return clinic_id


def scoped(clinic_id: str, external: str) -> str:
    """The key of the booking system's id ``external`` in ``clinic_id``."""
    if clinic_id == DEFAULT_CLINIC:
        return external
    return f"{clinic_id}{SEPARATOR}{external}"


def clinic_of(key: str) -> str:
    """The clinic that owns a scoped key."""
    clinic, sep, _ = key.partition(SEPARATOR)
    return clinic if sep else DEFAULT_CLINIC


def external_id(key: str) -> str:
    """The id the clinic's booking system knows the thing by."""
    clinic, sep, rest = key.partition(SEPARATOR)
    return rest if sep else clinic


def owned_by(key: str, clinic_id: str) -> bool:
    return clinic_of(key) == clinic_id


@dataclass(frozen=True, repr=False)
class ZoomApp:
    """A Zoom server-to-server app (account credentials) or user-managed OAuth app."""

    client_id: str
    client_secret: str
    account_id: str | None = None  # only a server-to-server app has one

    def __repr__(self) -> str:  # the secret never reaches a log or a traceback
        return f"ZoomApp(client_id={self.client_id!r}, account_id={self.account_id!r})"


@dataclass(frozen=True, repr=False)
class ClinicProfile:
    """What one clinic configures: who it is, its Zoom apps, its mail, its webhook, its admins.

    The default clinic's profile comes from ``Settings`` (``default_profile`` in
    ``telemed.settings``); every other clinic's from the store (``store.clinics``), its
    secrets decrypted only when the profile is built.
    """

    clinic_id: str
    name: str
    status: str = "active"  # active | suspended | deleted
    zoom_account: ZoomApp | None = None  # server-to-server: meetings under the clinic's account
    zoom_oauth: ZoomApp | None = None  # user-managed: the clinic's doctors connect their own
    zoom_webhook_secret: str | None = None
    mail_from: str | None = None  # None: the deployment's TELEMED_MAIL_FROM
    mail_reply_to: str | None = None
    mail_display_name: str | None = None
    reminder_offsets: str | None = None  # None: the deployment's TELEMED_REMINDER_OFFSETS
    webhook_url: str | None = None
    webhook_secret: str | None = None
    admin_emails: tuple[str, ...] = field(default_factory=tuple)

    @property
    def zoom_account_scope(self) -> str:
        """What Zoom counts a server-to-server app's limits by: its account."""
        account = self.zoom_account.account_id if self.zoom_account else None
        return f"account:{account or '-'}"

    def __repr__(self) -> str:
        return f"ClinicProfile(clinic_id={self.clinic_id!r}, status={self.status!r})"


class UnknownClinic(LookupError):
    """No clinic by that id (or it was deleted)."""


class ClinicDirectory(Protocol):
    """Where the pipeline and the web find a clinic's profile (cached; see store.clinics)."""

    def profile(self, clinic_id: str) -> ClinicProfile:
        """The clinic's profile; raises :class:`UnknownClinic`."""
        ...

    def clinic_ids(self) -> Sequence[str]:
        """Every active clinic, the default first."""
        ...


class StaticDirectory:
    """A fixed set of profiles: the default clinic alone, or a test's clinics."""

    def __init__(self, profiles: Sequence[ClinicProfile]) -> None:
        self._profiles = {p.clinic_id: p for p in profiles}

    def profile(self, clinic_id: str) -> ClinicProfile:
        found = self._profiles.get(clinic_id)
        if found is None or found.status == "deleted":
            raise UnknownClinic(clinic_id)
        return found

    def clinic_ids(self) -> Sequence[str]:
        ids = [c for c, p in self._profiles.items() if p.status != "deleted"]
        return sorted(ids, key=lambda c: (c != DEFAULT_CLINIC, c))
