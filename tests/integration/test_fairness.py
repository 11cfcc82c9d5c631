"""Fairness between clinics, end to end: clinic A's bulk import does not hold back clinic B.

Real worker processes (1 × 8 threads), the Zoom simulator over HTTP answering in 100 ms,
real SMTP. Clinic B books one appointment a second, first with A idle, then while A's
import of a few hundred bookings drains; each B booking's time from publish to its
patient's invitation arriving at the SMTP server is compared with B's own latency with A
idle, measured in the same run. With one shared FIFO, B's sync would wait behind every
sync of A's (about ten seconds here, twenty times B's idle latency); the clinic gate
keeps at most ``IN_FLIGHT`` of A's messages in the shared queues.

Both clinics use the deployment's one Zoom account here, so they share its pacer: A's
work is slowed by Zoom's latency (I/O, like a paced import), not by a per-clinic limit.
With per-clinic Zoom accounts, A's own pacer is the one that keeps its backlog long.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from telemed.benchmarks.bookings import base_time, bench_booking
from telemed.events.publish import Publisher
from telemed.workers.queue.broker import build_broker
from telemed.workers.queue.work_queue import WorkQueue
from telemed.zoom.simulator import ZoomSimulator
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

IN_FLIGHT = 4  # of 8 worker threads
THREADS = 8
ZOOM_LATENCY_S = 0.1
A_BOOKINGS = 300
B_IDLE = 3  # B's bookings with A idle: the baseline
B_LOADED = 6  # B's bookings while A's import drains
RATIO = 3.0  # each loaded B latency at most this many times B's slowest idle one


@pytest.fixture
def fair(backend, smtp, tmp_path, redis_namespace) -> Iterator[tuple[Pipeline, Publisher]]:  # type: ignore[no-untyped-def]
    redis_url, database_url = backend
    credentials = {"account_id": "test-account", "client_id": "test-client", "client_secret": "test-secret"}
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
        p.start_worker()
        try:
            yield p, publisher
        finally:
            p.stop()
            broker.close()


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
