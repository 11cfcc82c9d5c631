"""The simulator's memory: accounts, tokens, meetings, the request log, injected faults.

The apps (server-to-server apps of several accounts, user-managed OAuth apps) live in
``apps``, OAuth grants (codes, refresh-token chains) in ``oauth_book``, per-second windows in
``limits``, random faults in ``chaos``, the record types in ``records``; this module holds
what every route shares. Everything Zoom counts per account is counted per account here:
an access token acts in one account (its app's, or the user's own), and the per-second
windows, the per-host daily quotas and the meetings a token may see are that account's.

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
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from telemed.zoom.simulator.apps import AppBook
from telemed.zoom.simulator.chaos import ChaosProfile
from telemed.zoom.simulator.limits import RateWindows
from telemed.zoom.simulator.oauth import OAuthBook
from telemed.zoom.simulator.records import AccessToken, Credentials, Fault, MeetingRecord
from telemed.zoom.simulator.registrants import admits

REQUEST_LOG_LIMIT = 10_000
PAGE_TOKEN_LIMIT = 10_000
_MIN_MEETING_ID = 2**33 + 1  # above 32 bits, so a client that truncates ids shows it
_MAX_MEETING_ID = 99_999_999_999  # Zoom's ids are at most 11 digits


class SimState:
    def __init__(
        self,
        *,
        credentials: Credentials,
        token_lifetime_seconds: float,
        default_host_email: str,
        daily_limit: int | None = None,
        clock: Callable[[], float] = time.time,
        log_limit: int = REQUEST_LOG_LIMIT,
    ) -> None:
        self.lock = threading.RLock()
        self.log_limit = log_limit
        self.credentials = credentials
        self.token_lifetime_seconds = token_lifetime_seconds
        self.default_host_email = default_host_email
        self.daily_limit = daily_limit
        self.clock = clock
        self.apps = AppBook(credentials)
        self.oauth_book = OAuthBook(clock)
        self.rate_windows = RateWindows()
        self.chaos: ChaosProfile | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tokens: dict[str, AccessToken] = {}
            self.handed_out: set[str] = set()
            self.grants = 0
            # grant.account / grant.authorization_code / grant.refresh_token, invalid_grant,
            # rate_limited.qps / rate_limited.daily, meetings.created, fault.<kind>, ...
            self.counters: Counter[str] = Counter()
            # The same, per account: (account, counter) -> count.
            self.account_counters: Counter[tuple[str, str]] = Counter()
            self.apps.reset()
            self.oauth_book.reset()
            self.rate_windows.reset()
            self.meetings: dict[int, MeetingRecord] = {}
            self.log: deque[dict[str, Any]] = deque(maxlen=self.log_limit)
            # When each access token was handed out: the request log is too coarse for
            # that (it drops old entries under load, and issue_token() bypasses HTTP).
            self.grant_log: deque[dict[str, Any]] = deque(maxlen=self.log_limit)
            self.faults: list[Fault] = []
            self.locked_settings: dict[str, Any] = {}
            self.daily_counts: dict[tuple[str, str, str], int] = {}  # (account, host, day)
            self.page_tokens: dict[str, tuple[str, str, int]] = {}
            # Users without a paid licence (e-mails): Zoom refuses them registration.
            self.basic_users: set[str] = set()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # Tokens -----------------------------------------------------------------------------

    def issue_token(
        self, user: str | None = None, kind: str = "account", *, account: str | None = None, app: str | None = None,
    ) -> str:
        """A new access token: an account's (``user`` None; by default the first app's
        account) or one acting as ``user`` in their own account."""
        token = secrets.token_urlsafe(48)
        if user is not None:
            account = user_account(user)
        with self.lock:
            now = self.clock()
            account = account or self.credentials.account_id
            app = app or (self.credentials.oauth_client_id if user else self.credentials.client_id)
            self.handed_out.add(token)
            self.tokens[token] = AccessToken(now + self.token_lifetime_seconds, user, account, app)
            self.grants += 1
            self.counters[f"grant.{kind}"] += 1
            self.account_counters[(account, f"grant.{kind}")] += 1
            self.grant_log.append({"at": now, "kind": kind, "user": user, "account": account,
                                   "expires_at": now + self.token_lifetime_seconds})
        return token

    def grant_history(self) -> list[dict[str, Any]]:
        """Every grant, oldest first: ``{at, kind, user, account, expires_at}`` (no token values)."""
        with self.lock:
            return copy.deepcopy(list(self.grant_log))

    def token_status(self, token: str | None) -> str:
        """'valid', 'expired' or 'unknown'."""
        with self.lock:
            record = self.tokens.get(token or "")
        if record is None:
            return "unknown"
        return "valid" if self.clock() < record.expires_at else "expired"

    def token_user(self, token: str | None) -> str | None:
        with self.lock:
            record = self.tokens.get(token or "")
        return record.user if record is not None else None

    def token_account(self, token: str | None) -> str | None:
        """The account a token acts in: its app's, or ``user:<email>`` for a user's own."""
        with self.lock:
            record = self.tokens.get(token or "")
        return record.account if record is not None else None

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = {t: AccessToken(0.0, r.user, r.account, r.app) for t, r in self.tokens.items()}

    def revoke_app(self, client_id: str) -> int:
        """The app was deactivated: no more grants, and its access tokens stop working.
        Returns how many tokens died (raises LookupError for an unknown app)."""
        if not self.apps.revoke(client_id):
            raise LookupError(client_id)
        with self.lock:
            doomed = [t for t, r in self.tokens.items() if r.app == client_id]
            for token in doomed:
                del self.tokens[token]
        return len(doomed)

    def revoke_token(self, token: str) -> None:
        with self.lock:
            self.tokens.pop(token, None)

    def revoke_user_tokens(self, user: str) -> int:
        """Drop every access token acting as ``user`` (the app was deauthorized)."""
        with self.lock:
            doomed = [t for t, r in self.tokens.items() if r.user == user]
            for token in doomed:
                del self.tokens[token]
        return len(doomed)

    def count(self, name: str, amount: int = 1, *, account: str | None = None) -> None:
        with self.lock:
            self.counters[name] += amount
            if account is not None:
                self.account_counters[(account, name)] += amount

    def account_stats(self) -> dict[str, dict[str, int]]:
        """Per account: its counters (grants, 429s, meetings created), sorted."""
        with self.lock:
            per: dict[str, dict[str, int]] = {}
            for (account, name), value in sorted(self.account_counters.items()):
                per.setdefault(account, {})[name] = value
        return per

    # Users ------------------------------------------------------------------------------

    def resolve_user(self, user_id: str, me: str | None = None) -> tuple[str, str]:
        """(host_id, host_email) for a path's userId: "me", an email, or a user id.

        ``me`` is the user a user-level token acts for; an account token's "me" is the
        account's default host.
        """
        if user_id == "me":
            email = (me or self.default_host_email).lower()
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
        self, meeting: dict[str, Any], host: str, instant_conversion: str | None, account: str = ""
    ) -> None:
        with self.lock:
            self.meetings[meeting["id"]] = MeetingRecord(
                meeting=meeting,
                host=host,
                created_at=self.clock(),
                instant_conversion=instant_conversion,
                account=account or self.credentials.account_id,
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

    def host_meetings(self, host_id: str, account: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(r.meeting)
                for r in self.meetings.values()
                if r.deleted_at is None
                and r.meeting["host_id"] == host_id
                and (account is None or r.account == account)
            ]

    def is_licensed(self, host_email: str) -> bool:
        with self.lock:
            return host_email.lower() not in self.basic_users

    def set_basic_user(self, email: str, basic: bool = True) -> None:
        with self.lock:
            (self.basic_users.add if basic else self.basic_users.discard)(email.lower())

    def join_check(self, url: str) -> tuple[bool, str]:
        """Whether a registrant's join URL admits its holder now (``/_sim/join``)."""
        with self.lock:
            for record in self.meetings.values():
                if any(r.get("join_url") == url for r in record.registrants):
                    live = record.meeting if record.deleted_at is None else None
                    return admits(live, record.registrants, url)
        return False, "unknown link"

    def note_secrets(self, view: dict[str, Any]) -> dict[str, Any]:
        """Remember every credential handed out, so leak tests can search for each one."""
        with self.lock:
            for key in ("start_url", "join_url", "password", "encrypted_password"):
                if view.get(key):
                    self.handed_out.add(str(view[key]))
            if "zak=" in str(view.get("start_url", "")):
                self.handed_out.add(str(view["start_url"]).split("zak=", 1)[1])
            for registrant in view.get("registrants") or []:  # a registrant list
                if registrant.get("join_url"):
                    self.handed_out.add(str(registrant["join_url"]))
        return view

    def secrets_handed_out(self) -> set[str]:
        with self.lock:
            return set(self.handed_out)

    def meeting_views(self) -> list[dict[str, Any]]:
        with self.lock:
            return [record.view() for record in self.meetings.values()]

    # Quotas, faults, log ----------------------------------------------------------------

    def account_rate(self, account: str, category: str) -> float | None:
        """This account's per-second limit of ``category`` when its plan sets one (else
        None: the simulator's ``rate_limits``)."""
        app = self.apps.account_limits(account)
        if app is None or app.rate_limits is None:
            return None
        return app.rate_limits.get(category)

    def daily_limit_of(self, account: str) -> int | None:
        app = self.apps.account_limits(account)
        return app.daily_limit if app is not None and app.daily_limit is not None else self.daily_limit

    def count_daily(self, host_email: str, account: str | None = None) -> bool:
        """Count one create/update for the host in ``account`` (the account of the token
        that made the call); False when today's quota is used up."""
        with self.lock:
            account = account or self.credentials.account_id
            limit = self.daily_limit_of(account)
            key = (account, host_email, self.now().date().isoformat())
            used = self.daily_counts.get(key, 0)
            if limit is not None and used >= limit:
                return False
            self.daily_counts[key] = used + 1
            return True

    def daily_used(self, host_email: str, account: str | None = None) -> int:
        """Create/update calls the host made today, as Zoom counts its daily quota: in
        ``account``, or (None) in every account."""
        with self.lock:
            today = self.now().date().isoformat()
            return sum(used for (acct, host, day), used in self.daily_counts.items()
                       if host == host_email and day == today and (account is None or acct == account))

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


def user_account(user: str) -> str:
    """The account a user-level token acts in: the user's own."""
    return f"user:{user.lower()}"
