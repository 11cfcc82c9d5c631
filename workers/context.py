"""What the pipeline needs in a process: its parts, built on first use (after fork).

``telemed.bootstrap`` makes one per process from the settings, the secret keys, a
maker of Redis clients, the work queue and the clinics' directory; nothing here reads the
environment or global state.

Zoom is per clinic: each clinic's server-to-server app gets its own client (its own
token, cached per account; its own pacer scope, ``account:<id>``), built once per process
and rebuilt when the clinic's credentials change (``account_client``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import redis

from telemed.foundation.cipher import Cipher
from telemed.foundation.settings import Settings
from telemed.foundation.tenancy import DEFAULT_CLINIC, ClinicDirectory, ClinicProfile
from telemed.store.db import Database
from telemed.workers.notifier.mail import MailChannel, build_mail_channel
from telemed.workers.queue.work_queue import WorkQueue
from telemed.zoom.apps import account_app, app_fingerprint
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
    # One client per connected doctor (their own token and rate-limit scope), per the
    # fingerprint of the OAuth app it refreshes through.
    _doctor_clients: dict[tuple[str, str], ZoomClient] = field(default_factory=dict, repr=False)
    # One account client per clinic, with the fingerprint of the credentials it was built for.
    _account_clients: dict[str, tuple[str, ZoomClient]] = field(default_factory=dict, repr=False)

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

    def profile(self, clinic_id: str) -> ClinicProfile:
        """The clinic's profile; raises ``UnknownClinic`` (a deleted clinic's work stops)."""
        return self.clinics.profile(clinic_id)

    def account_tokens(self, profile: ClinicProfile) -> TokenProvider:
        """The clinic's server-to-server tokens, shared by every process through Redis
        (the cache is keyed by account and client id, so each account has its own)."""
        s = self.settings
        app = account_app(profile)
        if app is None:
            return StaticTokenProvider("")  # no account app: calls fail with ZoomAuthError
        assert app.account_id is not None
        return AccountTokenProvider(
            oauth_url=s.zoom_oauth_url,
            account_id=app.account_id,
            client_id=app.client_id,
            client_secret=app.client_secret,
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

    def account_client(self, clinic_id: str) -> ZoomClient:
        """The clinic's account (server-to-server) client; hosts are named by their Zoom user.

        Built once per process and clinic, and again when the clinic's credentials change
        (a fixed or rotated app takes effect without a restart). Zoom counts the
        per-second limits per account, so the pacer's scope is the clinic's account. A
        clinic without an app gets a client whose calls fail with ``ZoomAuthError``.
        """
        profile = self.profile(clinic_id)
        fingerprint = app_fingerprint(account_app(profile))
        with self._lock:
            cached = self._account_clients.get(clinic_id)
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
        s = self.settings
        client = ZoomClient(s.zoom_api_url, self.account_tokens(profile), timeout=s.zoom_timeout_seconds,
                            limiter=self.rate_limiter.for_scope(profile.zoom_account_scope))
        with self._lock:
            cached = self._account_clients.get(clinic_id)
            if cached is not None and cached[0] == fingerprint:
                client.close()  # another thread built it meanwhile
                return cached[1]
            self._account_clients[clinic_id] = (fingerprint, client)
        return client

    @property
    def zoom(self) -> ZoomClient:
        """The default clinic's account client (a single-clinic deployment's only one)."""
        return self.account_client(DEFAULT_CLINIC)

    def doctor_client(self, doctor_id: str, app: str, build: Callable[[], ZoomClient]) -> ZoomClient:
        """The doctor's client, built once per process by ``build`` (workers.hosting.hosts),
        and again when ``app`` (the fingerprint of the clinic's OAuth app) changes."""
        with self._lock:
            client = self._doctor_clients.get((doctor_id, app))
            if client is None:
                client = self._doctor_clients[(doctor_id, app)] = build()
            return client

    @cached_property
    def mail(self) -> MailChannel:
        return build_mail_channel(self.settings)
