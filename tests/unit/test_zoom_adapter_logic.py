"""The Zoom adapter's decisions as plain functions: hosts, quotas, retries, orphans, links."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.fernet import Fernet

from telemed.foundation.connect_links import (
    ConnectTokenError,
    callback_url,
    connect_url,
    make_connect_token,
    read_connect_token,
)
from telemed.store.zoom_tokens import StoredGrant
from telemed.web.oauth import pkce_challenge
from telemed.workers.alerts import connect_link_placeholder, expand_links
from telemed.workers.hosting.hosts import ME, NO_ACCOUNT_APP, choose_host, quota_key
from telemed.workers.meetings.orphans import find_orphans
from telemed.workers.meetings.zoom_guard import definitely_not_created, quota_resets_too_late
from telemed.workers.policy.retries import (
    DAILY_RESET_SPREAD_MS,
    GiveUp,
    Retry,
    decide,
    rate_limit_delay_ms,
)
from telemed.workers.queue.work_queue import SYNC_MEETING
from telemed.zoom.errors import (
    ZoomAuthError,
    ZoomError,
    ZoomGrantRevoked,
    ZoomNotFound,
    ZoomPermanentError,
    ZoomRateLimited,
    ZoomTransientError,
)
from telemed.zoom.policy import make_marker
from telemed.zoom.user_tokens import renew_at

NOW = datetime(2026, 12, 3, 22, 30, tzinfo=UTC)  # 90 minutes before the daily reset


class TestHostChoice:
    def test_connected_doctor_hosts_as_me(self) -> None:
        assert choose_host("connected", True, "ada@clinic.example") == choose_host("connected", False, None)
        assert choose_host("connected", False, None).host == ME

    def test_account_app_hosts_as_the_zoom_user(self) -> None:
        choice = choose_host(None, True, "ada@clinic.example")
        assert (choice.mode, choice.host) == ("account", "ada@clinic.example")
        assert choose_host("needs_reconnect", True, "ada@clinic.example").mode == "account"

    def test_nobody(self) -> None:
        assert choose_host(None, False, "ada@clinic.example").mode == "none"
        assert choose_host(None, True, "").mode == "none"
        lost = choose_host("needs_reconnect", False, "ada@clinic.example")
        assert lost.mode == "reconnect" and lost.reason

    def test_quota_is_per_zoom_user_in_its_account(self) -> None:
        assert quota_key("D-7", ME, "account:acct-a") == "doctor:D-7"  # the doctor's own account
        assert quota_key("D-7", "ada@clinic.example", "account:acct-a") == "account:acct-a|ada@clinic.example"
        # The same e-mail in another clinic's account is another Zoom user, with its own count.
        assert quota_key("b/D-7", "ada@clinic.example", "account:acct-b") != quota_key(
            "D-7", "ada@clinic.example", "account:acct-a")

    def test_nobody_because_the_clinic_has_no_app_is_a_clinic_wide_cause(self) -> None:
        assert choose_host(None, False, "ada@clinic.example").cause == NO_ACCOUNT_APP
        assert choose_host(None, True, "").cause is None  # the doctor's own problem


class TestDailyQuota:
    def test_an_appointment_before_the_reset_is_parked(self) -> None:
        assert quota_resets_too_late(NOW + timedelta(minutes=30), NOW, None)
        assert not quota_resets_too_late(NOW + timedelta(hours=3), NOW, None)
        assert quota_resets_too_late(NOW + timedelta(hours=3), NOW, 4 * 3600.0)  # Zoom's Retry-After wins
        assert not quota_resets_too_late(None, NOW, None)

    def test_retry_at_the_reset_spread_over_a_minute(self) -> None:
        daily = ZoomRateLimited("cap", retry_after=5400.0, daily=True)
        delays = {rate_limit_delay_ms(daily, random.Random(seed)) for seed in range(50)}
        assert min(delays) >= 5_400_000 and max(delays) <= 5_400_000 + DAILY_RESET_SPREAD_MS
        assert len(delays) > 10

    def test_per_second_limits(self) -> None:
        hinted = ZoomRateLimited("slow", retry_after=2.0)
        assert 2000 <= rate_limit_delay_ms(hinted, random.Random(1)) <= 2250
        bare = ZoomRateLimited("slow")
        assert {1000 <= rate_limit_delay_ms(bare, random.Random(s)) <= 3000 for s in range(20)} == {True}


class TestRetryClassification:
    def test_rate_limits_retry_with_a_delay(self) -> None:
        decision = decide(ZoomRateLimited("slow", retry_after=3.0), 1, actor=SYNC_MEETING)
        assert isinstance(decision, Retry) and 3000 <= decision.delay_ms <= 3250  # type: ignore[operator]

    def test_transient_errors_take_dramatiqs_bounded_backoff(self) -> None:
        error = ZoomTransientError("bad gateway", status=502)
        # Retries middleware: exponential, jittered; the decision bounds the tries
        assert decide(error, 1, actor=SYNC_MEETING) == Retry("ZoomTransientError: bad gateway (HTTP 502)")

    @pytest.mark.parametrize("error", [ZoomPermanentError("bad", status=400), ZoomNotFound("gone", status=404),
                                       ZoomGrantRevoked("dead"), ZoomAuthError("no", status=401)])
    def test_permanent_errors_dead_letter(self, error: ZoomError) -> None:
        assert isinstance(decide(error, 1, actor=SYNC_MEETING), GiveUp)

    @pytest.mark.parametrize(("error", "certain"), [
        (ZoomRateLimited("slow"), True),  # 429
        (ZoomRateLimited("local pacer", status=None), True),  # never sent
        (ZoomRateLimited("daily", status=300, daily=True), True),
        (ZoomPermanentError("bad", status=400), True),
        (ZoomAuthError("token", status=401, code=124), True),
        (ZoomGrantRevoked("dead"), True),
        (ZoomTransientError("bad gateway", status=502), False),  # Zoom may have created it
        (ZoomTransientError("reset"), False),
        (ZoomError("bug"), False),
    ])
    def test_when_a_failed_create_certainly_made_nothing(self, error: ZoomError, certain: bool) -> None:
        assert definitely_not_created(error) is certain


class TestOrphans:
    def meeting(self, meeting_id: int, appointment: str | None, age_minutes: float, agenda_extra: str = "") -> Any:
        agenda = (make_marker(appointment) if appointment else "a clinic meeting") + agenda_extra
        created = (NOW - timedelta(minutes=age_minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"id": meeting_id, "agenda": agenda, "created_at": created}

    def test_only_old_unowned_marked_meetings_without_a_create_in_flight(self) -> None:
        meetings = [
            self.meeting(1, "A-1", 60),  # owned
            self.meeting(2, "A-1", 60),  # a duplicate of A-1: orphan
            self.meeting(3, "A-2", 2),  # too young
            self.meeting(4, "A-3", 60),  # A-3's create is in flight: it adopts this one
            self.meeting(5, None, 60),  # not ours
            self.meeting(6, "A-4", 60),  # cancelled before its create was recorded: orphan
            self.meeting(7, "A-5", 60, "f"),  # a marker followed by more hex is not our marker
        ]
        owners = {make_marker("A-1"): ("A-1", False), make_marker("A-3"): ("A-3", True),
                  make_marker("A-4"): ("A-4", False)}
        orphans = find_orphans(meetings, {1}, owners, NOW)
        assert [m["id"] for m in orphans] == [2, 6]

    def test_unparseable_creation_time_is_left_alone(self) -> None:
        odd = {"id": 9, "agenda": make_marker("A-9"), "created_at": "yesterday"}
        assert find_orphans([odd], set(), {}, NOW) == []


class TestConnectLinks:
    keys = (Fernet.generate_key().decode(), Fernet.generate_key().decode())

    def test_round_trip_and_key_rotation(self) -> None:
        token = make_connect_token(self.keys[1:], "D-7", timedelta(days=7), NOW)
        claim = read_connect_token(self.keys, token, NOW + timedelta(days=6))  # a newer key was added
        assert claim.doctor_id == "D-7" and claim.expires_at == NOW + timedelta(days=7)
        with pytest.raises(ConnectTokenError) as caught:
            read_connect_token(self.keys, token, NOW + timedelta(days=7))
        assert caught.value.reason == "expired"

    @pytest.mark.parametrize("token", ["", "x" * 2000, "abc.def", "eyJkIjoiRC03In0.forged"])
    def test_invalid(self, token: str) -> None:
        with pytest.raises(ConnectTokenError) as caught:
            read_connect_token(self.keys, token, NOW)
        assert caught.value.reason == "invalid"

    def test_signed_with_another_key_is_invalid(self) -> None:
        token = make_connect_token([Fernet.generate_key().decode()], "D-7", timedelta(days=1), NOW)
        with pytest.raises(ConnectTokenError):
            read_connect_token(self.keys, token, NOW)

    def test_urls_and_ids(self) -> None:
        assert connect_url("https://t.example/", "abc") == "https://t.example/oauth/zoom/connect?token=abc"
        assert callback_url("https://t.example") == "https://t.example/oauth/zoom/callback"
        with pytest.raises(ValueError, match="doctor id"):
            make_connect_token(self.keys, "D 7", timedelta(days=1))

    def test_alert_placeholders_become_fresh_links(self) -> None:
        settings = SimpleNamespace(fernet_keys=self.keys, public_url="https://t.example",
                                   connect_link_ttl_seconds=3600)
        text = f"Reconnect: {connect_link_placeholder('D-7')}."
        expanded = expand_links(SimpleNamespace(settings=settings), text)  # type: ignore[arg-type]
        link = expanded.removeprefix("Reconnect: ").rstrip(".")
        assert link.startswith("https://t.example/oauth/zoom/connect?token=")
        assert read_connect_token(self.keys, link.split("token=")[1]).doctor_id == "D-7"
        settings.public_url = None
        assert "telemed doctors connect-link D-7" in expand_links(SimpleNamespace(settings=settings), text)  # type: ignore[arg-type]


def test_pkce_s256_matches_rfc_7636() -> None:
    # RFC 7636, appendix B.
    assert pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_proactive_refresh_is_capped_at_half_the_lifetime() -> None:
    grant = StoredGrant("D-7", "a", "r", expires_at=1000.0, lifetime=3600.0, version=1, status="connected")
    assert renew_at(grant, 300) == 700.0
    short = StoredGrant("D-7", "a", "r", expires_at=1000.0, lifetime=4.0, version=1, status="connected")
    assert renew_at(short, 300) == 998.0
    assert "'a'" not in repr(grant) and "'r'" not in repr(grant)
