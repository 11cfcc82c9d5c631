"""What a worker process needs, built once per process on first use (after fork)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

import redis

from store.crypto import Cipher, configure_cipher
from store.db import Database
from telemed.settings import Settings, get_settings
from workers.broker import redis_url_for
from zoom.client import ZoomClient
from zoom.tokens import AccountTokenProvider, StaticTokenProvider, TokenProvider


@dataclass
class WorkerContext:
    settings: Settings
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def cipher(self) -> Cipher:
        return configure_cipher(self.settings.fernet_keys)

    @cached_property
    def database(self) -> Database:
        self.cipher  # noqa: B018  (the encrypted column type needs the cipher first)
        return Database(self.settings.resolved_database_url)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(redis_url_for(self.settings), health_check_interval=30)

    @cached_property
    def account_tokens(self) -> TokenProvider:
        s = self.settings
        if not s.zoom_s2s_configured:
            return StaticTokenProvider("")  # no account app: calls fail with ZoomAuthError
        assert s.zoom_account_id and s.zoom_client_id and s.zoom_client_secret
        return AccountTokenProvider(
            oauth_url=s.zoom_oauth_url,
            account_id=s.zoom_account_id,
            client_id=s.zoom_client_id,
            client_secret=s.zoom_client_secret.get_secret_value(),
            redis_client=self.redis,
            cipher=self.cipher,
            namespace=s.redis_namespace,
            timeout=s.zoom_timeout_seconds,
        )

    @cached_property
    def zoom(self) -> ZoomClient:
        return ZoomClient(self.settings.zoom_api_url, self.account_tokens, timeout=self.settings.zoom_timeout_seconds)

    @cached_property
    def mail(self):  # type: ignore[no-untyped-def]
        from workers.notifier.mail import build_mail_channel

        return build_mail_channel(self.settings)


_context: WorkerContext | None = None
_context_lock = threading.Lock()


def get_context() -> WorkerContext:
    global _context
    if _context is None:
        with _context_lock:
            if _context is None:
                _context = WorkerContext(get_settings())
    return _context


def set_context(context: WorkerContext | None) -> None:
    """For tests that run actors in-process against their own settings."""
    global _context
    _context = context
