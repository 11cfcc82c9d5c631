"""One benchmark's deployment: its own Redis namespace and database, the Zoom simulator,
and real ``telemed`` processes (``python -m telemed worker`` / ``web``) configured through
the environment exactly as in production."""

from __future__ import annotations

import secrets
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import func
from sqlmodel import col, select

from telemed.benchmarks.bookings import PER_DOCTOR, base_time, bench_booking
from telemed.benchmarks.procs import Proc, wait_until
from telemed.benchmarks.services import Services, python_env
from telemed.events.publish import Publisher, PublishResult
from telemed.foundation.cipher import Cipher
from telemed.foundation.tenancy import DEFAULT_CLINIC
from telemed.store.db import Database
from telemed.store.models import Appointment, InboxEvent, Meeting, OutboxMessage
from telemed.workers.queue.broker import build_broker
from telemed.workers.queue.work_queue import WorkQueue
from telemed.zoom.simulator import ZoomSimulator

UNLIMITED = 100_000  # calls per second: no pacing
# The per-second pacing settings: left unset (production's defaults) on a paced stack.
PACING_SETTINGS = ("TELEMED_ZOOM_CREATE_PER_SECOND", "TELEMED_ZOOM_LIGHT_PER_SECOND")
SIM_ACCOUNT = {"account_id": "bench-account", "client_id": "bench-client", "client_secret": "bench-secret"}
# The clinic gate's limit on a one-clinic stack (every item but the tenancy ones): more
# than any item's processes x threads, so the gate runs (its scripts are measured) but
# never holds work back, as a deployment serving one clinic would set it.
ONE_CLINIC_IN_FLIGHT = 1000


def start_simulator(latency_seconds: float = 0.0, **options: Any) -> ZoomSimulator:
    """The simulator with the bench account; ``options`` go to :class:`ZoomSimulator`
    (item 3 passes ``rate_limits``, ``daily_limit`` and ``request_log_limit``)."""
    return ZoomSimulator(latency_seconds=latency_seconds, account_id=SIM_ACCOUNT["account_id"],
                         client_id=SIM_ACCOUNT["client_id"], client_secret=SIM_ACCOUNT["client_secret"],
                         **options).start()


def sample_bookings(prefix: str, count: int, per_doctor: int = PER_DOCTOR) -> list[dict[str, Any]]:
    """``count`` new bookings ``{prefix}0..``, ``per_doctor`` to a doctor (see
    :mod:`benchmarks.bookings`)."""
    base = base_time()
    return [bench_booking(prefix, n, base, per_doctor) for n in range(count)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    services: Services
    name: str
    sim: ZoomSimulator
    log_level: str = "INFO"
    # True: the workers pace Zoom calls with production's per-second settings (item 3
    # measures exactly that); False lifts the pacer (every other item).
    paced: bool = False
    procs: list[Proc] = field(default_factory=list)
    ingress_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    # More TELEMED_* settings for this stack's processes (after the ones below).
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = self.services.workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.namespace = self.services.namespace(self.name)
        self.database_url = self.services.fresh_database(self.name)
        self.database = Database(self.database_url, cipher=Cipher([self.services.secret_key]))
        self.redis = redis.Redis.from_url(self.services.redis_url, decode_responses=True)
        # Queued as telemed web queues: each event as its clinic's work, through the clinic
        # gate with the limit the stack's workers use.
        self.broker = build_broker(redis.Redis.from_url(self.services.redis_url), self.namespace,
                                   clinic_in_flight=self.clinic_in_flight)
        self.queue = WorkQueue(self.broker)
        self.publisher = Publisher(database=self.database, enqueue=self.enqueue_event)

    @property
    def clinic_in_flight(self) -> int:
        return int(self.settings.get("TELEMED_CLINIC_IN_FLIGHT", ONE_CLINIC_IN_FLIGHT))

    # environment and processes -----------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        env = python_env(
            TELEMED_REDIS_URL=self.services.redis_url,
            TELEMED_REDIS_NAMESPACE=self.namespace,
            TELEMED_DATABASE_URL=self.database_url,
            TELEMED_SECRET_KEYS=self.services.secret_key,
            TELEMED_DATA_DIR=str(self.workdir / "data"),
            TELEMED_MAIL_DIR=str(self.workdir / "mail"),
            TELEMED_ZOOM_API_URL=self.sim.api_url,
            TELEMED_ZOOM_OAUTH_URL=self.sim.oauth_url,
            TELEMED_ZOOM_ACCOUNT_ID=SIM_ACCOUNT["account_id"],
            TELEMED_ZOOM_CLIENT_ID=SIM_ACCOUNT["client_id"],
            TELEMED_ZOOM_CLIENT_SECRET=SIM_ACCOUNT["client_secret"],
            TELEMED_INGRESS_SECRET=self.ingress_secret,
            TELEMED_LOG_FORMAT="json",
            TELEMED_LOG_LEVEL=self.log_level,
        )
        if not self.paced:
            # Zoom's per-second limits (item 3 measures the pacing against them) would cap
            # every other run at 18 creates/s and measure the limiter, not the pipeline.
            env.update({name: str(UNLIMITED) for name in PACING_SETTINGS})
        env["TELEMED_CLINIC_IN_FLIGHT"] = str(self.clinic_in_flight)
        env.update(self.settings)
        return env

    def start_workers(self, processes: int, threads: int, *, label: str = "worker",
                      command: list[str] | None = None, wait: bool = True) -> Proc:
        """``telemed worker`` (or another Dramatiq command line), by default waiting until
        each of its processes has announced itself in the broker's heartbeat set."""
        proc, before = self.launch_workers(processes, threads, label=label, command=command)
        if wait:
            self.wait_workers(proc, processes, before)
        return proc

    def launch_workers(self, processes: int, threads: int, *, label: str = "worker",
                       command: list[str] | None = None) -> tuple[Proc, set[str]]:
        before = self.heartbeat_ids()
        args = command or [sys.executable, "-m", "telemed", "worker", "--processes", str(processes),
                           "--threads", str(threads)]
        proc = Proc.start(label, args, env=self.env, cwd=self.workdir, log_path=self.workdir / f"{label}.log")
        self.procs.append(proc)
        return proc, before

    def wait_workers(self, proc: Proc, processes: int, before: set[str]) -> None:
        wait_until(lambda: len(self.heartbeat_ids() - before) >= processes, timeout=90,
                   what=f"{proc.name}: {processes} worker processes to start", watch=[proc], interval=0.1)

    def launch_web(self, label: str = "web") -> tuple[Proc, str]:
        """``telemed web`` on a free loopback port; see :func:`wait_http` for readiness."""
        port = free_port()
        proc = Proc.start(label, [sys.executable, "-m", "telemed", "web", "--host", "127.0.0.1", "--port", str(port)],
                          env=self.env, cwd=self.workdir, log_path=self.workdir / f"{label}.log")
        self.procs.append(proc)
        return proc, f"http://127.0.0.1:{port}"

    def heartbeat_ids(self) -> set[str]:
        return {str(m) for m in self.redis.zrange(f"{self.namespace}:__heartbeats__", 0, -1)}

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.broker.close()
        self.database.dispose()
        self.redis.close()

    # publishing ---------------------------------------------------------------------------

    def enqueue_event(self, event_id: str) -> None:
        self.queue.process_event(event_id)

    def publish(self, event: dict[str, Any], clinic_id: str = DEFAULT_CLINIC) -> PublishResult:
        """Accept one event into ``clinic_id``'s inbox and queue it, as telemed web does."""
        return self.publisher.publish(event, clinic_id)

    def preload(self, events: Iterable[dict[str, Any]]) -> list[str]:
        """Commit events to the inbox without queueing them; :meth:`release` queues them."""
        held: list[str] = []
        publisher = Publisher(database=self.database, enqueue=held.append)
        for event in events:
            publisher.publish(event)
        return held

    def release(self, event_ids: list[str]) -> float:
        """Queue held events as one burst; returns when the burst started (monotonic)."""
        started = time.monotonic()
        for event_id in event_ids:
            self.enqueue_event(event_id)
        return started

    # observing ----------------------------------------------------------------------------

    def bookings_done(self, prefix: str) -> int:
        """Appointments under ``prefix`` with a meeting and both invitations sent."""
        with self.database.session() as s:
            sent = s.exec(select(func.count()).select_from(OutboxMessage).where(
                col(OutboxMessage.appointment_id).startswith(prefix), OutboxMessage.kind == "invite",
                OutboxMessage.channel == "mail", OutboxMessage.status == "sent")).one()
        return int(sent) // 2

    def progress(self, prefix: str) -> dict[str, int]:
        with self.database.session() as s:
            def count(model: Any, *where: Any) -> int:
                return int(s.exec(select(func.count()).select_from(model).where(*where)).one())

            return {
                "events": count(InboxEvent, col(InboxEvent.appointment_id).startswith(prefix)),
                "events_pending": count(InboxEvent, col(InboxEvent.appointment_id).startswith(prefix),
                                        InboxEvent.status == "pending"),
                "appointments": count(Appointment, col(Appointment.id).startswith(prefix)),
                "meetings": count(Meeting, col(Meeting.appointment_id).startswith(prefix)),
                "notices_sent": count(OutboxMessage, col(OutboxMessage.appointment_id).startswith(prefix),
                                      OutboxMessage.status == "sent"),
            }

    def server_counters(self) -> dict[str, int]:
        """PostgreSQL's counters for this database (transactions, rows written) and Redis's
        command count (server-wide), when those are real; empty for SQLite and embedded Redis."""
        counters: dict[str, int] = {}
        if self.database.backend == "postgresql":
            with self.database.engine.connect() as conn:
                row = conn.exec_driver_sql(
                    "select xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted "
                    "from pg_stat_database where datname = current_database()").one()
            counters["database transactions"], counters["database rows written"] = int(row[0]), int(row[1])
        if self.services.real_redis:
            info = self.redis.info("commandstats")
            counters["Redis commands (server-wide)"] = sum(int(v["calls"]) for v in info.values())
        return counters

    def wait_bookings(self, prefix: str, count: int, *, timeout: float, watch: Iterable[Proc] = ()) -> float:
        """Wait until ``count`` bookings under ``prefix`` are done; monotonic finish time."""
        try:
            return wait_until(lambda: self.bookings_done(prefix) >= count, timeout=timeout, interval=0.1,
                              what=f"{count} bookings ({prefix}*) to be done", watch=list(watch))
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; progress: {self.progress(prefix)}") from None


def wait_http(url: str, proc: Proc, timeout: float = 60) -> None:
    import httpx

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout=timeout, what=f"{proc.name} to answer at {url}", watch=[proc], interval=0.1)
