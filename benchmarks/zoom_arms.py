"""The Zoom limits benchmark's arms: the naive baselines, and the worker processes that
run an arm (spawned, like separate worker hosts) for ``benchmarks.zoom_limits``."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis as redis_lib

from telemed.foundation.cipher import Cipher
from telemed.logging import configure_logging
from telemed.store import zoom_tokens
from telemed.store.db import Database
from telemed.store.zoom_tokens import DatabaseTokenStore
from telemed.workers.policy.retries import rate_limit_delay_ms
from telemed.zoom.client import ZoomClient
from telemed.zoom.errors import ZoomError, ZoomGrantRevoked, ZoomRateLimited
from telemed.zoom.oauth import request_token
from telemed.zoom.policy import build_meeting_request, generate_passcode, make_marker
from telemed.zoom.ratelimit import SAFETY, RateLimiter
from telemed.zoom.tokens import AccountTokenProvider, StaticTokenProvider
from telemed.zoom.user_tokens import UserTokenProvider

DOCTOR, EMAIL = "D-1", "d-1@clinic.example"


@dataclass
class Arm:
    mode: str
    processes: int
    threads: int
    seconds: float
    api_url: str
    oauth_url: str
    client: tuple[str, str]
    redis_url: str
    namespace: str
    account_id: str = ""
    database_url: str = ""
    key: str = ""
    meeting_id: int = 0
    token: str = ""
    limit: float = 0.0
    safety: float = 0.0  # the pacer's share of the limit (0: zoom.ratelimit.SAFETY)
    start_at: float = 0.0
    results: list[dict[str, Any]] = field(default_factory=list)


# Baselines -----------------------------------------------------------------------------


class NaiveUserProvider:
    """A doctor's token, refreshed on expiry with no coordination between processes."""

    def __init__(self, arm: Arm, database: Any, rereads: int) -> None:
        self._arm, self._database, self._rereads = arm, database, rereads
        self._force = False

    def _load(self) -> Any:
        with self._database.session() as session:
            return zoom_tokens.load_grant(session, DOCTOR)

    def access_token(self) -> str:
        grant = self._load()
        if not self._force and time.time() < grant.expires_at - 1:
            return str(grant.access_token)
        self._force = False
        try:
            new = request_token(self._arm.oauth_url, client_id=self._arm.client[0], client_secret=self._arm.client[1],
                                form={"grant_type": "refresh_token", "refresh_token": grant.refresh_token})
        except ZoomGrantRevoked:
            for _ in range(self._rereads):  # another process may be storing a new pair right now
                time.sleep(0.05)
                latest = self._load()
                if latest.refresh_token != grant.refresh_token:
                    return str(latest.access_token)
            raise
        with self._database.session() as session:  # written back as is: no version check
            row = session.get(zoom_tokens.DoctorZoomToken, DOCTOR)
            row.access_token, row.refresh_token = new.access_token, str(new.refresh_token)
            row.expires_at = datetime.now(UTC) + timedelta(seconds=new.expires_in)
            session.add(row)
        return new.access_token

    def invalidate(self, token: str) -> None:
        self._force = True


class PerProcessAccountProvider:
    """The account token cached in each process, fetched again when that copy expires."""

    def __init__(self, arm: Arm) -> None:
        self._arm = arm
        self._lock = threading.Lock()
        self._token, self._expires = "", 0.0

    def access_token(self) -> str:
        with self._lock:
            if time.time() >= self._expires - 1:
                grant = request_token(self._arm.oauth_url, client_id=self._arm.client[0],
                                      client_secret=self._arm.client[1],
                                      form={"grant_type": "account_credentials", "account_id": self._arm.account_id})
                self._token, self._expires = grant.access_token, time.time() + grant.expires_in
            return self._token

    def invalidate(self, token: str) -> None:
        with self._lock:
            self._expires = 0.0


# Worker processes ----------------------------------------------------------------------


def quiet() -> None:
    configure_logging(format="console", level="ERROR", capture_uncaught=False)


def _provider(arm: Arm) -> Any:

    client_redis = redis_lib.Redis.from_url(arm.redis_url)
    if arm.mode == "account:telemed":
        return AccountTokenProvider(arm.oauth_url, arm.account_id, arm.client[0], arm.client[1], client_redis,
                                    Cipher([arm.key]), namespace=arm.namespace, margin_seconds=1)
    if arm.mode == "account:per-process":
        return PerProcessAccountProvider(arm)
    database = Database(arm.database_url, cipher=Cipher([arm.key]))
    if arm.mode == "doctor:telemed":
        return UserTokenProvider(DOCTOR, DatabaseTokenStore(database), oauth_url=arm.oauth_url,
                                 client_id=arm.client[0], client_secret=arm.client[1], redis_client=client_redis,
                                 cipher=Cipher([arm.key]), namespace=arm.namespace, margin_seconds=1)
    return NaiveUserProvider(arm, database, rereads=0 if arm.mode == "doctor:naive-strict" else 5)


def token_process(arm: Arm, out: Any, ready: Any, go: Any, start: Any) -> None:
    quiet()
    provider = _provider(arm)
    _wait_for_start(arm, ready, go, start)
    tally = {"calls": 0, "failed": 0, "dead": False}
    lock = threading.Lock()

    def run() -> None:
        zoom = ZoomClient(arm.api_url, provider, timeout=5)
        while time.time() < arm.start_at:
            time.sleep(0.005)
        while time.time() < arm.start_at + arm.seconds:
            try:
                zoom.get_meeting(arm.meeting_id)
                failed = 0
            except ZoomGrantRevoked:
                with lock:
                    tally["calls"], tally["failed"], tally["dead"] = tally["calls"] + 1, tally["failed"] + 1, True
                return  # the doctor must reconnect: nothing works for them any more
            except ZoomError:
                failed = 1
            with lock:
                tally["calls"] += 1
                tally["failed"] += failed
            time.sleep(0.02)

    threads = [threading.Thread(target=run) for _ in range(arm.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(tally)


def rate_process(arm: Arm, out: Any, ready: Any, go: Any, start: Any) -> None:

    quiet()
    limiter = None
    if arm.mode == "telemed":
        pacer = RateLimiter(redis_lib.Redis.from_url(arm.redis_url), {"Medium": arm.limit}, namespace=arm.namespace,
                            safety=arm.safety or SAFETY)
        limiter = pacer.for_scope("account:bench")
    _wait_for_start(arm, ready, go, start)
    end = arm.start_at + arm.seconds

    def run() -> None:
        zoom = ZoomClient(arm.api_url, StaticTokenProvider(arm.token), timeout=5, limiter=limiter)
        start = datetime.now(UTC) + timedelta(days=2)
        while time.time() < arm.start_at:
            time.sleep(0.005)
        while time.time() < end:
            body = build_meeting_request(topic="bench", start_time=start, duration_minutes=30, timezone="UTC",
                                         passcode=generate_passcode(), marker=make_marker(uuid.uuid4().hex))
            try:
                zoom.create_meeting("me", body)
            except ZoomRateLimited as exc:
                # What our retry policy does with a 429 (a short jittered pause), in place.
                time.sleep(min(rate_limit_delay_ms(exc) / 1000.0, max(0.0, end - time.time())))
            except ZoomError:
                pass

    threads = [threading.Thread(target=run) for _ in range(arm.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put({})


def _wait_for_start(arm: Arm, ready: Any, go: Any, start: Any) -> None:
    """Every process set up (imports, connections) before the clock starts for all at once."""
    ready.put(1)
    go.wait()
    arm.start_at = start.value


def run_processes(target: Any, arm: Arm) -> Arm:
    """Run the arm in N fresh processes (spawned, like separate worker hosts); returns the arm
    with its real start time and ``results`` (one dict per process)."""
    context = mp.get_context("spawn")
    out, ready, go, start = context.Queue(), context.Queue(), context.Event(), context.Value("d", 0.0)
    procs = [context.Process(target=target, args=(arm, out, ready, go, start)) for _ in range(arm.processes)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=300)
    start.value = time.time() + 0.5
    arm.start_at = start.value
    go.set()
    arm.results = [out.get(timeout=arm.seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(30)
    return arm
