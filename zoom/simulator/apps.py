"""The Zoom apps the simulator knows: server-to-server apps, each of one Zoom account, and
user-managed OAuth apps through which users connect their own accounts.

As in Zoom, a server-to-server app's token acts in the app's own account: it sees that
account's meetings only, and the account's per-second limits and its users' daily
quotas count that account's calls. A user-level token acts in the user's own account
(``user:<email>`` here), whichever OAuth app it came through.

An app can be revoked (deactivated in the Marketplace): its token requests are answered
``401 invalid_client`` and the access tokens it handed out stop working (``401``, code
124), as when a clinic's admin removes or rotates the app.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from telemed.zoom.simulator.records import Credentials


@dataclass(frozen=True)
class AccountApp:
    """A server-to-server app and the account it belongs to (``repr`` hides the secret)."""

    client_id: str
    client_secret: str = field(repr=False)
    account_id: str
    revoked: bool = False
    # Per-second limits of this account's plan (category -> calls); None: the simulator's.
    rate_limits: Mapping[str, float] | None = None
    # Create/update calls per host per UTC day in this account; None: the simulator's.
    daily_limit: int | None = None


@dataclass(frozen=True)
class OAuthApp:
    client_id: str
    client_secret: str = field(repr=False)
    revoked: bool = False


class AppBook:
    """Every app by client id; the ones from the simulator's constructor survive a reset."""

    def __init__(self, credentials: Credentials) -> None:
        self._lock = threading.Lock()
        self._initial = credentials
        self.reset()

    def reset(self) -> None:
        c = self._initial
        with self._lock:
            self._accounts: dict[str, AccountApp] = {c.client_id: AccountApp(c.client_id, c.client_secret, c.account_id)}
            self._oauth: dict[str, OAuthApp] = {c.oauth_client_id: OAuthApp(c.oauth_client_id, c.oauth_client_secret)}

    # Server-to-server ----------------------------------------------------------------------

    def add_account(
        self, account_id: str, client_id: str | None = None, client_secret: str | None = None, *,
        rate_limits: Mapping[str, float] | None = None, daily_limit: int | None = None,
    ) -> AccountApp:
        """A server-to-server app of ``account_id`` (made-up credentials unless given)."""
        if not account_id or "/" in account_id:
            raise ValueError("account_id: required, without '/'")
        if rate_limits is not None and any(v <= 0 for v in rate_limits.values()):
            raise ValueError("rate_limits: must be positive")
        if daily_limit is not None and daily_limit < 0:
            raise ValueError("daily_limit: must not be negative")
        app = AccountApp(
            client_id or f"sim-client-{secrets.token_hex(6)}", client_secret or secrets.token_urlsafe(24),
            account_id, rate_limits=dict(rate_limits) if rate_limits is not None else None,
            daily_limit=daily_limit,
        )
        with self._lock:
            if app.client_id in self._oauth:
                raise ValueError("client_id: already an OAuth app")
            self._accounts[app.client_id] = app
        return app

    def account_app(self, client_id: str, client_secret: str) -> AccountApp | None:
        """The live app these credentials authenticate, or None (invalid_client)."""
        with self._lock:
            app = self._accounts.get(client_id)
        if app is None or app.revoked or not secrets.compare_digest(app.client_secret, client_secret):
            return None
        return app

    def account_limits(self, account_id: str) -> AccountApp | None:
        """The (first) app of an account, for its plan's limits."""
        with self._lock:
            return next((a for a in self._accounts.values() if a.account_id == account_id), None)

    def accounts(self) -> list[AccountApp]:
        with self._lock:
            return list(self._accounts.values())

    # User-managed OAuth -------------------------------------------------------------------

    def add_oauth_app(self, client_id: str | None = None, client_secret: str | None = None) -> OAuthApp:
        app = OAuthApp(client_id or f"sim-oauth-{secrets.token_hex(6)}", client_secret or secrets.token_urlsafe(24))
        with self._lock:
            if app.client_id in self._accounts:
                raise ValueError("client_id: already a server-to-server app")
            self._oauth[app.client_id] = app
        return app

    def oauth_app(self, client_id: str | None, client_secret: str | None = None) -> OAuthApp | None:
        """The live OAuth app of ``client_id`` (its secret checked when given)."""
        with self._lock:
            app = self._oauth.get(client_id or "")
        if app is None or app.revoked:
            return None
        if client_secret is not None and not secrets.compare_digest(app.client_secret, client_secret):
            return None
        return app

    def is_known(self, client_id: str, client_secret: str) -> bool:
        """Any live app with these credentials (for an unsupported grant type's answer)."""
        return self.account_app(client_id, client_secret) is not None or self.oauth_app(
            client_id, client_secret) is not None

    # Revocation ---------------------------------------------------------------------------

    def revoke(self, client_id: str) -> bool:
        """Deactivate an app: its grants and tokens stop working. False: no such app."""
        with self._lock:
            if client_id in self._accounts:
                self._accounts[client_id] = replace(self._accounts[client_id], revoked=True)
                return True
            if client_id in self._oauth:
                self._oauth[client_id] = replace(self._oauth[client_id], revoked=True)
                return True
        return False
