"""zoom.policy: passcodes, request bodies, markers and the post-create settings check."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemed.zoom.policy import (
    build_meeting_request,
    build_update_request,
    check_settings,
    find_marked,
    generate_passcode,
    make_marker,
    secure_settings,
)

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 12, 3, 9, 30, tzinfo=BERLIN)


def request(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "topic": "Video consultation with Dr. Lovelace",
        "start_time": START,
        "duration_minutes": 30,
        "timezone": "Europe/Berlin",
        "passcode": "Ab3dE5gH9k",
        "marker": make_marker("A-1001"),
    }
    arguments.update(overrides)
    return build_meeting_request(**arguments)


def zoom_answer(body: dict[str, Any]) -> dict[str, Any]:
    """What Zoom returns when it honours everything we asked."""
    return {
        "id": 85746065123,
        "type": body["type"],
        "start_time": body["start_time"],
        "duration": body["duration"],
        "password": body["password"],
        "settings": {**body["settings"], "audio": "voip", "meeting_authentication": False},
    }


class TestPasscode:
    @settings(max_examples=200)
    @given(st.integers(min_value=2, max_value=10))
    def test_shape(self, length: int) -> None:
        passcode = generate_passcode(length)
        assert len(passcode) == length
        assert passcode.isascii() and passcode.isalnum()
        assert any(c.isdigit() for c in passcode) and any(c.isalpha() for c in passcode)

    def test_default_is_zoom_maximum_and_random(self) -> None:
        codes = {generate_passcode() for _ in range(500)}
        assert all(len(code) == 10 for code in codes)
        assert len(codes) == 500  # 62**10 possibilities: a repeat means a broken generator
        assert set("".join(codes)) > set("abcXYZ0189")  # draws from the whole alphabet

    @pytest.mark.parametrize("length", [0, 1, 11])
    def test_rejects_lengths_zoom_or_the_rule_cannot_take(self, length: int) -> None:
        with pytest.raises(ValueError):
            generate_passcode(length)


class TestSecureSettings:
    def test_explicit_security(self) -> None:
        assert secure_settings() == {
            "waiting_room": True,
            "join_before_host": False,
            "use_pmi": False,
            "approval_type": 2,
            "auto_recording": "none",
            "mute_upon_entry": True,
            "host_video": True,
            "participant_video": False,
            "auto_start_meeting_summary": False,
            "auto_start_ai_companion_questions": False,
        }

    def test_meeting_authentication_only_when_configured(self) -> None:
        assert "meeting_authentication" not in secure_settings()
        assert secure_settings(meeting_authentication=True)["meeting_authentication"] is True

    def test_returns_a_fresh_dict(self) -> None:
        secure_settings()["waiting_room"] = False
        assert secure_settings()["waiting_room"] is True


class TestBuildMeetingRequest:
    def test_body(self) -> None:
        body = request()
        assert body["type"] == 2
        assert body["start_time"] == "2026-12-03T08:30:00Z"  # 09:30 in Berlin is 08:30 UTC
        assert body["duration"] == 30
        assert body["timezone"] == "Europe/Berlin"
        assert body["password"] == "Ab3dE5gH9k"
        assert make_marker("A-1001") in body["agenda"]
        assert body["settings"] == secure_settings()

    def test_summer_time_and_fractions(self) -> None:
        summer = datetime(2026, 7, 1, 9, 30, 15, 999_999, tzinfo=BERLIN)
        assert request(start_time=summer)["start_time"] == "2026-07-01T07:30:15Z"

    def test_other_offsets(self) -> None:
        plus_five_thirty = timezone(timedelta(hours=5, minutes=30))
        moment = datetime(2026, 12, 3, 0, 15, tzinfo=plus_five_thirty)
        assert request(start_time=moment)["start_time"] == "2026-12-02T18:45:00Z"

    def test_rejects_naive_start_time(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            request(start_time=datetime(2026, 12, 3, 9, 30))

    def test_meeting_authentication(self) -> None:
        assert request(meeting_authentication=True)["settings"]["meeting_authentication"] is True

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("duration_minutes", 0),
            ("duration_minutes", 1441),
            ("duration_minutes", True),
            ("duration_minutes", 30.0),
            ("timezone", "Mars/Olympus"),
            ("timezone", ""),
            ("passcode", ""),
            ("passcode", "12345678901"),
            ("passcode", "abc!12"),
            ("marker", "A-1001"),
        ],
    )
    def test_rejects_bad_values(self, field: str, value: Any) -> None:
        with pytest.raises(ValueError):
            request(**{field: value})

    def test_topic_is_cut_to_zoom_limit(self) -> None:
        assert len(request(topic="x" * 300)["topic"]) == 200
        assert request(topic="   ")["topic"] == "Appointment"


def test_build_update_request() -> None:
    body = build_update_request(datetime(2026, 12, 3, 10, 0, tzinfo=UTC), 45, "UTC")
    assert body == {"start_time": "2026-12-03T10:00:00Z", "duration": 45, "timezone": "UTC"}
    with pytest.raises(ValueError):
        build_update_request(datetime(2026, 12, 3, 10, 0), 45, "UTC")


class TestMarker:
    def test_deterministic_and_distinct(self) -> None:
        assert make_marker("A-1001") == make_marker("A-1001")
        assert make_marker("A-1001") != make_marker("A-1002")
        assert "1001" not in make_marker("A-1001")

    @given(st.text(min_size=1))
    def test_shape(self, appointment_id: str) -> None:
        assert re.fullmatch(r"telemed:[0-9a-f]{20}", make_marker(appointment_id))

    def test_empty_id_rejected(self) -> None:
        with pytest.raises(ValueError):
            make_marker("")

    def test_find_marked(self) -> None:
        marker = make_marker("A-1001")
        other = make_marker("A-1002")
        meetings: list[dict[str, Any]] = [
            {"id": 1, "agenda": other},
            {"id": 2},
            {"id": 3, "agenda": None},
            {"id": 4, "agenda": f"Note\n{marker}", "created_at": "2026-12-01T08:00:00Z"},
        ]
        assert find_marked(meetings, marker) == meetings[3]
        assert find_marked(meetings[:3], marker) is None
        assert find_marked([], marker) is None

    def test_find_marked_needs_the_whole_marker(self) -> None:
        marker = make_marker("A-1001")
        assert find_marked([{"id": 1, "agenda": marker[:-1]}], marker) is None
        assert find_marked([{"id": 1, "agenda": marker + "0"}], marker) is None

    def test_duplicates_resolve_to_the_oldest(self) -> None:
        marker = make_marker("A-1001")
        newer = {"id": 10, "agenda": marker, "created_at": "2026-12-01T08:00:05Z"}
        older = {"id": 99, "agenda": marker, "created_at": "2026-12-01T08:00:01Z"}
        assert find_marked([newer, older], marker) is older


class TestCheckSettings:
    def test_all_honoured(self) -> None:
        body = request()
        assert check_settings(body, zoom_answer(body)) == []

    @pytest.mark.parametrize(
        ("setting", "value"),
        [
            ("waiting_room", False),
            ("join_before_host", True),
            ("use_pmi", True),
            ("auto_recording", "cloud"),
            ("approval_type", 0),
            ("auto_start_meeting_summary", True),
        ],
    )
    def test_overridden_setting_is_named(self, setting: str, value: Any) -> None:
        body = request()
        answer = zoom_answer(body)
        answer["settings"][setting] = value
        problems = check_settings(body, answer)
        assert len(problems) == 1 and problems[0].startswith(f"settings.{setting}:")

    def test_missing_critical_setting_is_a_mismatch_but_optional_ones_are_not(self) -> None:
        body = request()
        answer = zoom_answer(body)
        del answer["settings"]["waiting_room"]
        del answer["settings"]["auto_start_ai_companion_questions"]  # not every account has AI
        assert check_settings(body, answer) == [
            "settings.waiting_room: not reported (expected True)"
        ]

    def test_meeting_authentication_dropped(self) -> None:
        body = request(meeting_authentication=True)
        answer = zoom_answer(body)
        answer["settings"]["meeting_authentication"] = False
        assert check_settings(body, answer) == [
            "settings.meeting_authentication: expected True, got False"
        ]

    def test_passcode_missing_or_changed_without_revealing_it(self) -> None:
        body = request()
        answer = zoom_answer(body)
        answer["password"] = ""
        assert check_settings(body, answer) == ["password: missing (meeting has no passcode)"]
        answer["password"] = "Zz9Zz9Zz9Z"
        problems = check_settings(body, answer)
        assert problems == ["password: differs from the one requested"]
        assert not any(body["password"] in p or "Zz9" in p for p in problems)

    def test_silent_instant_meeting_is_caught(self) -> None:
        body = request()
        answer = zoom_answer(body)
        answer["type"] = 1
        answer["start_time"] = "2026-11-29T05:00:00Z"
        problems = check_settings(body, answer)
        assert any(p.startswith("type:") for p in problems)
        assert any(p.startswith("start_time:") for p in problems)

    def test_equal_instants_in_other_notation_match(self) -> None:
        body = request()
        answer = zoom_answer(body)
        answer["start_time"] = "2026-12-03T09:30:00+01:00"
        assert check_settings(body, answer) == []

    def test_no_settings_at_all(self) -> None:
        body = request()
        answer = zoom_answer(body)
        del answer["settings"]
        problems = check_settings(body, answer)
        assert problems[0] == "settings: missing from Zoom's answer"
        assert len(problems) == 5  # plus the four critical settings

    def test_inputs_are_not_modified(self) -> None:
        body = request()
        answer = zoom_answer(body)
        before = copy.deepcopy((body, answer))
        check_settings(body, answer)
        assert (body, answer) == before
