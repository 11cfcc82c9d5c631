"""The Zoom adapter on real worker processes: token storms, 429 storms, lost answers,
revoked grants. Each runs `telemed worker` processes against the simulator over HTTP, on
real Redis + PostgreSQL and on the embedded server + SQLite.

The token storm runs 20 seconds by default; TELEMED_TEST_FULL_STORM=1 runs the issue's
full minute.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlmodel import select

from telemed.samples import booking
from telemed.store import notifications, states, zoom_tokens
from telemed.store.models import Doctor, OutboxMessage
from telemed.zoom.simulator import ZoomSimulator
from tests.support.pipeline import Pipeline
from tests.support.zoom_oauth import connect_doctor

pytestmark = pytest.mark.integration

DOCTOR = ("D-1", "Dr. Ada Lovelace")
EMAIL = "d-1@clinic.example"  # what telemed.samples.booking gives D-1
STORM_SECONDS = 60.0 if os.environ.get("TELEMED_TEST_FULL_STORM") == "1" else 20.0


@pytest.fixture
def make_pipeline(backend: tuple[str, str], tmp_path: Any, redis_namespace: str) -> Iterator[Any]:
    started: list[Pipeline] = []

    def make(sim: ZoomSimulator, *, processes: int = 1, threads: int = 4, account_app: bool = True,
             **env: str) -> Pipeline:
        redis_url, database_url = backend
        extra = {
            "TELEMED_ZOOM_OAUTH_CLIENT_ID": sim.oauth_client_id,
            "TELEMED_ZOOM_OAUTH_CLIENT_SECRET": sim.oauth_client_secret,
            # Doctors' mails carry signed start links: no Zoom call at send time, so the
            # Zoom traffic measured here is the sync's.
            "TELEMED_PUBLIC_URL": "http://127.0.0.1:9",
            "TELEMED_ADMIN_EMAIL": "admin@clinic.example",
            "TELEMED_LOG_LEVEL": "INFO",
            **env,
        }
        if not account_app:
            extra["TELEMED_ZOOM_ACCOUNT_ID"] = ""
        pipeline = Pipeline(
            redis_url=redis_url, namespace=redis_namespace, database_url=database_url,
            zoom_api_url=sim.api_url, zoom_oauth_url=sim.oauth_url,
            zoom_credentials={"account_id": sim.account_id, "client_id": sim.client_id,
                              "client_secret": sim.client_secret},
            smtp_url=None, workdir=tmp_path, processes=processes, threads=threads, extra_env=extra,
        )
        started.append(pipeline)
        return pipeline

    yield make
    for pipeline in started:
        pipeline.stop()
    client = redis.Redis.from_url(backend[0])
    for key in client.scan_iter(match=f"{redis_namespace}*", count=500):
        client.delete(key)
    client.close()


def later(days: int = 3, minutes: int = 0) -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=days, minutes=minutes)


def live_meetings(sim: ZoomSimulator) -> list[dict[str, Any]]:
    return sim.meetings(include_deleted=False)


def test_token_storm_six_processes_rotating_tokens(make_pipeline: Any) -> None:
    """6 processes x 4 threads, a 5 s token lifetime with rotation, calls for the whole
    run: never an invalid_grant, and about one grant per lifetime."""
    lifetime = 5.0
    with ZoomSimulator(token_lifetime_seconds=lifetime) as sim:
        # One clinic on all 24 threads (the clinic gate's default would keep 8 at work),
        # so refreshes fall due while many processes are calling.
        pipeline = make_pipeline(sim, processes=6, threads=4, TELEMED_ZOOM_TOKEN_REFRESH_MARGIN_SECONDS="1",
                                 TELEMED_ZOOM_DAILY_CALLS_PER_HOST="100000", TELEMED_CLINIC_IN_FLIGHT=str(6 * 4))
        connect_doctor(pipeline.database, sim, DOCTOR[0], EMAIL)
        pipeline.start_worker()
        started = time.monotonic()
        count = 0
        # Bursts of bookings and reschedules every second: each is a create or an update
        # made with the doctor's own token, by whichever of the 24 worker threads (in 6
        # processes) takes it, so refreshes fall due while several processes are calling.
        while time.monotonic() - started < STORM_SECONDS:
            tick = time.monotonic()
            burst = []
            for _ in range(5):
                count += 1
                burst.append(booking(f"S-{count}", 1, later(minutes=count), doctor=DOCTOR))
            burst.append(booking(f"S-{count - 2}", 2, later(minutes=count + 30), doctor=DOCTOR,
                                 type="appointment.rescheduled"))
            pipeline.publish(burst)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        elapsed = time.monotonic() - started
        pipeline.wait_settled(timeout=60)
        counters = sim.stats()["counters"]
        grants = counters.get("grant.refresh_token", 0)
        assert counters.get("invalid_grant", 0) == 0
        appointments = pipeline.appointments()
        assert len(appointments) == count
        assert all(a.state == states.PROVISIONED for a in appointments.values())
        assert len(live_meetings(sim)) == count  # one meeting each, all made as the doctor
        assert {m["meeting"]["host_email"] for m in live_meetings(sim)} == {EMAIL}
        as_doctor = [r for r in sim.requests() if r.get("user") == EMAIL]
        assert len(as_doctor) >= count  # every create and update went out with the doctor's token
        # A token lives 5 s and every call went out with a live one (none rejected), so
        # calls spread over `span` seconds took at least span / lifetime - 1 fresh tokens
        # (the first came with the connect). At most: renewed 1 s before expiry, one per
        # ~4 s of the run, and no stampede when several processes find it due at once.
        # (The span, not the wall clock: on a loaded machine the calls bunch up.)
        span = max(r["at"] for r in as_doctor) - min(r["at"] for r in as_doctor)
        assert math.ceil(span / lifetime) - 1 <= grants <= 1.5 * elapsed / lifetime + 2, (grants, span, elapsed)
        with pipeline.database.session() as session:
            grant = zoom_tokens.load_grant(session, DOCTOR[0])
        assert grant is not None and grant.status == "connected" and grant.version == grants + 1


def test_429_storm(make_pipeline: Any) -> None:
    """Zoom allows far fewer calls than our pacer assumes: every booking still gets exactly
    one meeting, through Zoom's 429s and our jittered retries."""
    with ZoomSimulator(rate_limits={"Medium": 2, "Light": 3}) as sim:
        pipeline = make_pipeline(sim, processes=2, threads=6)
        pipeline.start_worker()
        pipeline.publish([booking(f"Q-{n}", 1, later(minutes=n), doctor=DOCTOR) for n in range(10)])
        pipeline.wait_settled(timeout=90)
        assert sim.stats()["counters"].get("rate_limited.qps", 0) > 0
        assert len(live_meetings(sim)) == 10
        appointments = pipeline.appointments()
        assert all(a.state == states.PROVISIONED for a in appointments.values())
        meetings = pipeline.meetings()
        assert {m.zoom_meeting_id for m in meetings.values()} == {m["id"] for m in live_meetings(sim)}


def test_a_lost_create_answer_makes_no_duplicate(make_pipeline: Any) -> None:
    """Zoom creates the meeting but the answer never arrives: the retry adopts it."""
    with ZoomSimulator() as sim:
        pipeline = make_pipeline(sim)
        sim.inject_fault("drop", method="POST", path_prefix="/v2/users/", count=2)
        pipeline.start_worker()
        pipeline.publish([booking(f"L-{n}", 1, later(minutes=n), doctor=DOCTOR) for n in range(3)])
        pipeline.wait_settled(timeout=60)
        creates = sim.requests(method="POST", path_prefix="/v2/users/")
        assert [c.get("fault") for c in creates].count("drop") == 2
        assert len(creates) == 3  # the two lost ones were adopted, not created again
        assert len(sim.meetings()) == 3
        db_ids = {m.zoom_meeting_id for m in pipeline.meetings().values()}
        assert db_ids == {m["id"] for m in sim.meetings()}
        assert len(sim.requests(method="GET", path_prefix="/v2/users/")) >= 2  # looked for them
        assert "adopted meeting from an earlier attempt" in pipeline.worker_log()


def test_revoked_refresh_token(make_pipeline: Any) -> None:
    """The doctor removed the app: needs_reconnect, their appointments parked, one alert;
    a reconnect resumes them."""
    with ZoomSimulator() as sim:
        pipeline = make_pipeline(sim, account_app=False, threads=6)
        connect_doctor(pipeline.database, sim, DOCTOR[0], EMAIL)
        sim.revoke_user(EMAIL)
        pipeline.start_worker()
        pipeline.publish([booking(f"V-{n}", 1, later(minutes=n), doctor=DOCTOR) for n in range(4)])

        def parked() -> bool:
            return all(a.state == states.NEEDS_ATTENTION for a in pipeline.appointments().values()) and \
                len(pipeline.appointments()) == 4

        pipeline.wait_until(parked, timeout=30, what="the appointments to be parked")
        time.sleep(1.0)  # let any straggling retry run: still one alert
        with pipeline.database.session() as session:
            doctor = session.get(Doctor, DOCTOR[0])
            assert doctor is not None and doctor.connection == "needs_reconnect"
            alerts = notifications.alerts(session, "needs_reconnect")
            admin_rows = list(session.exec(select(OutboxMessage).where(OutboxMessage.role == "admin")))
        assert len(alerts) == 1 and len(admin_rows) == 1
        assert "[[connect-link:D-1]]" in alerts[0].body and "telemed doctors connect-link D-1" in alerts[0].body
        assert sim.stats()["counters"]["invalid_grant"] == 1
        assert sim.meetings() == []
        for appointment in pipeline.appointments().values():
            assert appointment.attention_reason and appointment.attention_reason.startswith("Zoom connection lost")

        # The doctor reconnects (what /oauth/zoom/callback does) and the work resumes.
        connect_doctor(pipeline.database, sim, DOCTOR[0], EMAIL)
        with pipeline.database.session() as session:
            resumed = zoom_tokens.unpark_after_reconnect(session, DOCTOR[0])
        for appointment_id in resumed:
            pipeline.broker.enqueue(_sync_message(appointment_id))
        pipeline.wait_settled(timeout=30)
        assert len(live_meetings(sim)) == 4


def test_no_zoom_host_keeps_the_booking(make_pipeline: Any) -> None:
    """Neither a connected doctor nor an account app: accepted, parked, one alert."""
    with ZoomSimulator() as sim:
        pipeline = make_pipeline(sim, account_app=False)
        pipeline.start_worker()
        pipeline.publish([booking("N-1", 1, later(), doctor=DOCTOR)])
        pipeline.wait_until(lambda: pipeline.appointments().get("N-1") is not None
                            and pipeline.appointments()["N-1"].state == states.NEEDS_ATTENTION, timeout=30)
        with pipeline.database.session() as session:
            # The clinic has no account app: one clinic-wide cause (workers.meetings.app_failures).
            assert [a.kind for a in notifications.alerts(session)] == ["zoom_app"]
        assert pipeline.appointments()["N-1"].attention_reason.startswith(  # type: ignore[union-attr]
            "the Zoom account app of clinic 'default' is not configured")
        assert sim.requests() == []


def _sync_message(appointment_id: str) -> Any:
    from dramatiq.message import Message

    return Message(queue_name="meetings", actor_name="sync_meeting", args=(appointment_id,), kwargs={}, options={})


def test_an_adopted_meeting_made_for_an_older_version_is_moved(make_pipeline: Any) -> None:
    """The create for version 1 reaches Zoom but its answer is lost; version 2 (a new time)
    arrives before the retry. Whichever sync adopts the meeting, Zoom ends at version 2's
    time (the chaos run once ended with the adopted meeting at version 1's time)."""
    with ZoomSimulator() as sim:
        pipeline = make_pipeline(sim)
        sim.inject_fault("drop", method="POST", path_prefix="/v2/users/", count=1)
        pipeline.start_worker()
        first, moved = later(minutes=10), later(minutes=95)
        pipeline.publish([booking("AD-1", 1, first, doctor=DOCTOR)])
        pipeline.wait_until(lambda: len(sim.meetings()) == 1, what="the create whose answer is lost")
        pipeline.publish([booking("AD-1", 2, moved, doctor=DOCTOR, type="appointment.rescheduled")])
        pipeline.wait_settled(timeout=60)
        [meeting] = live_meetings(sim)
        assert meeting["meeting"]["start_time"] == moved.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert len(sim.requests(method="POST", path_prefix="/v2/users/")) == 1  # adopted, not made again
        assert "adopted meeting from an earlier attempt" in pipeline.worker_log()
        [appointment] = pipeline.appointments().values()
        assert appointment.state == states.PROVISIONED and appointment.synced_version == 2
