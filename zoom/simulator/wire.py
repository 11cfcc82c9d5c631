"""The simulator's request and response objects, shared by the route modules."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the state imports modules that import this one
    from telemed.zoom.simulator.state import SimState


@dataclass
class SimRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    base_url: str = ""
    # Set by the bearer check: the user a user-level token acts for (None: account token).
    token_user: str | None = None
    # Set by the bearer check: the account the token acts in (its app's, or the user's own).
    account: str | None = None
    # When the request line came in (time.monotonic): what the rate limits count.
    arrived: float | None = None


@dataclass
class SimResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["SimState", SimRequest, "re.Match[str]"], SimResponse]


def error(status: int, code: int, message: str) -> SimResponse:
    """Zoom's API error body."""
    return SimResponse(status, {"code": code, "message": message})
