"""Health, readiness and Prometheus metrics: the web process and real worker processes."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.message import Message
from redis.backoff import NoBackoff
from redis.retry import Retry

from telemed.samples import booking
from telemed.settings import load_settings
from telemed.store.db import Database
from telemed.workers.jobs import gauges_job
from tests.support.contexts import worker_context
from tests.support.pipeline import Pipeline
from tests.support.single_backend import most_real_backend
from tests.support.webapp import INGRESS_SECRET, running_app, settings_for, web_services
from tests.support.webserver import free_port

pytestmark = pytest.mark.integration


def _value(text: str, name: str, **labels: str) -> float:
    """One sample from the exposition format: the series named ``name`` carrying ``labels``."""
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        series, _, value = line.rpartition(" ")
        metric, _, rest = series.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if metric == name and all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    raise AssertionError(f"{name}{labels} not in /metrics")


def _signed(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    mac = hmac.new(INGRESS_SECRET.encode(), f"v1:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Telemed-Timestamp": ts, "X-Telemed-Signature": f"v1={mac}"}


METRICS_TOKEN = "metrics-test-token-0123456789abcdef"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def test_health_readiness_and_web_metrics(database: Database, redis_client: redis.Redis, redis_url: str,
                                          redis_namespace: str) -> None:
    settings = settings_for(redis_namespace, metrics_token=METRICS_TOKEN)
    # Work the scheduler's gauge job measures: one queued message, one dead letter.
    broker = RedisBroker(url=redis_url, namespace=redis_namespace)
    broker.enqueue(Message(queue_name="events", actor_name="process_event", args=("e-1",), kwargs={}, options={}))
    dead = Message(queue_name="notifications", actor_name="deliver_notification", args=(7,), kwargs={},
                   options={"failure": "PermanentFailure: test"})
    redis_client.zadd(f"{redis_namespace}:notifications.XQ", {dead.message_id: time.time() * 1000})
    redis_client.hset(f"{redis_namespace}:notifications.XQ.msgs", dead.message_id, dead.encode())
    ctx = worker_context(settings, database)
    ctx.__dict__.update(redis=redis_client)
    gauges_job(ctx)

    with running_app(web_services(settings, database, redis_client)) as url:
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready",
                                                             "checks": {"store": "ok", "redis": "ok"}}
        body = json.dumps(booking("M-1", 1, datetime.now(UTC) + timedelta(days=1))).encode()
        assert httpx.post(f"{url}/v1/events", content=body, headers=_signed(body)).status_code == 202
        assert httpx.post(f"{url}/v1/events", content=body, headers={"X-Telemed-Timestamp": "1"}).status_code == 401
        text = httpx.get(f"{url}/metrics", headers=SCRAPER).text
    assert _value(text, "telemed_events_accepted_total", source="http") >= 1
    assert _value(text, "telemed_events_rejected_total", source="http", reason="signature_missing") >= 1
    assert _value(text, "telemed_queue_depth", queue="events") == 1
    assert _value(text, "telemed_dead_letters", queue="notifications") == 1
    assert _value(text, "telemed_outbox_pending") == 0
    assert _value(text, "telemed_gauges_updated_timestamp_seconds") > time.time() - 60
    broker.close()


def test_web_metrics_answer_only_the_scraper(database: Database, redis_client: redis.Redis,
                                             redis_namespace: str) -> None:
    with running_app(web_services(settings_for(redis_namespace), database, redis_client)) as url:
        unset = httpx.get(f"{url}/metrics", headers=SCRAPER)  # no token configured: not served at all
        assert unset.status_code == 404 and "telemed_" not in unset.text
    settings = settings_for(redis_namespace, metrics_token=METRICS_TOKEN)
    with running_app(web_services(settings, database, redis_client)) as url:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": METRICS_TOKEN},
                        {"Authorization": f"Bearer {METRICS_TOKEN[:-1]}"}):
            refused = httpx.get(f"{url}/metrics", headers=headers)
            assert refused.status_code == 401 and "telemed_" not in refused.text, headers
            assert refused.headers["www-authenticate"].startswith("Bearer")
        scraped = httpx.get(f"{url}/metrics", headers=SCRAPER)
        assert scraped.status_code == 200 and "telemed_events_accepted_total" in scraped.text
        assert httpx.get(f"{url}/healthz").status_code == 200  # health stays open for load balancers


def test_readiness_names_what_is_down(database: Database, redis_client: redis.Redis, redis_namespace: str) -> None:
    settings = settings_for(redis_namespace, metrics_token=METRICS_TOKEN)
    dead_redis = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    with running_app(web_services(settings, database, dead_redis)) as url:
        answer = httpx.get(f"{url}/readyz")
        assert answer.status_code == 503 and answer.json()["checks"]["store"] == "ok"
        assert answer.json()["checks"]["redis"].startswith("down")
        assert httpx.get(f"{url}/metrics", headers=SCRAPER).status_code == 200  # its own metrics still answer
    down = Database("postgresql://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 2})
    with running_app(web_services(settings, down, redis_client)) as url:
        answer = httpx.get(f"{url}/readyz")
        assert answer.status_code == 503 and answer.json()["checks"]["store"].startswith("down")
        assert answer.json()["checks"]["redis"] == "ok"
    down.dispose()


@pytest.fixture
def metered(embedded_redis, zoom_sim, smtp, tmp_path, redis_namespace) -> Iterator[tuple[Pipeline, int]]:  # type: ignore[no-untyped-def]
    with most_real_backend(embedded_redis, tmp_path) as (redis_url, database_url):
        yield from _metered(redis_url, database_url, zoom_sim, smtp, tmp_path, redis_namespace)


def _metered(redis_url, database_url, zoom_sim, smtp, tmp_path, redis_namespace) -> Iterator[tuple[Pipeline, int]]:  # type: ignore[no-untyped-def]
    port = free_port()
    p = Pipeline(redis_url=redis_url, namespace=redis_namespace, database_url=database_url,
                 zoom_api_url=zoom_sim.api_url, zoom_oauth_url=zoom_sim.oauth_url,
                 zoom_credentials={"account_id": "test-account", "client_id": "test-client",
                                   "client_secret": "test-secret"},
                 smtp_url=smtp.url(), workdir=tmp_path, processes=2, threads=2,
                 extra_env={"TELEMED_WORKER_METRICS_PORT": str(port)})
    p.start_worker()
    try:
        yield p, port
    finally:
        p.stop()


def test_worker_metrics_sum_every_process(metered) -> None:  # type: ignore[no-untyped-def]
    pipeline, port = metered
    assert load_settings().metrics_bind == "127.0.0.1"  # loopback unless told otherwise
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    pipeline.publish([booking(f"P-{i}", 1, start) for i in range(4)])
    pipeline.wait_settled()
    pipeline.broker.enqueue(Message(queue_name="meetings", actor_name="sync_meeting", args=("nope",),
                                    kwargs={}, options={}))

    def scrape() -> str:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return ""

    pipeline.wait_until(lambda: 'outcome="dead_lettered"' in scrape(), what="worker metrics")
    text = scrape()
    assert _value(text, "telemed_worker_messages_total", actor="process_event", outcome="succeeded") == 4
    assert _value(text, "telemed_worker_messages_total", actor="sync_meeting", outcome="dead_lettered") == 1
    assert _value(text, "telemed_worker_message_seconds_count", actor="sync_meeting") >= 5
    assert _value(text, "telemed_event_to_notification_seconds_count") == 8  # patient + doctor, 4 bookings
    assert _value(text, "telemed_meetings_total", action="created") == 4


def test_the_worker_command_declares_no_metric_before_the_metrics_directory() -> None:
    """prometheus_client fixes a metric's storage when it is created: one created in the
    supervising process before PROMETHEUS_MULTIPROC_DIR is set counts nowhere the metrics
    port can see (seen once, when a module imported by ``telemed worker`` declared one)."""
    import subprocess
    import sys

    probe = ("import telemed.cli, telemed.worker\n"
             "from prometheus_client import REGISTRY\n"
             "print([m.name for m in REGISTRY.collect() if m.name.startswith('telemed')])\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout
