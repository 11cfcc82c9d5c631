"""The one exception booking systems see from ``publish``: every bad field, by path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from telemed.foundation.errors import PermanentError


class FieldError(TypedDict):
    loc: list[str | int]
    msg: str


class InvalidEvent(PermanentError, ValueError):
    """The event breaks the v1 contract. ``errors`` lists each bad field and why.

    A client's error: the door answers it with 422 and nothing retries it; a stored event
    that breaks the contract now gives up (``workers/apply_event.py``). Still a
    ``ValueError`` for callers of ``events.publish``."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors)
        super().__init__(self._summary())

    def _summary(self) -> str:
        parts = [f"{'.'.join(str(p) for p in e['loc']) or '(event)'}: {e['msg']}" for e in self.errors]
        return "invalid event: " + "; ".join(parts)
