"""Crash and fault run: exactly-once effects while workers die, Zoom misbehaves and Redis
forgets everything.

A booking system posts bookings, reschedules and cancels (some twice, some out of order)
through the signed HTTP ingress of a real ``telemed web``. Three real ``telemed worker``
process groups run the pipeline; every few seconds one is SIGKILLed and a new one started.
The Zoom simulator fails 10 % of calls with a 5xx, 5 % with a 429, holds some until they
time out, resets some connections and drops the answer to 5 % of creates after making
the meeting. Halfway through the posting, Redis gets a FLUSHALL. A ``telemed scheduler``
runs the reconciler throughout. Then the run must settle, and :mod:`tests.chaos.checks`
judges it; the canary scan of :mod:`tests.leaks.scan` then searches every log, Redis key,
database byte and mail of the run for secrets out of place.

Size: ``TELEMED_CHAOS_FULL=1`` (``make chaos``) runs 500 bookings; otherwise a reduced
run of 60 that fits the normal suite. ``TELEMED_CHAOS_BOOKINGS`` overrides either.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from cryptography.fernet import Fernet

from telemed.foundation.cipher import Cipher
from telemed.samples import DOCTORS
from telemed.store.db import Database
from telemed.zoom.simulator import ZoomSimulator
from tests.conftest import REAL_DATABASE_URL, REAL_REDIS_URL
from tests.support.chaos import checks
from tests.support.chaos.cluster import REPO, Cluster, Killer
from tests.support.chaos.plan import ChaosPlan, build_plan
from tests.support.chaos.poster import post_all
from tests.support.chaos.report import render
from tests.support.databases import fresh_database
from tests.support.leaks import scan
from tests.support.private_redis import private_redis
from tests.support.smtp import smtp_server
from tests.support.webserver import free_port

FULL = os.environ.get("TELEMED_CHAOS_FULL") == "1"
BOOKINGS = int(os.environ.get("TELEMED_CHAOS_BOOKINGS") or (500 if FULL else 60))
pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(2400 if BOOKINGS > 100 else 420)]
INGRESS_SECRET = "chaos-ingress-secret-7d41c9"
CLIENT_SECRET = "chaos-zoom-client-secret-55ab"
FAULTS = {
    "error_rate": 0.10,  # 500/502/503/504
    "rate_limit_rate": 0.05,  # 429
    "timeout_rate": 0.02,  # held past the client's timeout
    "timeout_seconds": 3.0,
    "reset_rate": 0.01,  # connection reset before anything happened
    "drop_after_create_rate": 0.05,  # the meeting is made, the answer is lost
    "latency": {"kind": "exponential", "mean": 0.02, "max": 0.5},
}
DOCTOR_EMAILS = {doctor_id: f"{doctor_id.lower()}@clinic.example" for doctor_id, _ in DOCTORS}


@dataclass(frozen=True)
class Size:
    bookings: int
    post_per_second: float
    kill_every: tuple[float, float]
    kill_after_posting_s: float
    settle_timeout_s: float


SIZE = Size(
    bookings=BOOKINGS,
    post_per_second=12.0 if FULL else 5.0,
    kill_every=(3.0, 6.0),
    kill_after_posting_s=30.0 if FULL else 12.0,
    settle_timeout_s=1500.0 if FULL else 300.0,
)


def _backends() -> list[str]:
    """Both when real services are configured (as in CI), else embedded; or
    ``TELEMED_CHAOS_BACKENDS=real`` (or ``embedded``) for one."""
    real = bool(REAL_REDIS_URL and REAL_DATABASE_URL)
    chosen = os.environ.get("TELEMED_CHAOS_BACKENDS")
    if chosen:
        return [b.strip() for b in chosen.split(",") if b.strip() and (real or b.strip() == "embedded")]
    return ["real", "embedded"] if real else ["embedded"]


@pytest.fixture(params=_backends())
def chaos_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A Redis of the run's own (it gets a FLUSHALL) and a fresh database."""
    real = request.param == "real"
    with private_redis(real=real) as redis_url, \
            fresh_database("postgresql" if real else "sqlite", tmp_path, REAL_DATABASE_URL) as database_url:
        yield redis_url, database_url


def _env(redis_url: str, database_url: str, secret_key: str, sim: ZoomSimulator, smtp_url: str,
         workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
    env.update({
        "TELEMED_REDIS_URL": redis_url,
        "TELEMED_REDIS_NAMESPACE": "chaos",
        "TELEMED_DATABASE_URL": database_url,
        "TELEMED_SECRET_KEYS": secret_key,
        "TELEMED_DATA_DIR": str(workdir / "data"),
        "TELEMED_MAIL_DIR": str(workdir / "mail"),
        "TELEMED_ZOOM_API_URL": sim.api_url,
        "TELEMED_ZOOM_OAUTH_URL": sim.oauth_url,
        "TELEMED_ZOOM_ACCOUNT_ID": "chaos-account",
        "TELEMED_ZOOM_CLIENT_ID": "chaos-client",
        "TELEMED_ZOOM_CLIENT_SECRET": CLIENT_SECRET,
        "TELEMED_ZOOM_TIMEOUT_SECONDS": "2",
        "TELEMED_ZOOM_DAILY_CALLS_PER_HOST": "100000",  # the daily cap has tests of its own
        "TELEMED_SMTP_URL": smtp_url,
        "TELEMED_INGRESS_SECRET": INGRESS_SECRET,
        "TELEMED_SCHEDULER_INTERVAL_SECONDS": "2",
        "TELEMED_RECONCILE_GRACE_SECONDS": "8",
        "TELEMED_NOTIFICATION_RETRY_BASE_SECONDS": "1",
        "TELEMED_LOG_FORMAT": "json",
        "TELEMED_LOG_LEVEL": "DEBUG",  # the leak scan reads the most the code ever logs
        "PYTHONPATH": str(REPO),
    })
    return env


def test_crash_and_fault_run(chaos_backend: tuple[str, str], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    redis_url, database_url = chaos_backend
    backend = "real Redis + PostgreSQL" if database_url.startswith("postgresql") else "embedded Redis + SQLite"
    plan = build_plan(SIZE.bookings)
    secret_key = Fernet.generate_key().decode()
    database = Database(database_url, cipher=Cipher([secret_key]))
    client = redis.Redis.from_url(redis_url)
    sim = ZoomSimulator(client_id="chaos-client", client_secret=CLIENT_SECRET, account_id="chaos-account",
                        chaos=dict(FAULTS, seed=SIZE.bookings))
    with sim, smtp_server() as smtp:
        cluster = Cluster(_env(redis_url, database_url, secret_key, sim, smtp.url(), tmp_path), tmp_path,
                          web_port=free_port())
        killer = Killer(cluster, every=SIZE.kill_every)
        flushed_at: list[float] = []
        began = time.monotonic()
        try:
            cluster.start()
            killer.start()
            half = len(plan.deliveries) // 2
            flush_lock = threading.Lock()

            def progress(done: int) -> None:
                with flush_lock:
                    if done >= half and not flushed_at:
                        client.flushall()  # everything queued, delayed, held or locked: gone
                        flushed_at.append(time.monotonic() - began)

            posted = post_all(cluster.web_url, INGRESS_SECRET, plan.deliveries, threads=4,
                              per_second=SIZE.post_per_second, on_progress=progress)
            posting_s = time.monotonic() - began
            deadline = time.monotonic() + SIZE.kill_after_posting_s
            while time.monotonic() < deadline:
                cluster.check_alive()
                time.sleep(0.5)
            killer.stop()
            _wait_settled(database, plan, sim, cluster, SIZE.settle_timeout_s)
            settled_s = time.monotonic() - began
        finally:
            killer.stop()
            cluster.stop()
        mails = smtp.messages
        verdict = checks.judge(plan, database, sim, mails, accepted=posted.accepted, kills=killer.kills,
                               doctor_emails=DOCTOR_EMAILS)
        _numbers(verdict, plan, posted, killer, flushed_at, posting_s, settled_s, sim)
        _leak_check(verdict, plan, sim, database, database_url, client, cluster, mails, posted.responses)
        _ingress_check(verdict, posted)
    client.close()
    database.dispose()

    summary = render(verdict, f"Crash and fault run, {SIZE.bookings} bookings, {backend}")
    (tmp_path / "summary.txt").write_text(summary)
    with capsys.disabled():
        print("\n" + summary)
    assert verdict.ok, f"{verdict.failures()}\n\n{summary}\nlogs: {tmp_path / 'logs'}"


def _wait_settled(database: Database, plan: ChaosPlan, sim: ZoomSimulator, cluster: Cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not checks.settled(database, plan, sim):
        cluster.check_alive()
        if time.monotonic() > deadline:
            return  # judge what there is: the verdict names what never settled
        time.sleep(1.0)


def _numbers(verdict: checks.Verdict, plan: ChaosPlan, posted, killer: Killer, flushed_at: list[float],  # type: ignore[no-untyped-def]
             posting_s: float, settled_s: float, sim: ZoomSimulator) -> None:
    counters = sim.stats()["counters"]
    faults = {k.removeprefix("fault."): v for k, v in counters.items() if k.startswith("fault.")}
    mails = verdict.numbers
    verdict.numbers = {
        "bookings": len(plan.histories),
        "reschedules": plan.count("rescheduled"),
        "cancels": plan.count("cancelled"),
        "events posted (with repeats)": len(plan.deliveries),
        "repeated deliveries": plan.repeated,
        "appointments with versions out of order": plan.swapped,
        "ingress answers": dict(sorted(posted.statuses.items())),
        "ingress retries (503 or connection)": posted.retries,
        "workers SIGKILLed and restarted": killer.kills,
        "workers that died on their own": len(killer.unexpected_exits),
        "Redis FLUSHALL at (s)": round(flushed_at[0], 1) if flushed_at else "never",
        "Zoom faults injected": faults,
        "Zoom meetings created": counters.get("meetings.created", 0),
        "Zoom requests": sim.stats()["requests"],
        "mails received": mails.get("mails", 0),
        "duplicate mails": mails.get("duplicate_mails", 0),
        "mails never recorded as sent": mails.get("unrecorded_mails", 0),
        "admin alerts": mails.get("admin_alerts", 0),
        "posting took (s)": round(posting_s, 1),
        "settled after (s)": round(settled_s, 1),
    }
    if killer.unexpected_exits:
        verdict.add("no worker died on its own", "0", str(len(killer.unexpected_exits)), killer.unexpected_exits)
    if not flushed_at:
        verdict.add("Redis was flushed", "once, halfway", "never", ["the FLUSHALL never happened"])


def _ingress_check(verdict: checks.Verdict, posted) -> None:  # type: ignore[no-untyped-def]
    verdict.add("ingress answered every post", "202 accepted or duplicate",
                ", ".join(f"{n} × {s}" for s, n in sorted(posted.statuses.items())), posted.failures)


def _leak_check(verdict: checks.Verdict, plan: ChaosPlan, sim: ZoomSimulator, database: Database, database_url: str,
                client: redis.Redis, cluster: Cluster, mails, responses: list[str]) -> None:  # type: ignore[no-untyped-def]
    canaries = scan.Canaries()
    scan.zoom_canaries(canaries, sim, checks.owner_of_meetings(sim, plan))
    for appointment_id, history in plan.histories.items():
        canaries.add(scan.PATIENT_EMAIL, history.patient_email, appointment_id)
        canaries.add(scan.PATIENT_NAME, history.events[0]["appointment"]["patient"]["name"].split()[-1], appointment_id)
    for secret in (INGRESS_SECRET, CLIENT_SECRET):
        canaries.add(scan.SECRET, secret)
    places = [scan.Place(f"{name} log", text.encode()) for name, text in cluster.logs().items()]
    places += list(scan.redis_places(client))
    places += list(scan.database_places(database.engine, scan.sqlite_path_of(database_url)))
    places += list(scan.mail_places(mails, raw_start_links=True))
    places.append(scan.Place("ingress answers", "\n".join(responses).encode()))
    hits = scan.scan(places, canaries)
    log_bytes = sum(len(p.data) for p in places if p.name.endswith(" log"))
    verdict.add("no secret out of place", "0 canaries in logs, Redis, database, others' mail",
                f"{len(canaries)} canaries over {len(places)} places ({log_bytes // 1024} KiB of logs)", hits)
    if canaries.count(scan.ZAK) == 0 or log_bytes < 10_000:
        verdict.add("the leak scan had something to find", "start links minted, logs written",
                    f"{canaries.count(scan.ZAK)} zak, {log_bytes} bytes", ["the scan proves nothing"])
