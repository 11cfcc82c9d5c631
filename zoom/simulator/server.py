"""A local Zoom: a real threaded HTTP server over the simulator's state and routes.

Tests, the demo and ``telemed zoom-sim`` talk to it over HTTP exactly as to Zoom, with
``TELEMED_ZOOM_API_URL`` / ``TELEMED_ZOOM_OAUTH_URL`` pointed at :attr:`api_url` and
:attr:`oauth_url`. Plain HTTP is fine here: the settings accept it for loopback only.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from telemed.zoom.simulator.admin import stats_of
from telemed.zoom.simulator.apps import AccountApp, OAuthApp
from telemed.zoom.simulator.chaos import ChaosProfile, parse_chaos
from telemed.zoom.simulator.handler import MAX_BODY_BYTES, SimServer, handler_for
from telemed.zoom.simulator.limits import PRO_PLAN
from telemed.zoom.simulator.records import Credentials, Fault
from telemed.zoom.simulator.state import REQUEST_LOG_LIMIT, SimState

__all__ = ["MAX_BODY_BYTES", "PRO_PLAN", "ZoomSimulator"]

DEFAULT_CLIENT_ID = "sim-client-id"
DEFAULT_CLIENT_SECRET = "sim-client-secret"  # noqa: S105  (the simulator's made-up credential)
DEFAULT_ACCOUNT_ID = "sim-account-id"
DEFAULT_OAUTH_CLIENT_ID = "sim-oauth-client-id"
DEFAULT_OAUTH_CLIENT_SECRET = "sim-oauth-client-secret"  # noqa: S105
DEFAULT_HOST_EMAIL = "host@sim.example"


class ZoomSimulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_seconds: float = 0.0,
        token_lifetime_seconds: float = 3600,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        account_id: str = DEFAULT_ACCOUNT_ID,
        oauth_client_id: str = DEFAULT_OAUTH_CLIENT_ID,
        oauth_client_secret: str = DEFAULT_OAUTH_CLIENT_SECRET,
        default_host_email: str = DEFAULT_HOST_EMAIL,
        daily_limit: int | None = None,
        rate_limits: Mapping[str, float] | None = None,
        chaos: ChaosProfile | Mapping[str, Any] | None = None,
        request_log_limit: int = REQUEST_LOG_LIMIT,
    ) -> None:
        """``rate_limits``: per-second limits per category, e.g. ``PRO_PLAN``
        (``{"Medium": 20, "Light": 30}``); None: unlimited. ``chaos``: random faults
        (see :mod:`zoom.simulator.chaos`). ``request_log_limit``: how many requests
        (and grants) the logs keep, newest last; a benchmark that reads a whole run
        from the log raises it."""
        self.host = host
        self.latency_seconds = latency_seconds
        self.state = SimState(
            credentials=Credentials(
                client_id, client_secret, account_id, oauth_client_id, oauth_client_secret
            ),
            token_lifetime_seconds=token_lifetime_seconds,
            default_host_email=default_host_email,
            daily_limit=daily_limit,
            log_limit=request_log_limit,
        )
        self.rate_limits = dict(rate_limits or {})
        self.set_chaos(chaos)
        # Set on stop, so requests held by a "timeout" fault end with the server.
        self.stopping = threading.Event()
        self._requested_port = port
        self._server: SimServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self.stopping.clear()
        server = SimServer((self.host, self._requested_port), handler_for(self))
        self._server = server
        # A short poll interval keeps stop() quick (the default makes it take ~0.5 s).
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="zoom-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Addresses --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        # A wildcard bind is reachable on loopback; the URL must name a concrete address.
        host = "127.0.0.1" if self.host in {"", "0.0.0.0"} else self.host  # noqa: S104  # nosec B104 - a comparison, not a bind
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/v2"

    @property
    def oauth_url(self) -> str:
        return self.base_url + "/oauth"

    # Inspection and control, for tests and the demo -------------------------------------

    @property
    def client_id(self) -> str:
        return self.state.credentials.client_id

    @property
    def client_secret(self) -> str:
        return self.state.credentials.client_secret

    @property
    def account_id(self) -> str:
        return self.state.credentials.account_id

    @property
    def oauth_client_id(self) -> str:
        """The user-managed OAuth app (doctors connecting their own Zoom)."""
        return self.state.credentials.oauth_client_id

    @property
    def oauth_client_secret(self) -> str:
        return self.state.credentials.oauth_client_secret

    @property
    def token_lifetime_seconds(self) -> float:
        return self.state.token_lifetime_seconds

    @token_lifetime_seconds.setter
    def token_lifetime_seconds(self, value: float) -> None:
        if value <= 0:
            raise ValueError("token lifetime must be positive")
        self.state.token_lifetime_seconds = value

    @property
    def rate_limits(self) -> dict[str, float]:
        """Per-second limits per rate-limit category (empty: unlimited)."""
        return dict(self.state.rate_windows.per_second)

    @rate_limits.setter
    def rate_limits(self, value: Mapping[str, float]) -> None:
        if any(limit <= 0 for limit in value.values()):
            raise ValueError("rate limits must be positive")
        self.state.rate_windows.per_second = {str(k): float(v) for k, v in value.items()}

    def set_chaos(self, chaos: ChaosProfile | Mapping[str, Any] | None) -> None:
        """Random faults from now on (a profile or its JSON form); None switches them off."""
        if chaos is not None and not isinstance(chaos, ChaosProfile):
            chaos = parse_chaos(dict(chaos))
        self.state.chaos = chaos if chaos is not None and chaos.active else None

    # Several accounts ---------------------------------------------------------------------

    def add_account(
        self, account_id: str, client_id: str | None = None, client_secret: str | None = None, *,
        rate_limits: Mapping[str, float] | None = None, daily_limit: int | None = None,
    ) -> AccountApp:
        """Another Zoom account with its own server-to-server app (made-up credentials
        unless given): its tokens act in that account only, and its per-second limits
        and per-host daily quotas are counted apart from every other account's
        (``rate_limits`` / ``daily_limit``: its plan's, when not the simulator's)."""
        return self.state.apps.add_account(account_id, client_id, client_secret, rate_limits=rate_limits,
                                           daily_limit=daily_limit)

    def add_oauth_app(self, client_id: str | None = None, client_secret: str | None = None) -> OAuthApp:
        """Another user-managed OAuth app (a clinic's own), through which users connect."""
        return self.state.apps.add_oauth_app(client_id, client_secret)

    def revoke_app(self, client_id: str) -> int:
        """The app is deactivated in the Marketplace: its token requests get 401
        ``invalid_client`` and the access tokens it handed out stop working (how many)."""
        return self.state.revoke_app(client_id)

    def account_stats(self) -> dict[str, dict[str, int]]:
        """Per account: grants, meetings created, 429s (per second and daily)."""
        return self.state.account_stats()

    def authorize_as(self, user: str, *, approve: bool = True) -> None:
        """Who clicks "Allow" on the next consent screens (or "Decline" with approve=False)."""
        self.state.oauth_book.approving_user = user.lower()
        self.state.oauth_book.approve = approve

    def revoke_user(self, user: str) -> None:
        """The user removed the app: every refresh and access token of theirs stops working."""
        self.state.oauth_book.revoke_user(user.lower())
        self.state.revoke_user_tokens(user.lower())

    def stats(self) -> dict[str, Any]:
        """Counters: grants by kind, invalid_grant, 429s by kind, faults, meetings created."""
        return stats_of(self.state)

    @property
    def daily_limit(self) -> int | None:
        """Create/update calls per host per UTC day (None: unlimited)."""
        return self.state.daily_limit

    @daily_limit.setter
    def daily_limit(self, value: int | None) -> None:
        self.state.daily_limit = value

    @property
    def grants(self) -> int:
        """Access tokens handed out by ``/oauth/token`` (and :meth:`issue_token`)."""
        return self.state.grants

    def grants_of(self, kind: str) -> int:
        """Grants of one kind: ``account``, ``authorization_code`` or ``refresh_token``."""
        return self.state.counters[f"grant.{kind}"]

    def grant_log(self, kind: str | None = None) -> list[dict[str, Any]]:
        """When each access token was handed out, oldest first: ``{at, kind, user,
        expires_at}`` (unix seconds; ``kind`` as in :meth:`grants_of`; ``user`` None
        for the account's token). Benchmarks count grants per token lifetime from it."""
        return [g for g in self.state.grant_history() if kind is None or g["kind"] == kind]

    def meetings(self, *, include_deleted: bool = True, account: str | None = None) -> list[dict[str, Any]]:
        """Every meeting ever created: ``{id, host, account, created, deleted,
        instant_conversion, meeting}``; ``account``: only those made in that account."""
        views = [v for v in self.state.meeting_views() if account is None or v["account"] == account]
        return views if include_deleted else [v for v in views if not v["deleted"]]

    def secrets_handed_out(self) -> set[str]:
        """Every access token, start link, ZAK, join link and passcode this simulator gave out."""
        return self.state.secrets_handed_out()

    def requests(
        self, *, method: str | None = None, path_prefix: str | None = None
    ) -> list[dict[str, Any]]:
        """The request log: ``{method, path, query, json, form, status}`` in arrival order."""
        return [
            entry
            for entry in self.state.request_log()
            if (method is None or entry["method"] == method.upper())
            and (path_prefix is None or entry["path"].startswith(path_prefix))
        ]

    def reset(self) -> None:
        self.state.reset()

    def issue_token(self, user: str | None = None, *, account: str | None = None) -> str:
        """Mint a valid access token without the OAuth round trip (acting as ``user``, or
        in ``account``: by default the first app's)."""
        return self.state.issue_token(user=user.lower() if user else None, account=None if user else account)

    def expire_tokens(self) -> None:
        """Every token handed out so far now gets 401 / code 124."""
        self.state.expire_tokens()

    def revoke_token(self, token: str) -> None:
        self.state.revoke_token(token)

    def lock_setting(self, name: str, value: Any) -> None:
        """Like an account-level lock: this setting wins over whatever a request asks."""
        self.state.lock_setting(name, value)

    def set_basic_user(self, email: str, basic: bool = True) -> None:
        """Make a user Basic (unlicensed): Zoom refuses their meetings registration."""
        self.state.set_basic_user(email, basic)

    def join_check(self, url: str) -> tuple[bool, str]:
        """Whether a registrant's join URL would admit its holder now, and why (not)."""
        return self.state.join_check(url)

    def inject_failure(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        count: int = 1,
        method: str | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with this response instead."""
        self.state.add_fault(Fault(status, body, dict(headers or {}), count, method, path_prefix))

    def inject_fault(
        self,
        action: str,
        *,
        count: int = 1,
        method: str | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """``reset``, ``timeout`` or ``drop`` (do the work, then reset) the next requests."""
        if action not in {"reset", "timeout", "drop"}:
            raise ValueError("action must be reset, timeout or drop")
        self.state.add_fault(
            Fault(count=count, method=method, path_prefix=path_prefix, action=action)
        )
