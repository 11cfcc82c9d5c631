"""The simulator's memory: accounts, tokens, meetings, the request log, injected faults.

Every public method takes the one lock, so handler threads and test code can call in at
any time. Reads return deep copies: callers can never mutate what the server serves.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

REQUEST_LOG_LIMIT = 10_000
PAGE_TOKEN_LIMIT = 10_000
_MIN_MEETING_ID = 2**33 + 1  # above 32 bits, so a client that truncates ids shows it
_MAX_MEETING_ID = 99_999_999_999  # Zoom's ids are at most 11 digits


@dataclass
class Fault:
    """A canned answer served instead of the real one, ``count`` times."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    count: int = 1
    method: str | None = None
    path_prefix: str | None = None

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

    def view(self) -> dict[str, Any]:
        return {
            "id": self.meeting["id"],
            "host": self.host,
            "created": True,
            "deleted": self.deleted_at is not None,
            "created_at": self.created_at,
            "deleted_at": self.deleted_at,
            "instant_conversion": self.instant_conversion,
            "meeting": copy.deepcopy(self.meeting),
        }


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    account_id: str


class SimState:
    def __init__(
        self,
        *,
        credentials: Credentials,
        token_lifetime_seconds: float,
        default_host_email: str,
        daily_limit: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.credentials = credentials
        self.token_lifetime_seconds = token_lifetime_seconds
        self.default_host_email = default_host_email
        self.daily_limit = daily_limit
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tokens: dict[str, float] = {}
            self.handed_out: set[str] = set()
            self.grants = 0
            self.meetings: dict[int, MeetingRecord] = {}
            self.log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
            self.faults: list[Fault] = []
            self.locked_settings: dict[str, Any] = {}
            self.daily_counts: dict[tuple[str, str], int] = {}
            self.page_tokens: dict[str, tuple[str, str, int]] = {}

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # Tokens -----------------------------------------------------------------------------

    def issue_token(self) -> str:
        token = secrets.token_urlsafe(48)
        with self.lock:
            self.handed_out.add(token)
            self.tokens[token] = self.clock() + self.token_lifetime_seconds
            self.grants += 1
        return token

    def token_status(self, token: str | None) -> str:
        """'valid', 'expired' or 'unknown'."""
        with self.lock:
            expires_at = self.tokens.get(token or "")
        if expires_at is None:
            return "unknown"
        return "valid" if self.clock() < expires_at else "expired"

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def revoke_token(self, token: str) -> None:
        with self.lock:
            self.tokens.pop(token, None)

    # Users ------------------------------------------------------------------------------

    def resolve_user(self, user_id: str) -> tuple[str, str]:
        """(host_id, host_email) for a path's userId: "me", an email, or a user id."""
        if user_id == "me":
            email = self.default_host_email
        elif "@" in user_id:
            email = user_id.lower()
        else:
            with self.lock:
                for record in self.meetings.values():
                    if record.meeting["host_id"] == user_id:
                        return user_id, record.meeting["host_email"]
            email = f"{user_id.lower()}@users.sim.example"
        digest = hashlib.sha256(email.encode("utf-8")).digest()[:16]
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("="), email

    # Meetings ---------------------------------------------------------------------------

    def new_meeting_id(self) -> int:
        with self.lock:
            while True:
                candidate = _MIN_MEETING_ID + secrets.randbelow(_MAX_MEETING_ID - _MIN_MEETING_ID)
                if candidate not in self.meetings:
                    return candidate

    def add_meeting(
        self, meeting: dict[str, Any], host: str, instant_conversion: str | None
    ) -> None:
        with self.lock:
            self.meetings[meeting["id"]] = MeetingRecord(
                meeting=meeting,
                host=host,
                created_at=self.clock(),
                instant_conversion=instant_conversion,
            )

    def live_meeting(self, meeting_id: int) -> MeetingRecord | None:
        with self.lock:
            record = self.meetings.get(meeting_id)
            return record if record is not None and record.deleted_at is None else None

    def delete_meeting(self, meeting_id: int) -> bool:
        with self.lock:
            record = self.live_meeting(meeting_id)
            if record is None:
                return False
            record.deleted_at = self.clock()
            return True

    def host_meetings(self, host_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(r.meeting)
                for r in self.meetings.values()
                if r.deleted_at is None and r.meeting["host_id"] == host_id
            ]

    def note_secrets(self, view: dict[str, Any]) -> dict[str, Any]:
        """Remember every credential handed out, so leak tests can search for each one."""
        with self.lock:
            for key in ("start_url", "join_url", "password", "encrypted_password"):
                if view.get(key):
                    self.handed_out.add(str(view[key]))
            if "zak=" in str(view.get("start_url", "")):
                self.handed_out.add(str(view["start_url"]).split("zak=", 1)[1])
        return view

    def secrets_handed_out(self) -> set[str]:
        with self.lock:
            return set(self.handed_out)

    def meeting_views(self) -> list[dict[str, Any]]:
        with self.lock:
            return [record.view() for record in self.meetings.values()]

    # Quotas, faults, log ----------------------------------------------------------------

    def count_daily(self, host_email: str) -> bool:
        """Count one create/update for the host; False when today's quota is used up."""
        with self.lock:
            if self.daily_limit is None:
                return True
            key = (host_email, self.now().date().isoformat())
            used = self.daily_counts.get(key, 0)
            if used >= self.daily_limit:
                return False
            self.daily_counts[key] = used + 1
            return True

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.append(entry)

    def request_log(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(list(self.log))

    def lock_setting(self, name: str, value: Any) -> None:
        with self.lock:
            self.locked_settings[name] = value

    def save_page(self, host_id: str, list_type: str, offset: int) -> str:
        token = secrets.token_urlsafe(24)
        with self.lock:
            if len(self.page_tokens) >= PAGE_TOKEN_LIMIT:
                self.page_tokens.pop(next(iter(self.page_tokens)))  # oldest first
            self.page_tokens[token] = (host_id, list_type, offset)
        return token

    def load_page(self, token: str) -> tuple[str, str, int] | None:
        # Not consumed: like Zoom's, a page token can be fetched again (a client retry).
        with self.lock:
            return self.page_tokens.get(token)
