"""What the simulator remembers, one record type each: an injected fault, a meeting,
the app's credentials, an access token."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    """A canned misbehaviour for the next ``count`` matching requests.

    ``action``: ``respond`` answers with status/body/headers instead of the real answer;
    ``reset`` resets the connection before doing anything; ``timeout`` holds the
    connection without answering; ``drop`` does the real work (a create really creates)
    and then resets the connection instead of answering.
    """

    status: int = 0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    count: int = 1
    method: str | None = None
    path_prefix: str | None = None
    action: str = "respond"

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )


@dataclass
class MeetingRecord:
    meeting: dict[str, Any]
    host: str
    created_at: float
    deleted_at: float | None = None
    instant_conversion: str | None = None
    # Whose Zoom account holds it: the app's account (account tokens), or the user's own
    # (a user-managed OAuth token); a token sees only its own account's meetings.
    account: str = ""
    # Its registrants (zoom.simulator.registrants), kept after a cancel as Zoom does.
    registrants: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.meeting["id"],
            "host": self.host,
            "created": True,
            "deleted": self.deleted_at is not None,
            "created_at": self.created_at,
            "deleted_at": self.deleted_at,
            "instant_conversion": self.instant_conversion,
            "account": self.account,
            "meeting": copy.deepcopy(self.meeting),
            "registrants": copy.deepcopy(self.registrants),
        }


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    account_id: str
    # The user-managed OAuth app (doctors connecting their own Zoom) is a separate app
    # with its own credentials, as in Zoom's marketplace.
    oauth_client_id: str = "sim-oauth-client-id"
    oauth_client_secret: str = "sim-oauth-client-secret"  # noqa: S105  (made-up, simulator only)


@dataclass(frozen=True)
class AccessToken:
    expires_at: float
    user: str | None  # the authorizing user's email; None for an account (S2S) token
    account: str = ""  # the account it acts in: its app's, or "user:<email>"
    app: str = ""  # the client id of the app that minted it
