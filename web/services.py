"""What the HTTP app needs, injected by the composition root (``telemed.bootstrap``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from telemed.events.publish import Publisher
from telemed.foundation.self_check import Finding
from telemed.foundation.settings import Settings
from telemed.foundation.tenancy import ClinicDirectory, ClinicProfile
from telemed.store.db import Database

Enqueue = Callable[..., object]  # enqueue(actor_name, *args, clinic=None): ids only; clinic: whose work (its gate)


@dataclass
class WebServices:
    settings: Settings
    database: Database
    redis: redis.Redis
    publisher: Publisher
    enqueue: Enqueue
    # Every clinic's profile, cached briefly (store.clinic_directory): the same directory
    # as the start-link fetcher's worker context.
    clinics: ClinicDirectory
    # start_url_fetcher(appointment_id) -> a start_url minted by Zoom now (never stored);
    # raises LookupError when the appointment has no live meeting. For start links and
    # the access API (notifications issue).
    start_url_fetcher: Callable[[str], str] | None = None
    # The deployment's checks for /readyz (telemed.selfcheck.readiness, as `telemed check`);
    # without them /readyz asks only the store and Redis.
    self_check: Callable[[], list[Finding]] | None = None

    def profile(self, clinic_id: str) -> ClinicProfile:
        """The clinic's profile; raises ``UnknownClinic``."""
        return self.clinics.profile(clinic_id)
