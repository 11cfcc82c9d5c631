"""The shared pacer and the daily quota, on real (or embedded) Redis and the simulator."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from telemed.zoom.client import ZoomClient
from telemed.zoom.errors import ZoomPacingWait, ZoomRateLimited
from telemed.zoom.policy import build_meeting_request, generate_passcode, make_marker
from telemed.zoom.ratelimit import SAFETY, WINDOW_ALLOWANCE_MS, DailyQuota, RateLimiter, holding_at_most
from telemed.zoom.simulator import ZoomSimulator
from telemed.zoom.tokens import StaticTokenProvider

pytestmark = pytest.mark.integration


def test_pacer_is_shared_between_processes(redis_client: redis.Redis, redis_namespace: str) -> None:
    # Two limiter objects on one Redis stand for two worker processes.
    a = RateLimiter(redis_client, {"Medium": 20}, namespace=redis_namespace)
    b = RateLimiter(redis_client, {"Medium": 20}, namespace=redis_namespace)
    started = time.monotonic()
    for i in range(30):
        (a if i % 2 else b).acquire("account:x", "Medium")
    elapsed = time.monotonic() - started
    expected = 29 / (20 * SAFETY)  # first call immediately, then one slot each
    assert expected * 0.9 <= elapsed <= expected + 1.0
    # Other scopes and categories have their own slots.
    before = time.monotonic()
    a.acquire("account:y", "Medium")
    a.acquire("account:x", "Light")  # no limit configured: free
    assert time.monotonic() - before < 0.2


def test_a_caller_that_would_wait_too_long_gives_up(redis_client: redis.Redis, redis_namespace: str) -> None:
    limiter = RateLimiter(redis_client, {"Medium": 2}, namespace=redis_namespace, max_wait_seconds=1.2)
    # 1.9 calls/s: of five callers at once, one goes at once and two more within 1.2 s
    # (slots about 0.53 s apart); the other two give up instead of waiting longer.
    results: list[float | ZoomRateLimited] = []

    def call() -> None:
        try:
            results.append(limiter.acquire("s", "Medium"))
        except ZoomRateLimited as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    waits = sorted(r for r in results if isinstance(r, float))
    refused = [r for r in results if isinstance(r, ZoomRateLimited)]
    assert len(waits) == 3 and waits[0] < 0.1 and 0.45 < waits[1] < waits[2] <= 1.2
    assert len(refused) == 2
    assert all(e.status is None and not e.daily and e.retry_after == 1.2 for e in refused)
    assert limiter.acquire("s", "Light") == 0


def test_a_caller_held_to_a_bound_defers_at_once_and_takes_no_slot(
        redis_client: redis.Redis, redis_namespace: str) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    limiter = RateLimiter(redis_client, {"Medium": 2}, namespace=redis_namespace, sleep=sleep)
    assert limiter.acquire("s", "Medium") == 0.0  # the first call goes; the next slot is ~0.53 s off
    due_before = redis_client.get(limiter.keys("s", "Medium")[0])
    with holding_at_most(0.25), pytest.raises(ZoomPacingWait) as raised:
        limiter.acquire("s", "Medium")
    assert slept == []  # no thread held: the caller defers its work instead
    assert 0.25 < raised.value.wait_seconds <= 1 / (2 * SAFETY) and raised.value.waited_seconds == 0
    assert raised.value.status is None and not raised.value.daily  # nothing was sent to Zoom
    assert redis_client.get(limiter.keys("s", "Medium")[0]) == due_before  # no slot taken
    # Outside the bound (a web request, the CLI) the same call waits in the pacer as before.
    with holding_at_most(None):
        limiter.acquire("s", "Medium")
    assert len(slept) >= 1


def test_a_held_caller_may_sleep_up_to_its_bound_in_all(redis_client: redis.Redis, redis_namespace: str) -> None:
    # 10/s: slots ~105 ms apart. Four other callers keep taking them: a caller bound to
    # 250 ms sleeps while its waits add up to at most the bound, then defers.
    limiter = RateLimiter(redis_client, {"Medium": 10}, namespace=redis_namespace)
    stop = threading.Event()

    def hog() -> None:
        while not stop.is_set():
            limiter.acquire("s", "Medium")

    hogs = [threading.Thread(target=hog) for _ in range(4)]
    for thread in hogs:
        thread.start()
    deferred: list[tuple[ZoomPacingWait, float]] = []
    try:
        for _ in range(50):  # new work each time; some of it gets a slot within the bound
            started = time.monotonic()
            try:
                with holding_at_most(0.25):
                    limiter.acquire("s", "Medium")
            except ZoomPacingWait as exc:
                deferred.append((exc, time.monotonic() - started))
    finally:
        stop.set()
        for thread in hogs:
            thread.join(10)
    assert deferred, "with four callers ahead, some work must be deferred"
    for exc, held in deferred:
        assert exc.waited_seconds <= 0.25 and held < 1.0  # never the limiter's own 5 s wait


def test_once_a_call_went_out_the_work_waits_rather_than_defers(
        redis_client: redis.Redis, redis_namespace: str) -> None:
    limiter = RateLimiter(redis_client, {"Medium": 2}, namespace=redis_namespace)
    with holding_at_most(0.25):
        assert limiter.acquire("s", "Medium") == 0.0  # this work's first call goes at once
        waited = limiter.acquire("s", "Medium")  # its next one waits its ~0.53 s turn
    assert 0.25 < waited < 1.2
    with holding_at_most(0.25), pytest.raises(ZoomPacingWait):  # new work, nothing sent yet
        limiter.acquire("s", "Medium")


def test_a_late_caller_does_not_squeeze_the_next_one(redis_client: redis.Redis, redis_namespace: str) -> None:
    """A slot is taken when the call goes: waking late delays the schedule, never packs it."""
    limiter = RateLimiter(redis_client, {"Medium": 10}, namespace=redis_namespace, safety=1.0)
    limiter.acquire("s", "Medium")
    time.sleep(0.25)  # this caller is 150 ms late for its slot (100 ms after the first)
    gone = time.monotonic()
    assert limiter.acquire("s", "Medium") == 0
    limiter.acquire("s", "Medium")  # must still wait a whole interval after the late one
    assert time.monotonic() - gone >= 0.09


def test_any_limit_plus_one_slots_span_more_than_a_second(redis_client: redis.Redis, redis_namespace: str) -> None:
    """At the full plan rate the interval alone would put 6 slots of a 5/s limit exactly
    one second apart: a request delayed on its way would then make 6 in Zoom's second."""
    limiter = RateLimiter(redis_client, {"Medium": 5}, namespace=redis_namespace, safety=1.0)
    assert limiter.effective_rate("Medium") == pytest.approx(5 / (1 + WINDOW_ALLOWANCE_MS / 1000))
    _, sent = limiter.keys("s", "Medium")
    taken = []  # each slot's time as the script took it (Redis's clock, ms): no jitter of ours
    for _ in range(11):
        limiter.acquire("s", "Medium")
        taken.append(float(redis_client.lindex(sent, 0)))  # type: ignore[arg-type]
    spans = [later - first for first, later in zip(taken, taken[5:], strict=False)]
    assert min(spans) >= 1000.0 + WINDOW_ALLOWANCE_MS


# Our clock at 22:30 UTC on a day far from Redis's, either way: the counters must live
# until our midnight (plus an hour), whatever Redis's clock says the date is.
SKEWED_CLOCKS = [datetime(2001, 3, 24, 22, 30, tzinfo=UTC), datetime(2099, 10, 31, 22, 30, tzinfo=UTC)]
DAY_LIFETIME = (90 * 60, 90 * 60 + 3600)  # the seconds a 22:30 counter may live (TTL bounds)


@pytest.mark.parametrize("now", SKEWED_CLOCKS, ids=["clock-behind-redis", "clock-ahead-of-redis"])
def test_daily_quota(redis_client: redis.Redis, redis_namespace: str, now: datetime) -> None:
    quota = DailyQuota(redis_client, 3, namespace=redis_namespace, clock=lambda: now)
    assert [quota.reserve("Ada@Clinic.example") for _ in range(3)] == [1, 2, 3]
    with pytest.raises(ZoomRateLimited) as caught:
        quota.reserve("ada@clinic.example")  # same host, any case
    assert caught.value.daily and caught.value.retry_after == 90 * 60
    assert quota.used("ada@clinic.example") == 3  # the refused one was not counted
    quota.release("ada@clinic.example")
    assert quota.reserve("ada@clinic.example") == 3
    quota.exhaust("grace@clinic.example")  # Zoom said so
    with pytest.raises(ZoomRateLimited):
        quota.reserve("grace@clinic.example")
    keys = [k.decode() for k in redis_client.scan_iter(match=f"{redis_namespace}*")]
    assert len(keys) == 2 and not any("clinic" in k for k in keys)  # no email in a Redis key
    for key in keys:
        assert DAY_LIFETIME[0] <= redis_client.ttl(key) <= DAY_LIFETIME[1]


def test_daily_quota_release_of_a_gone_counter(redis_client: redis.Redis, redis_namespace: str) -> None:
    """A release after the day's counter expired (or on a new day) leaves nothing behind:
    a bare DECR would leave -1 with no expiry, one extra call allowed on that day for ever."""
    quota = DailyQuota(redis_client, 2, namespace=redis_namespace, clock=lambda: SKEWED_CLOCKS[1])
    quota.release("ada@clinic.example")
    assert list(redis_client.scan_iter(match=f"{redis_namespace}*")) == []
    assert [quota.reserve("ada@clinic.example") for _ in range(2)] == [1, 2]
    with pytest.raises(ZoomRateLimited):
        quota.reserve("ada@clinic.example")


def test_paced_clients_stay_under_zoom_limits(
    redis_client: redis.Redis, redis_namespace: str
) -> None:
    """Eight threads in two 'processes' creating as fast as they can: no 429 from Zoom.

    At 80 % of the limit, 11 slots span at least 1.235 s: this checks that the two pacers
    share one schedule, with room for a loaded test machine to delay a request (once, in
    CI with three test processes, 60 ms was not enough). How close production's 95 % and
    1.06 s come to the limit is measured by ``telemed bench --only 3``, not here."""
    with ZoomSimulator(rate_limits={"Medium": 10, "Light": 20}) as sim:
        token = sim.issue_token()
        limiters = [RateLimiter(redis_client, {"Medium": 10, "Light": 20}, namespace=redis_namespace, safety=0.8)
                    for _ in range(2)]
        clients = [ZoomClient(sim.api_url, StaticTokenProvider(token), limiter=limiters[i].for_scope("acct"))
                   for i in range(2)]
        body: dict[str, Any] = build_meeting_request(
            topic="t", start_time=datetime(2030, 1, 1, tzinfo=UTC), duration_minutes=30, timezone="UTC",
            passcode=generate_passcode(), marker=make_marker("A-1"))
        limited: list[ZoomRateLimited] = []

        def work(client: ZoomClient) -> None:
            for _ in range(5):
                try:
                    client.create_meeting("me", body)
                except ZoomRateLimited as exc:
                    limited.append(exc)

        threads = [threading.Thread(target=work, args=(clients[i % 2],)) for i in range(8)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        elapsed = time.monotonic() - started
        assert limited == [] and sim.stats()["counters"].get("rate_limited.qps", 0) == 0
        assert len(sim.meetings()) == 40
        assert elapsed >= 39 / 10  # paced: never faster than the limit
