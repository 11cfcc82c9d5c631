"""The store-backed ``ClinicDirectory``: each clinic's profile, from its row, cached briefly.

The pipeline asks for a clinic's profile for every Zoom call and every mail; reading and
decrypting its row each time would cost a query and several Fernet decryptions per step.
So a profile is kept for ``ttl_seconds`` (5 s by default) in each process: a change
made with ``telemed clinics update`` (or a suspension) takes effect everywhere within
that time, without a restart. An unknown clinic is remembered as unknown for as long.
The default clinic's profile is the one given (``telemed.settings.default_profile``,
from the environment); it never reads the store.

Secrets are decrypted only here, into the profile (``ClinicProfile`` and ``ZoomApp``
hide them from ``repr``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from telemed.foundation.tenancy import DEFAULT_CLINIC, ClinicProfile, UnknownClinic, ZoomApp
from telemed.store import clinics
from telemed.store.clinic_tables import CLINIC_DELETED, Clinic
from telemed.store.db import Database

DEFAULT_TTL_SECONDS = 5.0
MAX_CACHED = 10_000  # far more clinics than a deployment serves; a bound all the same


def profile_of(row: Clinic) -> ClinicProfile:
    """A clinic's profile from its row (its secrets decrypted by the column type)."""
    account = None
    if row.zoom_account_id and row.zoom_client_id and row.zoom_client_secret:
        account = ZoomApp(client_id=row.zoom_client_id, client_secret=row.zoom_client_secret,
                          account_id=row.zoom_account_id)
    oauth = None
    if row.zoom_oauth_client_id and row.zoom_oauth_client_secret:
        oauth = ZoomApp(client_id=row.zoom_oauth_client_id, client_secret=row.zoom_oauth_client_secret)
    return ClinicProfile(
        clinic_id=row.id, name=row.name, status=row.status, zoom_account=account, zoom_oauth=oauth,
        zoom_webhook_secret=row.zoom_webhook_secret, mail_from=row.mail_from, mail_reply_to=row.mail_reply_to,
        mail_display_name=row.mail_display_name, reminder_offsets=row.reminder_offsets,
        webhook_url=row.webhook_url, webhook_secret=row.webhook_secret,
        admin_emails=tuple(a for a in row.admin_emails.split(",") if a),
    )


class StoreDirectory:
    """Profiles of the default clinic (given) and of every registered one (from the store)."""

    def __init__(self, database: Database | Callable[[], Database], default_profile: ClinicProfile, *,
                 ttl_seconds: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        if default_profile.clinic_id != DEFAULT_CLINIC:
            raise ValueError(f"the default profile must be the {DEFAULT_CLINIC!r} clinic's")
        # A worker's database is built on first use (its pool sized by its threads): the
        # directory may be given the way to reach it instead of the database itself.
        self._database: Callable[[], Database] = database if callable(database) else (lambda: database)
        self._default = default_profile
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._profiles: dict[str, tuple[float, ClinicProfile | None]] = {}
        self._ids: tuple[float, tuple[str, ...]] | None = None

    def profile(self, clinic_id: str) -> ClinicProfile:
        """The clinic's profile (suspended ones too: the caller decides); raises
        ``UnknownClinic`` for no clinic or a deleted one."""
        if clinic_id == DEFAULT_CLINIC:
            return self._default
        now = self._clock()
        with self._lock:
            cached = self._profiles.get(clinic_id)
        if cached is None or cached[0] <= now:
            # Read outside the lock: a slow database holds up only the callers that need
            # this clinic afresh; two of them may both read, which is harmless.
            cached = (now + self._ttl, self._load(clinic_id))
            with self._lock:
                if len(self._profiles) >= MAX_CACHED:
                    self._profiles.clear()
                self._profiles[clinic_id] = cached
        found = cached[1]
        if found is None:
            raise UnknownClinic(clinic_id)
        return found

    def clinic_ids(self) -> Sequence[str]:
        """The default clinic, then every active registered clinic."""
        now = self._clock()
        with self._lock:
            ids = self._ids
        if ids is None or ids[0] <= now:
            with self._database().session() as session:
                ids = (now + self._ttl, (DEFAULT_CLINIC, *clinics.active_clinic_ids(session)))
            with self._lock:
                self._ids = ids
        return ids[1]

    def forget(self) -> None:
        """Drop the cache (for a process that has just changed a clinic itself)."""
        with self._lock:
            self._profiles.clear()
            self._ids = None

    def _load(self, clinic_id: str) -> ClinicProfile | None:
        with self._database().session() as session:
            row = clinics.get_clinic(session, clinic_id)
            if row is None or row.status == CLINIC_DELETED:
                return None
            return profile_of(row)
