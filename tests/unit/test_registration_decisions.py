"""The registrant decisions and request bodies (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from telemed.store import states
from telemed.workers.policy.decisions import RegistrationStep, SyncAction, plan_sync, registration_step
from telemed.zoom import policy

T0 = datetime(2030, 1, 1, 9, tzinfo=UTC)
KEY = policy.registrant_key("P-1", "Grace Hopper", "grace@example.org")


@dataclass
class A:
    version: int = 1
    desired: str = states.SCHEDULED
    synced_version: int = 1
    start_time: datetime | None = T0
    duration_minutes: int | None = 30
    timezone: str = "UTC"


@dataclass
class M:
    start_time: datetime = T0
    duration_minutes: int = 30
    timezone: str = "UTC"
    deleted_at: datetime | None = None


def test_registration_steps() -> None:
    assert registration_step(states.REGISTRATION_OPEN, None, KEY) is RegistrationStep.REGISTER
    assert registration_step(states.REGISTRATION_REGISTERED, KEY, KEY) is RegistrationStep.NONE
    other = policy.registrant_key("P-2", "Katherine Johnson", "katherine@example.org")
    assert registration_step(states.REGISTRATION_REGISTERED, KEY, other) is RegistrationStep.REPLACE
    # Neither a meeting without registration nor a host that cannot use it is registered.
    assert registration_step(states.REGISTRATION_OFF, None, KEY) is RegistrationStep.NONE
    assert registration_step(states.REGISTRATION_FALLBACK, None, KEY) is RegistrationStep.NONE


def test_plan_registers_only_when_the_schedule_matches() -> None:
    assert plan_sync(A(), M(), registration_due=True) is SyncAction.REGISTER
    assert plan_sync(A(version=2), M(), registration_due=True) is SyncAction.REGISTER
    moved = A(version=2, start_time=T0.replace(hour=10))
    assert plan_sync(moved, M(), registration_due=True) is SyncAction.UPDATE  # the update registers too
    assert plan_sync(A(desired=states.CANCELLED, version=2), M(), registration_due=True) is SyncAction.DELETE
    assert plan_sync(A(), M()) is SyncAction.NOTHING


def test_registrant_key_follows_what_the_waiting_room_shows() -> None:
    assert policy.registrant_key("P-1", " Grace  Hopper ", "GRACE@example.org ") == KEY
    assert policy.registrant_key("P-1", "Grace M. Hopper", "grace@example.org") != KEY
    assert policy.registrant_key("P-1", "Grace Hopper", "g.hopper@example.org") != KEY
    assert len(KEY) == 32 and "grace" not in KEY


def test_registrant_request() -> None:
    assert policy.build_registrant_request("Grace Brewster Hopper", "grace@example.org") == {
        "email": "grace@example.org", "first_name": "Grace Brewster", "last_name": "Hopper"}
    assert policy.build_registrant_request("Cher", "cher@example.org") == {
        "email": "cher@example.org", "first_name": "Cher"}
    long = policy.build_registrant_request("x" * 100 + " " + "y" * 100, "a@example.org")
    assert len(long["first_name"]) == 64 and len(long["last_name"]) == 64
    with pytest.raises(ValueError, match="name"):
        policy.build_registrant_request("   ", "a@example.org")
    with pytest.raises(ValueError, match="email"):
        policy.build_registrant_request("Grace", "")


def test_which_zoom_answers_mean_no_registration() -> None:
    assert policy.registration_refused(400, 200)  # "Only available for Paid user"
    assert policy.registration_refused(400, 3000)  # registration not enabled for the meeting
    assert not policy.registration_refused(404, 3001)
    assert not policy.registration_refused(400, 3043)  # capacity: a real error, not a fallback
    assert not policy.registration_refused(429, None)
    assert policy.registration_open({"settings": {"approval_type": 0}})
    assert not policy.registration_open({"settings": {"approval_type": 2}})
    assert not policy.registration_open({})


def test_the_policy_check_covers_the_registration_mails() -> None:
    body = policy.build_meeting_request(topic="t", start_time=T0, duration_minutes=30, timezone="UTC",
                                        passcode="abc123XYZ0", marker=policy.make_marker("A-1"), registration=True)
    returned = {**body, "settings": {**body["settings"], "registrants_confirmation_email": True}}
    assert policy.check_settings(body, returned) == [
        "settings.registrants_confirmation_email: expected False, got True"]


def test_a_reassigned_appointment_gets_a_new_meeting() -> None:
    assert plan_sync(A(version=2), M(), reassigned=True) is SyncAction.REASSIGN
    assert plan_sync(A(version=2, start_time=T0.replace(hour=11)), M(), reassigned=True) is SyncAction.REASSIGN
    assert plan_sync(A(version=2, desired=states.CANCELLED), M(), reassigned=True) is SyncAction.DELETE
    assert plan_sync(A(version=2), None, reassigned=True) is SyncAction.CREATE
