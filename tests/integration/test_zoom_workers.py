"""The scheduler's Zoom jobs in-process on a real store, Redis and the simulator:
refreshing idle doctors' tokens, and sweeping orphan meetings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from telemed.settings import load_settings
from telemed.store import appointments, intents, notifications, states, zoom_tokens
from telemed.store.models import Appointment, Meeting
from telemed.workers import alerts, jobs
from telemed.workers.hosting.hosts import host_quota_key
from telemed.workers.hosting.token_refresher import refresh_tokens_job
from telemed.workers.meetings.orphans import sweep_orphans_job
from telemed.zoom.policy import build_meeting_request, generate_passcode, make_marker
from telemed.zoom.simulator import ZoomSimulator
from tests.support.contexts import cipher_database, clinics_of, worker_context
from tests.support.zoom_oauth import connect_doctor

pytestmark = pytest.mark.integration
EMAIL = "ada@clinic.example"


@pytest.fixture
def sim() -> Iterator[ZoomSimulator]:
    with ZoomSimulator() as simulator:
        yield simulator


@pytest.fixture
def ctx(database_url: str, redis_url: str, redis_namespace: str, tmp_path: Path, sim: ZoomSimulator,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    key = Fernet.generate_key().decode()
    database = cipher_database(database_url, [key])
    settings = load_settings(
        redis_url=redis_url, redis_namespace=redis_namespace, database_url=database_url, secret_keys=key,
        data_dir=tmp_path, zoom_api_url=sim.api_url, zoom_oauth_url=sim.oauth_url,
        zoom_account_id=sim.account_id, zoom_client_id=sim.client_id, zoom_client_secret=sim.client_secret,
        zoom_oauth_client_id=sim.oauth_client_id, zoom_oauth_client_secret=sim.oauth_client_secret,
    )
    context = worker_context(settings, database)
    queued: list[int] = []
    monkeypatch.setattr(alerts, "deliver_soon", lambda _ctx, outbox_id: queued.append(outbox_id))  # no broker in this process
    context.queued_alerts = queued  # type: ignore[attr-defined]
    yield context
    context.redis.close()
    database.dispose()


def test_jobs_are_registered() -> None:
    names = {name for name, _, _ in jobs.JOBS}
    assert {"zoom_tokens", "zoom_orphans"} <= names


def _age_token(ctx: Any, doctor_id: str, left: timedelta) -> None:
    """As if the doctor's hour-long token had been idle until ``left`` remains."""
    with ctx.database.session() as session:
        row = session.get(zoom_tokens.DoctorZoomToken, doctor_id)
        row.expires_at = datetime.now(UTC) + left
        session.add(row)


def test_idle_tokens_are_refreshed_before_expiry(ctx: Any, sim: ZoomSimulator) -> None:
    connect_doctor(ctx.database, sim, "D-7", EMAIL)
    _age_token(ctx, "D-7", timedelta(minutes=5))  # within margin (300 s) + two passes (30 s)
    connect_doctor(ctx.database, sim, "D-8", "grace@clinic.example")  # not due for an hour
    report = refresh_tokens_job(ctx)
    assert report == {"tokens_refreshed": 1, "tokens_revoked": 0, "token_refresh_failed": 0}
    with ctx.database.session() as session:
        assert zoom_tokens.load_grant(session, "D-7").version == 2  # type: ignore[union-attr]
        assert zoom_tokens.load_grant(session, "D-8").version == 1  # type: ignore[union-attr]
    assert refresh_tokens_job(ctx)["tokens_refreshed"] == 0  # now fresh for an hour


def test_a_revoked_idle_doctor_is_found_by_the_refresher(ctx: Any, sim: ZoomSimulator) -> None:
    connect_doctor(ctx.database, sim, "D-7", EMAIL)
    _age_token(ctx, "D-7", timedelta(minutes=1))
    with ctx.database.session() as session:
        session.add(_appointment("A-1"))
    sim.revoke_user(EMAIL)
    assert refresh_tokens_job(ctx)["tokens_revoked"] == 1
    assert refresh_tokens_job(ctx) == {"tokens_refreshed": 0, "tokens_revoked": 0, "token_refresh_failed": 0}
    with ctx.database.session() as session:
        doctor = appointments.get_doctor(session, "D-7")
        appointment = appointments.get_appointment(session, "A-1")
        found = notifications.alerts(session)
    assert doctor is not None and doctor.connection == "needs_reconnect"
    assert appointment is not None and appointment.state == states.NEEDS_ATTENTION
    assert [a.kind for a in found] == ["needs_reconnect"] and "A-1" in found[0].body
    assert len(ctx.queued_alerts) == 1


def test_orphans_are_swept(ctx: Any, sim: ZoomSimulator) -> None:
    with ctx.database.session() as session:
        appointments.upsert_doctor(session, id="D-7", name="Dr. Ada", email=EMAIL, zoom_user=EMAIL)
        for appointment_id in ("A-1", "A-2", "A-3"):
            session.add(_appointment(appointment_id))
        session.flush()
        for appointment_id in ("A-1", "A-2", "A-3"):
            intent, _ = intents.begin_intent(session, appointment_id=appointment_id,
                                             marker=make_marker(appointment_id), host=EMAIL)
            if appointment_id != "A-3":  # A-3's create is still in flight
                intents.close_intent(session, intent)
    zoom = ctx.zoom
    made = {name: zoom.create_meeting(EMAIL, _body(appointment))
            for name, appointment in [("owned", "A-1"), ("duplicate", "A-1"), ("cancelled", "A-2"),
                                      ("in_flight", "A-3"), ("young", "A-2")]}
    foreign = zoom.create_meeting(EMAIL, {"topic": "not ours", "type": 2,
                                          "start_time": _later().strftime("%Y-%m-%dT%H:%M:%SZ")})
    long_ago = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # far past the grace
    for name, meeting in made.items():
        if name != "young":  # everything else was created long ago
            sim.state.meetings[meeting["id"]].meeting["created_at"] = long_ago
    sim.state.meetings[foreign["id"]].meeting["created_at"] = long_ago
    with ctx.database.session() as session:
        session.add(Meeting(appointment_id="A-1", zoom_meeting_id=made["owned"]["id"], host=EMAIL,
                            join_url="https://zoom.us/j/1", passcode="x", start_time=_later(),
                            duration_minutes=30, timezone="UTC", synced_version=1))
    report = sweep_orphans_job(ctx)
    assert report == {"hosts_checked": 1, "orphans_deleted": 2, "orphan_sweep_failed": 0}
    live = {m["id"] for m in sim.meetings(include_deleted=False)}
    assert live == {made["owned"]["id"], made["in_flight"]["id"], made["young"]["id"], foreign["id"]}


def _later() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)


def _body(appointment_id: str) -> dict[str, Any]:
    return build_meeting_request(topic="t", start_time=_later(), duration_minutes=30, timezone="UTC",
                                 passcode=generate_passcode(), marker=make_marker(appointment_id))


def _appointment(appointment_id: str) -> Appointment:
    return Appointment(id=appointment_id, version=1, desired=states.SCHEDULED, timezone="UTC", doctor_id="D-7",
                       patient_id="P-1", patient_name="Grace", patient_email="grace@example.org",
                       last_event_id="e1", start_time=_later(), duration_minutes=30)


# sync_meeting's Zoom side, in-process ---------------------------------------------------


def _book(ctx: Any, appointment_id: str, start: datetime | None = None, zoom_user: str = EMAIL) -> None:
    with ctx.database.session() as session:
        if appointments.get_doctor(session, "D-7") is None:
            appointments.upsert_doctor(session, id="D-7", name="Dr. Ada", email=EMAIL, zoom_user=zoom_user)
        appointment = _appointment(appointment_id)
        if start is not None:
            appointment.start_time = start
        session.add(appointment)


def _state(ctx: Any, appointment_id: str) -> Appointment:
    with ctx.database.session() as session:
        found = appointments.get_appointment(session, appointment_id)
    assert found is not None
    return found


def _alert_kinds(ctx: Any) -> list[str]:
    with ctx.database.session() as session:
        return [a.kind for a in notifications.alerts(session)]


def test_a_connected_doctor_hosts_with_their_own_token(ctx: Any, sim: ZoomSimulator) -> None:
    from telemed.workers.meetings.sync import sync_meeting

    connect_doctor(ctx.database, sim, "D-7", EMAIL)
    _book(ctx, "A-1", zoom_user="someone-else@clinic.example")
    sync_meeting(ctx, "A-1")
    (created,) = sim.meetings()
    assert created["host"] == "me" and created["meeting"]["host_email"] == EMAIL
    with ctx.database.session() as session:
        meeting = appointments.get_meeting(session, "A-1")
    assert meeting is not None and meeting.host == "me"
    assert _state(ctx, "A-1").state == states.PROVISIONED
    assert sim.requests(path_prefix="/v2/")[0]["user"] == EMAIL  # sent with the doctor's token


def test_otherwise_the_account_hosts_as_the_zoom_user(ctx: Any, sim: ZoomSimulator) -> None:
    from telemed.workers.meetings.sync import sync_meeting

    _book(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    (created,) = sim.meetings()
    assert created["host"] == EMAIL and "user" not in sim.requests()[0]


def test_policy_mismatch_alerts_and_counts(ctx: Any, sim: ZoomSimulator) -> None:
    from telemed.workers.meetings.sync import sync_meeting
    from telemed.workers.metrics import POLICY_MISMATCHES

    before = POLICY_MISMATCHES.labels(setting="settings.waiting_room")._value.get()
    sim.lock_setting("waiting_room", False)  # an account lock overrides what we ask
    _book(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    assert POLICY_MISMATCHES.labels(setting="settings.waiting_room")._value.get() == before + 1
    assert _alert_kinds(ctx) == ["policy_mismatch"]
    with ctx.database.session() as session:
        (alert,) = notifications.alerts(session)
    assert "settings.waiting_room: expected True, got False" in alert.body and alert.appointment_id == "A-1"
    assert _state(ctx, "A-1").state == states.PROVISIONED  # the meeting stands; a person looks at it


def test_daily_quota_retries_at_the_reset_or_parks(ctx: Any, sim: ZoomSimulator) -> None:
    from telemed.workers.meetings.sync import sync_meeting
    from telemed.workers.policy.retries import Retry, decide
    from telemed.workers.queue.work_queue import SYNC_MEETING
    from telemed.zoom.errors import ZoomRateLimited

    for _ in range(ctx.settings.zoom_daily_calls_per_host):
        ctx.daily_quota.reserve(host_quota_key(ctx, "D-7", EMAIL))  # the host's 100 calls of today are spent
    tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    _book(ctx, "A-LATER", start=tomorrow)
    with pytest.raises(ZoomRateLimited) as caught:
        sync_meeting(ctx, "A-LATER")
    retry = decide(caught.value, 1, actor=SYNC_MEETING)
    assert isinstance(retry, Retry) and retry.delay_ms >= caught.value.retry_after * 1000  # type: ignore[operator]
    assert sync_meeting(ctx, "A-LATER").action.value == "nothing"  # reconciler passes wait quietly
    assert sim.requests() == [] and _state(ctx, "A-LATER").state == states.PENDING

    soon = datetime.now(UTC) + timedelta(minutes=1)  # starts before any reset
    if soon.date() != datetime.now(UTC).date():
        pytest.skip("too close to midnight UTC for this case")
    _book(ctx, "A-SOON", start=soon)
    sync_meeting(ctx, "A-SOON")
    parked = _state(ctx, "A-SOON")
    assert parked.state == states.NEEDS_ATTENTION and "daily create/update limit" in (parked.attention_reason or "")
    sync_meeting(ctx, "A-SOON")  # a retried message does not alert twice
    assert _alert_kinds(ctx) == ["quota_exhausted"]


def test_zoom_refusal_parks_and_dead_letters(ctx: Any, sim: ZoomSimulator) -> None:
    from telemed.workers.meetings.sync import sync_meeting
    from telemed.workers.policy.retries import PermanentFailure

    sim.inject_failure(400, {"code": 3161, "message": "Meeting hosting and scheduling capabilities are not allowed."},
                       method="POST", path_prefix="/v2/")
    _book(ctx, "A-1")
    with pytest.raises(PermanentFailure, match="Zoom refused the create"):
        sync_meeting(ctx, "A-1")
    assert _state(ctx, "A-1").state == states.NEEDS_ATTENTION
    assert _alert_kinds(ctx) == ["zoom_refused"]
    with ctx.database.session() as session:
        assert intents.open_intent(session, "A-1") is None  # a refusal made nothing: no search next time


def test_no_host_parks_once(ctx: Any, sim: ZoomSimulator) -> None:
    from telemed.workers.meetings.sync import sync_meeting

    ctx.settings = ctx.settings.model_copy(update={"zoom_account_id": None})
    ctx.clinics = clinics_of(ctx.settings)  # the default clinic has no account app now
    _book(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    _book(ctx, "A-2")
    sync_meeting(ctx, "A-2")
    assert _state(ctx, "A-1").state == _state(ctx, "A-2").state == states.NEEDS_ATTENTION
    # No account app is the clinic's cause: one alert, however many appointments wait.
    assert _alert_kinds(ctx) == ["zoom_app"] and sim.requests() == []


def test_a_doctor_without_a_zoom_user_parks_with_their_own_alert(ctx: Any, sim: ZoomSimulator) -> None:
    from telemed.workers.meetings.sync import sync_meeting

    _book(ctx, "A-1", zoom_user="")
    sync_meeting(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    assert _state(ctx, "A-1").state == states.NEEDS_ATTENTION
    assert _alert_kinds(ctx) == ["no_zoom_host"] and sim.requests() == []


# The doctor's notice when Zoom loses the meeting on the way -------------------------------


def _doctor_invite(ctx: Any, appointment_id: str) -> int:
    from telemed.store import outbox

    with ctx.database.session() as session:
        [row] = [m for m in outbox.messages_for(session, appointment_id) if m.role == "doctor" and m.kind == "invite"]
        assert row.id is not None
        return row.id


def _outbox_row(ctx: Any, outbox_id: int) -> Any:
    from telemed.store import outbox

    with ctx.database.session() as session:
        return outbox.get_message(session, outbox_id)


def test_a_cancel_applied_while_the_start_url_is_fetched_supersedes_the_notice(
        ctx: Any, sim: ZoomSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the crash-and-fault run: the notice was read while the appointment was
    live, another worker cancelled it and deleted the meeting, then Zoom's 404 for the
    start_url failed the notice for good and alerted an admin over a normal race."""
    import telemed.workers.delivery.mail
    from telemed.workers.delivery.relay import deliver_notification
    from telemed.workers.meetings.sync import sync_meeting

    _book(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    outbox_id = _doctor_invite(ctx, "A-1")
    fetch = telemed.workers.delivery.mail.fresh_start_url

    def cancelled_meanwhile(*args: Any) -> str:  # what a second worker does in between
        with ctx.database.session() as session:
            appointment = appointments.get_appointment(session, "A-1")
            assert appointment is not None
            appointment.desired, appointment.version = states.CANCELLED, 2
            session.add(appointment)
        sync_meeting(ctx, "A-1")
        assert sim.meetings(include_deleted=False) == []
        return fetch(*args)

    monkeypatch.setattr(telemed.workers.delivery.mail, "fresh_start_url", cancelled_meanwhile)
    assert deliver_notification(ctx, outbox_id).status == "superseded"
    row = _outbox_row(ctx, outbox_id)
    assert row.status == "superseded" and "cancelled" in (row.last_error or "")
    assert _alert_kinds(ctx) == []


def test_a_meeting_missing_in_zoom_but_live_in_the_store_is_retried_not_failed(
        ctx: Any, sim: ZoomSimulator) -> None:
    import dramatiq

    from telemed.workers.delivery.relay import deliver_notification
    from telemed.workers.meetings.sync import sync_meeting

    _book(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    outbox_id = _doctor_invite(ctx, "A-1")
    [meeting] = sim.meetings()
    assert sim.state.delete_meeting(int(meeting["id"]))  # deleted in Zoom by hand
    with pytest.raises(dramatiq.Retry):
        deliver_notification(ctx, outbox_id)
    row = _outbox_row(ctx, outbox_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "the meeting is no longer in Zoom"
    assert _alert_kinds(ctx) == []
