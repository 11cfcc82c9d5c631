"""What a clinic is shown: its own ids, in free text too; and what it may ask for.

Structured ids are translated with ``tenancy.external_id``. Texts written by our own
code (a dead letter's reason, an alert's subject, an outbox row's last error) may quote
a scoped key; shown to the clinic that owns them, its own ``"<clinic>/"`` prefix goes.
"""

from __future__ import annotations

from telemed.foundation.tenancy import DEFAULT_CLINIC, SEPARATOR, scoped

MAX_OWN_ID_LENGTH = 128  # a contract id's longest (events.fields.ID_PATTERN)


def key_of(clinic_id: str, own_id: str) -> str | None:
    """The scoped key of what the clinic calls ``own_id``; None for what cannot be one of
    its ids. (A ``/`` is refused: in the default clinic ``"b/A-1"`` would name clinic b's.)"""
    if not own_id or len(own_id) > MAX_OWN_ID_LENGTH or SEPARATOR in own_id:
        return None
    return scoped(clinic_id, own_id)


def own_text(text: str, clinic_id: str) -> str:
    """``text`` with the scoped keys of ``clinic_id`` written as the clinic's own ids."""
    if clinic_id == DEFAULT_CLINIC:
        return text
    return text.replace(f"{clinic_id}{SEPARATOR}", "")


def principal_label(principal: str) -> str:
    """An audit row's principal (``doctor:<key>``, ``admin key:<prefix>``, ...) as its clinic reads it."""
    role, sep, rest = principal.partition(":")
    if role != "doctor" or not sep:
        return principal
    key, space, tail = rest.partition(" ")
    return f"doctor:{key.partition(SEPARATOR)[2] or key}{space}{tail}"
