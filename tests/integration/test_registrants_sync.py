"""sync_meeting makes the patient the meeting's registrant, exactly once, over real HTTP
against the simulator on a real store and Redis: create, crash and retry, reschedule,
change of patient, hosts that cannot use registration, and TELEMED_PATIENT_JOIN=link."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from telemed.settings import load_settings
from telemed.store import appointments, notifications, states
from telemed.store.models import Appointment, Meeting, OutboxMessage
from telemed.store.status_view import appointment_status
from telemed.workers import alerts
from telemed.workers.meetings.sync import sync_meeting
from telemed.zoom.errors import ZoomError
from telemed.zoom.simulator import ZoomSimulator
from tests.support.contexts import cipher_database, worker_context

pytestmark = pytest.mark.integration
HOST = "ada@clinic.example"
PATIENT = ("P-1", "Grace Brewster Hopper", "grace@example.org")


@pytest.fixture
def sim() -> Iterator[ZoomSimulator]:
    with ZoomSimulator() as simulator:
        yield simulator


@pytest.fixture
def make_ctx(database_url: str, redis_url: str, redis_namespace: str, tmp_path: Path, sim: ZoomSimulator,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    made: list[Any] = []
    key = Fernet.generate_key().decode()
    database = cipher_database(database_url, [key])
    queued: list[int] = []
    monkeypatch.setattr(alerts, "deliver_soon", lambda _ctx, outbox_id: queued.append(outbox_id))

    def make(**overrides: Any) -> Any:
        settings = load_settings(
            redis_url=redis_url, redis_namespace=redis_namespace, database_url=database_url, secret_keys=key,
            data_dir=tmp_path, zoom_api_url=sim.api_url, zoom_oauth_url=sim.oauth_url,
            zoom_account_id=sim.account_id, zoom_client_id=sim.client_id, zoom_client_secret=sim.client_secret,
            **overrides,
        )
        context = worker_context(settings, database)
        context.queued_alerts = queued
        made.append(context)
        return context

    yield make
    for context in made:
        context.redis.close()
    database.dispose()


@pytest.fixture
def ctx(make_ctx: Callable[..., Any]) -> Any:
    return make_ctx()


def _later(days: int = 2) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


def _book(ctx: Any, appointment_id: str, patient: tuple[str, str, str] = PATIENT) -> None:
    with ctx.database.session() as session:
        if appointments.get_doctor(session, "D-7") is None:
            appointments.upsert_doctor(session, id="D-7", name="Dr. Ada", email=HOST, zoom_user=HOST)
        session.add(Appointment(id=appointment_id, version=1, desired=states.SCHEDULED, timezone="UTC",
                                doctor_id="D-7", patient_id=patient[0], patient_name=patient[1],
                                patient_email=patient[2], last_event_id="e1", start_time=_later(),
                                duration_minutes=30))


def _change(ctx: Any, appointment_id: str, **fields: Any) -> None:
    """A newer event, as apply_event records it."""
    with ctx.database.session() as session:
        appointment = appointments.get_appointment(session, appointment_id, for_update=True)
        assert appointment is not None
        appointment.version += 1
        appointment.state = states.PENDING
        for name, value in fields.items():
            setattr(appointment, name, value)
        appointments.save(session, appointment)


def _meeting(ctx: Any, appointment_id: str = "A-1") -> Meeting:
    with ctx.database.session() as session:
        meeting = appointments.get_meeting(session, appointment_id)
        assert meeting is not None
        session.expunge(meeting)
    return meeting


def _registrants(sim: ZoomSimulator, meeting_id: int) -> list[dict[str, Any]]:
    [view] = [m for m in sim.meetings() if m["id"] == meeting_id]
    return view["registrants"]


def _calls(sim: ZoomSimulator, method: str, suffix: str) -> int:
    return sum(1 for r in sim.requests(method=method) if r["path"].endswith(suffix) and r["status"] < 300)


def _alert_kinds(ctx: Any) -> list[str]:
    with ctx.database.session() as session:
        return [a.kind for a in notifications.alerts(session)]


def _patient_notices(ctx: Any, appointment_id: str = "A-1") -> list[tuple[int, str]]:
    with ctx.database.session() as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.appointment_id == appointment_id,
                                                        OutboxMessage.role == "patient"))
        return sorted((r.version, r.kind) for r in rows)


def _sync_until_done(ctx: Any, appointment_id: str = "A-1", attempts: int = 5) -> None:
    """As the worker does: retry a failed sync (Dramatiq) and follow a resync."""
    for _ in range(attempts):
        try:
            outcome = sync_meeting(ctx, appointment_id)
        except ZoomError:
            continue
        if not outcome.resync:
            return
    raise AssertionError("sync did not settle")


def test_a_new_meeting_registers_the_patient_with_a_link_of_their_own(ctx: Any, sim: ZoomSimulator) -> None:
    _book(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    meeting = _meeting(ctx)
    [zoom_meeting] = sim.meetings()
    settings = zoom_meeting["meeting"]["settings"]
    assert settings["approval_type"] == 0 and settings["waiting_room"] is True
    assert settings["registrants_email_notification"] is False and settings["registrants_confirmation_email"] is False
    [registrant] = _registrants(sim, meeting.zoom_meeting_id)
    assert (registrant["email"], registrant["first_name"], registrant["last_name"]) == (
        "grace@example.org", "Grace Brewster", "Hopper")
    assert meeting.registration == states.REGISTRATION_REGISTERED
    assert meeting.registrant_id == registrant["id"] and meeting.registrant_join_url == registrant["join_url"]
    assert meeting.registrant_join_url != meeting.join_url
    assert sim.join_check(meeting.registrant_join_url) == (True, "approved registrant")
    # A fresh meeting has nobody registered yet: no list call was spent to find out.
    assert _calls(sim, "GET", "/registrants") == 0 and _calls(sim, "POST", "/registrants") == 1
    assert _patient_notices(ctx) == [(1, "invite")]
    assert _alert_kinds(ctx) == []


@pytest.mark.parametrize("fault", ["reset", "drop", "timeout_answer"])
def test_one_registrant_across_a_crash_between_create_and_registration(
        ctx: Any, sim: ZoomSimulator, fault: str) -> None:
    """reset: the registrant call never arrived; drop: Zoom registered the patient and the
    answer was lost; timeout_answer: Zoom failed with a 5xx. Either way the retry adopts the
    meeting and ends with exactly one registration, then owes one invitation."""
    _book(ctx, "A-1")
    if fault == "timeout_answer":
        sim.inject_failure(503, {"code": 503, "message": "Service unavailable."}, method="POST",
                           path_prefix="/v2/meetings/")
    else:
        sim.inject_fault(fault, method="POST", path_prefix="/v2/meetings/")
    with pytest.raises(ZoomError):
        sync_meeting(ctx, "A-1")
    with ctx.database.session() as session:
        assert appointments.get_meeting(session, "A-1") is None  # nothing recorded, nothing owed
    _sync_until_done(ctx)
    meeting = _meeting(ctx)
    assert len(sim.meetings()) == 1  # adopted, not created twice
    [registrant] = _registrants(sim, meeting.zoom_meeting_id)
    assert meeting.registrant_id == registrant["id"] and meeting.registrant_join_url == registrant["join_url"]
    # A dropped registration (made, answer lost) was found by listing, not sent again.
    posts = sum(1 for r in sim.requests(method="POST") if r["path"].endswith("/registrants"))
    assert posts == (1 if fault == "drop" else 2)
    assert _patient_notices(ctx) == [(1, "invite")]


def test_a_reschedule_keeps_the_registrant_and_its_link(ctx: Any, sim: ZoomSimulator) -> None:
    _book(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    before = _meeting(ctx)
    moved = _later(3)
    _change(ctx, "A-1", start_time=moved)
    sync_meeting(ctx, "A-1")
    after = _meeting(ctx)
    assert (after.registrant_id, after.registrant_join_url) == (before.registrant_id, before.registrant_join_url)
    assert after.start_time == moved
    assert sim.join_check(after.registrant_join_url or "")[0] is True
    assert _calls(sim, "POST", "/registrants") == 1 and _calls(sim, "PUT", "/status") == 0
    assert _patient_notices(ctx) == [(1, "invite"), (2, "updated")]


@pytest.mark.parametrize("with_reschedule", [False, True])
def test_a_change_of_patient_cancels_the_old_registrant_and_registers_the_new(
        ctx: Any, sim: ZoomSimulator, with_reschedule: bool) -> None:
    _book(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    old = _meeting(ctx)
    changes: dict[str, Any] = {"patient_id": "P-2", "patient_name": "Katherine Johnson",
                               "patient_email": "katherine@example.org"}
    if with_reschedule:
        changes["start_time"] = _later(4)
    _change(ctx, "A-1", **changes)
    _sync_until_done(ctx)
    new = _meeting(ctx)
    assert new.zoom_meeting_id == old.zoom_meeting_id  # the same meeting
    assert new.registrant_id != old.registrant_id and new.registrant_join_url != old.registrant_join_url
    assert sim.join_check(old.registrant_join_url or "") == (False, "registration cancelled")
    assert sim.join_check(new.registrant_join_url or "") == (True, "approved registrant")
    approved = [r for r in _registrants(sim, new.zoom_meeting_id) if r["status"] == "approved"]
    assert [r["email"] for r in approved] == ["katherine@example.org"]
    assert _patient_notices(ctx) == [(1, "invite"), (2, "updated")]
    assert _state(ctx).synced_version == 2 and _state(ctx).state == states.PROVISIONED
    sync_meeting(ctx, "A-1")  # level-triggered: nothing left to do
    assert _calls(sim, "POST", "/registrants") == 2


def test_a_basic_host_falls_back_to_the_passcode_link_with_one_alert(ctx: Any, sim: ZoomSimulator) -> None:
    sim.set_basic_user(HOST)
    for appointment_id in ("A-1", "A-2"):
        _book(ctx, appointment_id)
        sync_meeting(ctx, appointment_id)
        meeting = _meeting(ctx, appointment_id)
        assert meeting.registration == states.REGISTRATION_FALLBACK
        assert meeting.registrant_join_url is None and meeting.registrant_id is None
        assert _state(ctx, appointment_id).state == states.PROVISIONED  # the booking stands
    assert _alert_kinds(ctx) == ["registration_fallback"]  # one per host, not per booking
    with ctx.database.session() as session:  # what telemed status, the access API and the admin page show
        assert appointment_status(session, "A-2", with_notices=False).patient_join == "fallback"  # type: ignore[union-attr]
    with ctx.database.session() as session:
        (alert,) = notifications.alerts(session)
    assert "code 200" in alert.body and HOST in alert.subject
    assert len(ctx.queued_alerts) == 1
    sim.set_basic_user(HOST, basic=False)  # licensed later: new meetings register again
    _book(ctx, "A-3")
    sync_meeting(ctx, "A-3")
    assert _meeting(ctx, "A-3").registration == states.REGISTRATION_REGISTERED


def test_an_account_that_locks_registration_off_falls_back_without_asking(ctx: Any, sim: ZoomSimulator) -> None:
    sim.lock_setting("approval_type", 2)
    _book(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    assert _meeting(ctx).registration == states.REGISTRATION_FALLBACK
    assert sum(1 for r in sim.requests() if "/registrants" in r["path"]) == 0
    assert _alert_kinds(ctx) == ["registration_fallback"]  # and no policy_mismatch: nothing is weaker


def test_patient_join_link_keeps_the_passcode_link(make_ctx: Callable[..., Any], sim: ZoomSimulator) -> None:
    ctx = make_ctx(patient_join="link")
    _book(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    assert sim.meetings()[0]["meeting"]["settings"]["approval_type"] == 2
    assert _meeting(ctx).registration == states.REGISTRATION_OFF
    assert sum(1 for r in sim.requests() if "/registrants" in r["path"]) == 0
    assert _alert_kinds(ctx) == []


def test_registration_spends_no_daily_create_update_quota(ctx: Any, sim: ZoomSimulator) -> None:
    """Zoom's per-host daily cap counts meeting creates and updates only."""
    sim.daily_limit = 1
    _book(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    assert _meeting(ctx).registration == states.REGISTRATION_REGISTERED
    assert sim.state.daily_used(HOST) == 1
    _change(ctx, "A-1", patient_id="P-2", patient_name="Katherine Johnson", patient_email="katherine@example.org")
    sync_meeting(ctx, "A-1")  # the cap is used up, and the registrant still changes
    assert _meeting(ctx).registrant_key is not None and sim.state.daily_used(HOST) == 1
    assert [r["email"] for r in _registrants(sim, _meeting(ctx).zoom_meeting_id) if r["status"] == "approved"] == [
        "katherine@example.org"]


def _state(ctx: Any, appointment_id: str = "A-1") -> Appointment:
    with ctx.database.session() as session:
        found = appointments.get_appointment(session, appointment_id)
    assert found is not None
    return found


# The mails, over real SMTP (aiosmtpd) ---------------------------------------------------


def _deliver_all(ctx: Any, appointment_id: str = "A-1") -> None:
    from telemed.workers.delivery.relay import deliver_notification

    with ctx.database.session() as session:
        ids = [r.id for r in session.exec(select(OutboxMessage).where(
            OutboxMessage.appointment_id == appointment_id, OutboxMessage.channel == "mail",
            OutboxMessage.status == states.OUTBOX_PENDING).order_by(OutboxMessage.id))]
    for outbox_id in ids:
        deliver_notification(ctx, outbox_id)


def _mails_to(server: Any, address: str) -> list[Any]:
    return [m for m in server.messages if address in str(m["To"])]


def test_the_patient_mail_holds_only_their_own_link(make_ctx: Callable[..., Any], sim: ZoomSimulator) -> None:
    from tests.support.mail_scan import calendars, everything
    from tests.support.smtp import smtp_server

    with smtp_server() as server:
        ctx = make_ctx(smtp_url=server.url())
        _book(ctx, "A-1")
        sync_meeting(ctx, "A-1")
        _deliver_all(ctx)
        first = _meeting(ctx)
        [patient_mail] = _mails_to(server, "grace@example.org")
        [doctor_mail] = _mails_to(server, HOST)
        text = everything(patient_mail)
        assert first.registrant_join_url and first.registrant_join_url in text
        assert first.join_url not in text  # not the meeting's shared link, so no one else's either
        assert "zak=" not in text and "/s/" not in text  # never a host link
        [calendar] = calendars(patient_mail)
        [event] = calendar.walk("VEVENT")
        assert str(event["LOCATION"]) == first.registrant_join_url
        assert first.registrant_join_url not in everything(doctor_mail)  # the patient's link is theirs alone

        # A change of patient: the new patient's mail carries their own new link, never the old one.
        _change(ctx, "A-1", patient_id="P-2", patient_name="Katherine Johnson", patient_email="katherine@example.org")
        sync_meeting(ctx, "A-1")
        _deliver_all(ctx)
        second = _meeting(ctx)
        [new_mail] = _mails_to(server, "katherine@example.org")
        new_text = everything(new_mail)
        assert second.registrant_join_url and second.registrant_join_url in new_text
        assert first.registrant_join_url not in new_text and second.join_url not in new_text
        assert sim.join_check(first.registrant_join_url) == (False, "registration cancelled")


def test_a_fallback_patient_mail_carries_the_passcode_link(make_ctx: Callable[..., Any], sim: ZoomSimulator) -> None:
    from tests.support.mail_scan import everything
    from tests.support.smtp import smtp_server

    sim.set_basic_user(HOST)
    with smtp_server() as server:
        ctx = make_ctx(smtp_url=server.url())
        _book(ctx, "A-1")
        sync_meeting(ctx, "A-1")
        _deliver_all(ctx)
        meeting = _meeting(ctx)
        [patient_mail] = _mails_to(server, "grace@example.org")
        text = everything(patient_mail)
        assert meeting.join_url in text and meeting.passcode in text
        assert "zak=" not in text


def test_reassignment_makes_a_new_meeting_and_registers_the_patient_again(ctx: Any, sim: ZoomSimulator) -> None:
    _book(ctx, "A-1")
    sync_meeting(ctx, "A-1")
    old = _meeting(ctx)
    with ctx.database.session() as session:
        appointments.upsert_doctor(session, id="D-8", name="Dr. Grace", email="grace@clinic.example",
                                   zoom_user="grace@clinic.example")
    _change(ctx, "A-1", doctor_id="D-8")
    _sync_until_done(ctx)
    new = _meeting(ctx)
    assert new.zoom_meeting_id != old.zoom_meeting_id and new.host == "grace@clinic.example"
    assert new.doctor_id == "D-8" and new.registration == states.REGISTRATION_REGISTERED
    [registrant] = _registrants(sim, new.zoom_meeting_id)
    assert registrant["email"] == "grace@example.org" and new.registrant_join_url == registrant["join_url"]
    assert sim.join_check(old.registrant_join_url or "") == (False, "meeting deleted")
    assert [m["id"] for m in sim.meetings(include_deleted=False)] == [new.zoom_meeting_id]
    # The patient is invited again, with the new doctor and their new link.
    assert _patient_notices(ctx) == [(1, "invite"), (2, "invite")]
    assert _state(ctx).state == states.PROVISIONED and _state(ctx).synced_version == 2
