"""A metric label for the clinic that stays bounded however many clinics there are.

Prometheus keeps one series per label value for the life of a process; a deployment with
thousands of clinics must not turn every counter into thousands of series. So each
process labels the first ``limit`` clinics it meets by their id and every later one
``other``. The default clinic is always itself (a single-clinic deployment never sees
``other``). Which clinics get their own series depends on the order a process meets them;
that is fine for what the label is for (spotting a clinic in trouble), and a clinic that
needs watching in a big deployment is found through its logs and alerts, which always
carry the exact clinic id.
"""

from __future__ import annotations

import threading
from collections.abc import MutableSet

from telemed.foundation.tenancy import DEFAULT_CLINIC

OTHER = "other"
DEFAULT_LIMIT = 20


def bounded_label(clinic_id: str, seen: MutableSet[str], limit: int = DEFAULT_LIMIT) -> str:
    """The label for ``clinic_id``: itself while fewer than ``limit`` clinics were seen
    (``seen`` remembers them, and is updated), else ``other``."""
    if clinic_id == DEFAULT_CLINIC or clinic_id in seen:
        return clinic_id
    if len(seen) >= limit:
        return OTHER
    seen.add(clinic_id)
    return clinic_id


class ClinicLabels:
    """``bounded_label`` with its memory, one per process, safe across threads."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, clinic_id: str) -> str:
        if clinic_id == DEFAULT_CLINIC or clinic_id in self._seen:  # the common case, no lock
            return clinic_id
        with self._lock:
            return bounded_label(clinic_id, self._seen, self.limit)


# The process's labels: every metric with a ``clinic`` label goes through this one, so
# all of them name the same clinics.
clinic_label = ClinicLabels()
