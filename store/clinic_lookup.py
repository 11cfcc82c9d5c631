"""Reading one clinic's row for the commands scoped to a clinic (``--clinic ID``).

Whether a clinic exists for them, and its status webhook URL. The default clinic exists
whether or not it has a row: it is configured by the environment.
"""

from __future__ import annotations

from sqlmodel import Session

from telemed.foundation.tenancy import DEFAULT_CLINIC
from telemed.store.clinic_tables import CLINIC_ACTIVE, CLINIC_SUSPENDED, Clinic


def is_known(session: Session, clinic_id: str) -> bool:
    """The default clinic, or one whose row is active or suspended (not being or been deleted)."""
    if clinic_id == DEFAULT_CLINIC:
        return True
    row = session.get(Clinic, clinic_id)
    return row is not None and row.status in {CLINIC_ACTIVE, CLINIC_SUSPENDED}


def webhook_url(session: Session, clinic_id: str) -> str | None:
    """The status webhook URL in the clinic's row (the default clinic's is in the settings)."""
    row = session.get(Clinic, clinic_id)
    return row.webhook_url if row is not None else None
