"""Fairness between clinics, end to end: clinic A's bulk import does not hold back clinic B.

Real worker processes (1 × 8 threads), the Zoom simulator over HTTP answering in 100 ms,
real SMTP. Clinic B books one appointment a second, first with A idle, then while A's
import of a few hundred bookings drains; each B booking's time from publish to its
patient's invitation arriving at the SMTP server is compared with B's own latency with A
idle, measured in the same run. With one shared FIFO, B's booking would wait behind all
of A's (11 to 16 s here, about 35 times B's idle latency); the clinic gate keeps at most
``IN_FLIGHT`` of A's messages in the shared queues.

Both clinics are registered with the deployment's one Zoom account here, so they share its
pacer: A's work is slowed by Zoom's latency (I/O, like a paced import), not by a per-clinic limit.
With per-clinic Zoom accounts, A's own pacer is the one that keeps its backlog long.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

from telemed.benchmarks.bookings import base_time, bench_booking
from telemed.events.publish import Publisher
from telemed.samples import DOCTORS, booking
from telemed.store import clinics
from telemed.workers.queue.broker import build_broker
from telemed.workers.queue.clinic_gate import gate_of
from telemed.workers.queue.work_queue import WorkQueue
from telemed.zoom.ratelimit import RateLimiter
from telemed.zoom.simulator import ZoomSimulator
from tests.conftest import REAL_REDIS_URL
from tests.support.pipeline import Pipeline
from tests.support.private_redis import private_redis

pytestmark = pytest.mark.integration

CREDENTIALS = {"account_id": "test-account", "client_id": "test-client", "client_secret": "test-secret"}
B_CREDENTIALS = {"account_id": "b-account", "client_id": "b-client", "client_secret": "b-secret"}
IN_FLIGHT = 4  # of 8 worker threads
THREADS = 8
ZOOM_LATENCY_S = 0.1
A_BOOKINGS = 300
B_IDLE = 3  # B's bookings with A idle: the baseline
B_LOADED = 6  # B's bookings while A's import drains
# Each loaded B latency at most this many times B's slowest idle one. Loose for a busy test
# host (measured about 1 x on a quiet one; benchmark 8 holds the p99 to 2 x); the shared
# FIFO this guards against measured about 35 x.
RATIO = 5.0


@pytest.fixture
def fair(backend, smtp, tmp_path, redis_namespace) -> Iterator[tuple[Pipeline, Publisher]]:  # type: ignore[no-untyped-def]
    redis_url, database_url = backend
    credentials = CREDENTIALS
    with ZoomSimulator(latency_seconds=ZOOM_LATENCY_S, **credentials) as sim:
        p = Pipeline(
            redis_url=redis_url, namespace=redis_namespace, database_url=database_url,
            zoom_api_url=sim.api_url, zoom_oauth_url=sim.oauth_url, zoom_credentials=credentials,
            smtp_url=smtp.url(), workdir=tmp_path, processes=1, threads=THREADS,
            extra_env={"TELEMED_CLINIC_IN_FLIGHT": str(IN_FLIGHT), "TELEMED_LOG_LEVEL": "INFO",
                       # Zoom's latency, not the shared account's pacer, paces A here.
                       "TELEMED_ZOOM_CREATE_PER_SECOND": "1000", "TELEMED_ZOOM_LIGHT_PER_SECOND": "1000"},
        )
        # As the web publishes: through the gate, each event as its clinic's work.
        broker = build_broker(redis.Redis.from_url(redis_url), redis_namespace, clinic_in_flight=IN_FLIGHT)
        publisher = Publisher(database=p.database, enqueue=WorkQueue(broker).process_event)
        # Each clinic on a Zoom account of its own, as Zoom counts hosts' daily quotas per
        # account: on one shared account A's import would spend the host quota B needs too.
        _register(p, "a")
        sim.add_account(B_CREDENTIALS["account_id"], B_CREDENTIALS["client_id"], B_CREDENTIALS["client_secret"])
        _register(p, "b", credentials=B_CREDENTIALS)
        p.start_worker()
        try:
            yield p, publisher
        finally:
            p.stop()
            broker.close()


def _register(p: Pipeline, *clinic_ids: str, credentials: dict[str, str] = CREDENTIALS) -> None:
    """The clinics in the registry (work of an unknown clinic is given up), on ``credentials``' Zoom account."""
    with p.database.session() as s:
        for clinic_id in clinic_ids:
            clinics.add_clinic(s, clinic_id, f"Clinic {clinic_id}", zoom_account_id=credentials["account_id"],
                               zoom_client_id=credentials["client_id"], zoom_client_secret=credentials["client_secret"])


def _patient(appointment_id: str) -> str:
    return f".{appointment_id.lower()}@"  # the sample patient's address holds the appointment id


def _b_latencies(p: Pipeline, publisher: Publisher, smtp: Any, prefix: str, count: int) -> list[float]:
    """Publish B's bookings ``{prefix}0..`` one a second; each one's seconds from publish to its mail."""
    base = base_time()
    sent: dict[str, float] = {}
    start = time.monotonic()
    for n in range(count):
        time.sleep(max(0.0, start + n - time.monotonic()))
        sent[f"{prefix}{n}"] = time.monotonic()
        publisher.publish(bench_booking(prefix, n, base), "b")
    p.wait_until(lambda: all(smtp.first_arrival(_patient(a)) is not None for a in sent), timeout=90,
                 what="clinic B's invitations")
    return [smtp.first_arrival(_patient(a)) - at for a, at in sent.items()]


def test_a_bulk_import_does_not_hold_back_another_clinic(fair, smtp) -> None:  # type: ignore[no-untyped-def]
    p, publisher = fair
    _b_latencies(p, publisher, smtp, "BW", 1)  # warm up: the worker's connections and Zoom token
    idle = _b_latencies(p, publisher, smtp, "BI", B_IDLE)

    base = base_time()
    for n in range(A_BOOKINGS):  # the bulk import, each event queued as it is accepted
        publisher.publish(bench_booking("A", n, base), "a")
    loaded = _b_latencies(p, publisher, smtp, "BL", B_LOADED)

    last_b = max(smtp.first_arrival(_patient(f"BL{n}")) for n in range(B_LOADED))
    a_done = sum(1 for n in range(A_BOOKINGS)
                 if (t := smtp.first_arrival(_patient(f"A{n}"))) is not None and t <= last_b)
    figures = (f"B idle {[round(x, 2) for x in idle]} s, B while A imports {[round(x, 2) for x in loaded]} s, "
               f"A done by then {a_done}/{A_BOOKINGS}")
    print(figures)
    assert a_done < A_BOOKINGS, f"A's backlog must outlast the measurement: {figures}"
    assert max(loaded) <= RATIO * max(idle), figures


@pytest.fixture
def one_thread(backend, smtp, tmp_path, redis_namespace) -> Iterator[Pipeline]:  # type: ignore[no-untyped-def]
    """One worker thread: a thread held by one message is the thread every other message needs."""
    redis_url, database_url = backend
    credentials = CREDENTIALS
    with ZoomSimulator(**credentials) as sim:
        p = Pipeline(redis_url=redis_url, namespace=redis_namespace, database_url=database_url,
                     zoom_api_url=sim.api_url, zoom_oauth_url=sim.oauth_url, zoom_credentials=credentials,
                     smtp_url=smtp.url(), workdir=tmp_path, processes=1, threads=1,
                     extra_env={"TELEMED_LOG_LEVEL": "INFO"})
        p.start_worker()
        try:
            yield p
        finally:
            p.stop()


def test_a_message_waiting_on_a_busy_pacer_leaves_its_thread_to_others(one_thread, smtp) -> None:  # type: ignore[no-untyped-def]
    p = one_thread
    start = base_time()
    p.publisher.publish(booking("PB-1", 1, start))
    p.wait_until(lambda: smtp.first_arrival(_patient("PB-1")) is not None, what="B's invitation")

    # The account's create pacer (Zoom's Medium category) is taken for the next 4 s, as by
    # a burst of another clinic's creates; the Light one (updates) is free.
    client = redis.Redis.from_url(p.redis_url)
    seconds, micros = client.time()
    block_end_ms = seconds * 1000 + micros // 1000 + 4000
    due_key = RateLimiter(client, {"Medium": 20}, namespace=p.namespace).keys("account:test-account", "Medium")[0]
    client.set(due_key, str(block_end_ms), px=10_000)

    p.publisher.publish(booking("PA-1", 1, start, doctor=DOCTORS[1]))  # a create: waits for the pacer
    time.sleep(0.3)  # its sync has reached the pacer
    p.publisher.publish(booking("PB-1", 2, start + timedelta(hours=1), type="appointment.rescheduled"))
    p.wait_until(lambda: len([m for m in smtp.messages if "pb-1@" in str(m["To"])]) >= 2,
                 what="B's notice of the new time")
    seconds, micros = client.time()
    assert seconds * 1000 + micros // 1000 < block_end_ms, "B's notice waited for A's pacer"
    assert "PA-1" not in p.meetings()

    # A's create goes once the pacer is free, deferred meanwhile, never counted as a failed try.
    p.wait_until(lambda: smtp.first_arrival(_patient("PA-1")) is not None, timeout=30, what="A's invitation")
    log = p.worker_log()
    assert "message deferred: its Zoom pacer is busy" in log
    assert "Retrying message" not in log
    client.close()


def test_a_flushed_redis_loses_nothing_waiting_at_the_gate(backend, smtp, tmp_path, redis_namespace) -> None:  # type: ignore[no-untyped-def]
    shared_redis, database_url = backend
    credentials = CREDENTIALS
    with private_redis(real=shared_redis == REAL_REDIS_URL) as redis_url, ZoomSimulator(**credentials) as sim:
        p = Pipeline(redis_url=redis_url, namespace=redis_namespace, database_url=database_url,
                     zoom_api_url=sim.api_url, zoom_oauth_url=sim.oauth_url, zoom_credentials=credentials,
                     smtp_url=smtp.url(), workdir=tmp_path,
                     extra_env={"TELEMED_CLINIC_IN_FLIGHT": "1", "TELEMED_RECONCILE_GRACE_SECONDS": "0"})
        client = redis.Redis.from_url(redis_url)
        broker = build_broker(client, redis_namespace, clinic_in_flight=1)
        publisher = Publisher(database=p.database, enqueue=WorkQueue(broker).process_event)
        _register(p, "north")
        try:
            base = base_time()
            for n in range(5):  # no worker yet: one queued, four waiting at the gate
                publisher.publish(bench_booking("GF", n, base), "north")
            gate = gate_of(broker)
            assert gate is not None and gate.waiting("north")["events"] == 4
            client.flushall()

            p.start_worker()
            result = p.run_cli("scheduler", "--once")
            assert result.returncode == 0, result.stderr.decode()[-2000:]
            p.wait_settled(timeout=90)
            assert {a.state for a in p.appointments().values()} == {"provisioned"}
            assert all(smtp.first_arrival(_patient(f"GF{n}")) is not None for n in range(5))
            assert gate.in_flight("north") == 0 and gate.backlogged() == set()
        finally:
            p.stop()
            broker.close()
