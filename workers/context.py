"""What the pipeline needs in a process: its parts, built on first use (after fork).

``telemed.bootstrap`` makes one per process from the settings, the secret keys, a
maker of Redis clients and the work queue; nothing here reads the environment or global state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import redis

from telemed.foundation.cipher import Cipher
from telemed.foundation.settings import Settings
from telemed.foundation.tenancy import ClinicDirectory
from telemed.store.db import Database
from telemed.workers.notifier.mail import MailChannel, build_mail_channel
from telemed.workers.queue.work_queue import WorkQueue
from telemed.zoom.client import LIGHT, MEDIUM, ZoomClient
from telemed.zoom.ratelimit import DailyQuota, RateLimiter
from telemed.zoom.tokens import AccountTokenProvider, StaticTokenProvider, TokenProvider


@dataclass
class WorkerContext:
    settings: Settings
    keys: Sequence[str]  # Fernet keys, newest first (telemed.secret_keys)
    # Makes a client of the current Redis primary (telemed.bootstrap.redis_connect: a URL,
    # or Sentinels that follow a failover).
    redis_connect: Callable[[], redis.Redis]
    queue: WorkQueue
    # Every clinic's profile (its Zoom apps, sender, admins...): store.clinic_directory,
    # the default clinic's from the environment (telemed.settings.default_profile).
    clinics: ClinicDirectory
    # Worker threads in this process; the database pool keeps one connection each
    # (set by ``PoolSizing`` when the worker boots, before the database is first used).
    threads: int = 8
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # One client per connected doctor (their own token and rate-limit scope).
    _doctor_clients: dict[str, ZoomClient] = field(default_factory=dict, repr=False)

    @cached_property
    def cipher(self) -> Cipher:
        return Cipher(self.keys)

    @cached_property
    def database(self) -> Database:
        # No pre-ping: a dead connection's first statement raises OperationalError, a
        # transient failure the retry policy handles (store.db.create_db_engine).
        # A connection per worker thread stays pooled (plus the heartbeat's and a spare):
        # a smaller pool opens and closes a PostgreSQL connection for every busy message.
        return Database(self.settings.resolved_database_url, cipher=self.cipher, pre_ping=False,
                        pool_size=self.threads + 2)

    @cached_property
    def redis(self) -> redis.Redis:
        return self.redis_connect()

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
    def rate_limiter(self) -> RateLimiter:
        """Per-second pacing shared by every process (zoom.ratelimit)."""
        s = self.settings
        return RateLimiter(self.redis, {MEDIUM: s.zoom_create_per_second, LIGHT: s.zoom_light_per_second},
                           namespace=s.redis_namespace)

    @cached_property
    def daily_quota(self) -> DailyQuota:
        s = self.settings
        return DailyQuota(self.redis, s.zoom_daily_calls_per_host, namespace=s.redis_namespace)

    @cached_property
    def zoom(self) -> ZoomClient:
        """The account (server-to-server) client; hosts are named by their Zoom user."""
        s = self.settings
        return ZoomClient(s.zoom_api_url, self.account_tokens, timeout=s.zoom_timeout_seconds,
                          limiter=self.rate_limiter.for_scope(f"account:{s.zoom_account_id or '-'}"))

    def doctor_client(self, doctor_id: str, build: Callable[[], ZoomClient]) -> ZoomClient:
        """The doctor's client, built once per process by ``build`` (workers.hosting.hosts)."""
        with self._lock:
            client = self._doctor_clients.get(doctor_id)
            if client is None:
                client = self._doctor_clients[doctor_id] = build()
            return client

    @cached_property
    def mail(self) -> MailChannel:
        return build_mail_channel(self.settings)
