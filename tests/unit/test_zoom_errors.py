"""zoom.errors: every branch of the one place that decides what a Zoom failure means."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests

from telemed.zoom.errors import (
    ZoomAuthError,
    ZoomError,
    ZoomGrantRevoked,
    ZoomNotFound,
    ZoomPermanentError,
    ZoomRateLimited,
    ZoomTransientError,
    classify_exception,
    classify_response,
    parse_retry_after,
    safe_message,
    seconds_until_utc_midnight,
)

NOW = datetime(2026, 12, 3, 22, 30, 0, tzinfo=UTC)  # 1.5 h before the daily reset
DAILY_MESSAGE = (
    "You have exceeded the daily rate limit (100) of Meeting Create/Update API requests "
    "permitted for this particular user. You may resume these requests at GMT 00:00:00."
)


def classify(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> ZoomError | None:
    return classify_response(status, headers or {}, body, NOW)


@pytest.mark.parametrize("status", [200, 201, 204])
def test_success_is_no_error(status: int) -> None:
    assert classify(status, {"id": 1}) is None


class TestRateLimits:
    def test_429_with_retry_after_seconds(self) -> None:
        error = classify(429, {"code": 429, "message": "Too many requests."}, {"Retry-After": "7"})
        assert isinstance(error, ZoomRateLimited)
        assert (error.retry_after, error.daily, error.status, error.retryable) == (
            7.0,
            False,
            429,
            True,
        )

    def test_429_with_retry_after_http_date(self) -> None:
        when = "Thu, 03 Dec 2026 22:30:42 GMT"
        error = classify(429, None, {"retry-after": when})
        assert isinstance(error, ZoomRateLimited) and error.retry_after == 42.0

    def test_429_with_retry_after_iso_date(self) -> None:
        error = classify(429, None, {"Retry-After": "2026-12-03T22:31:00Z"})
        assert isinstance(error, ZoomRateLimited) and error.retry_after == 60.0

    def test_429_without_retry_after_gives_no_hint(self) -> None:
        error = classify(
            429, {"code": 429, "message": "You have reached the maximum per-second rate limit."}
        )
        assert isinstance(error, ZoomRateLimited)
        assert error.retry_after is None and error.daily is False

    def test_daily_cap_message_waits_until_utc_midnight(self) -> None:
        error = classify(429, {"code": 429, "message": DAILY_MESSAGE})
        assert isinstance(error, ZoomRateLimited)
        assert error.daily is True
        assert error.retry_after == 90 * 60

    def test_daily_limit_header_with_retry_after_date_uses_the_date(self) -> None:
        headers = {"X-RateLimit-Type": "Daily-limit", "Retry-After": "2026-12-04T00:00:00Z"}
        error = classify(429, {"code": 429, "message": "Rate limit reached."}, headers)
        assert isinstance(error, ZoomRateLimited)
        assert error.daily is True and error.retry_after == 90 * 60

    def test_legacy_http_300_is_the_daily_cap(self) -> None:
        error = classify(300, {"code": 300, "message": "Request limit exceeded."})
        assert isinstance(error, ZoomRateLimited)
        assert error.status == 300 and error.daily is True and error.retry_after == 90 * 60

    def test_code_300_on_a_400_is_a_bad_request_not_a_rate_limit(self) -> None:
        error = classify(400, {"code": 300, "message": "Invalid parameter: occurrence_id."})
        assert type(error) is ZoomPermanentError


class TestAuth:
    def test_401_code_124_is_a_rejected_token(self) -> None:
        error = classify(401, {"code": 124, "message": "Invalid access token."})
        assert isinstance(error, ZoomAuthError) and not isinstance(error, ZoomGrantRevoked)
        assert error.token_rejected is True and error.retryable is False

    def test_other_401_is_auth_error_without_retry_hint(self) -> None:
        error = classify(
            401, {"code": 4711, "message": "Invalid access token, does not contain scopes."}
        )
        assert isinstance(error, ZoomAuthError) and error.token_rejected is False

    def test_invalid_grant_from_token_endpoint_means_revoked(self) -> None:
        error = classify(400, {"reason": "Invalid Token!", "error": "invalid_grant"})
        assert isinstance(error, ZoomGrantRevoked) and isinstance(error, ZoomAuthError)
        assert error.message == "Invalid Token!"

    def test_invalid_client_is_auth_error(self) -> None:
        error = classify(
            401, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}
        )
        assert type(error) is ZoomAuthError


class TestNotFoundAndOthers:
    def test_404_with_3001(self) -> None:
        error = classify(404, {"code": 3001, "message": "Meeting does not exist: 85746065123."})
        assert isinstance(error, ZoomNotFound) and isinstance(error, ZoomPermanentError)
        assert (error.status, error.code) == (404, 3001)
        assert "85746065123" in str(error)

    def test_code_3001_on_another_status(self) -> None:
        assert isinstance(
            classify(400, {"code": 3001, "message": "Meeting does not exist: 1."}), ZoomNotFound
        )

    def test_404_without_body(self) -> None:
        error = classify(404, None)
        assert isinstance(error, ZoomNotFound) and error.message == "Not Found"

    @pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
    def test_server_errors_are_transient(self, status: int) -> None:
        error = classify(status, None)
        assert type(error) is ZoomTransientError and error.retryable

    @pytest.mark.parametrize("status", [400, 403, 409, 422, 302])
    def test_other_client_errors_are_permanent(self, status: int) -> None:
        error = classify(status, {"code": 3000, "message": "Cannot access webinar info."})
        assert type(error) is ZoomPermanentError and not error.retryable

    def test_non_object_body_is_tolerated(self) -> None:
        assert type(classify(503, ["not", "an", "object"])) is ZoomTransientError
        assert classify(503, "<html>").message == "Service Unavailable"  # type: ignore[union-attr]

    def test_unknown_status_code_gets_a_message(self) -> None:
        assert classify(599, None).message == "HTTP 599"  # type: ignore[union-attr]


class TestSecretsStayOut:
    def test_urls_and_credentials_are_scrubbed_from_messages(self) -> None:
        zak = "eyJ0eXAiOiJKV1QiLCJzdiI6IjAwMDAwMSIsInptX3NrbSI6InptX28ybSJ9"
        body = {
            "code": 3000,
            "message": f"Bad start_url https://zoom.us/s/1?zak={zak} token {zak} passcode ok",
        }
        error = classify(400, body)
        assert error is not None
        for text in (str(error), repr(error), error.message):
            assert zak not in text and "zoom.us" not in text
        assert "passcode ok" in error.message

    def test_long_messages_are_cut(self) -> None:
        assert len(safe_message("word " * 200)) <= 200

    def test_empty_message_has_a_default(self) -> None:
        assert safe_message("   ") == "Zoom error"


class TestExceptions:
    @pytest.mark.parametrize(
        "exc",
        [
            requests.exceptions.ConnectTimeout("https://api.zoom.us/v2/x timed out"),
            requests.exceptions.ReadTimeout("read timed out"),
            TimeoutError("timed out"),
        ],
    )
    def test_timeouts_are_transient(self, exc: BaseException) -> None:
        error = classify_exception(exc)
        assert type(error) is ZoomTransientError and "timed out" in error.message

    @pytest.mark.parametrize(
        "exc",
        [
            requests.exceptions.ConnectionError("Max retries exceeded with url: /v2/meetings/1"),
            ConnectionResetError(104, "Connection reset by peer"),
            ConnectionRefusedError(),
            requests.exceptions.ChunkedEncodingError("Connection broken"),
            requests.exceptions.SSLError("EOF occurred in violation of protocol"),
            requests.exceptions.RequestException("something"),
            OSError("network unreachable"),
        ],
    )
    def test_connection_failures_are_transient(self, exc: BaseException) -> None:
        assert type(classify_exception(exc)) is ZoomTransientError

    def test_certificate_failure_is_permanent(self) -> None:
        exc = requests.exceptions.SSLError(
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
        )
        assert type(classify_exception(exc)) is ZoomPermanentError

    def test_bad_url_is_permanent(self) -> None:
        assert type(classify_exception(requests.exceptions.InvalidURL("bad"))) is ZoomPermanentError

    def test_unknown_exception_is_a_plain_non_retryable_zoom_error(self) -> None:
        error = classify_exception(ValueError("boom"))
        assert type(error) is ZoomError and not error.retryable

    def test_zoom_errors_pass_through(self) -> None:
        original = ZoomNotFound("gone", status=404, code=3001)
        assert classify_exception(original) is original

    def test_exception_text_is_not_copied(self) -> None:
        exc = requests.exceptions.ConnectionError("https://zoom.us/j/1?pwd=SECRETSECRET")
        assert "SECRET" not in str(classify_exception(exc))


class TestRetryAfterParsing:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("0", 0.0),
            ("1.5", 1.5),
            ("-5", 0.0),
            ("Thu, 03 Dec 2026 22:00:00 GMT", 0.0),  # in the past
            ("", None),
            ("   ", None),
            (None, None),
            ("soon", None),
            ("nan", None),
            ("inf", None),
        ],
    )
    def test_values(self, value: str | None, expected: float | None) -> None:
        assert parse_retry_after(value, NOW) == expected

    def test_naive_now_is_taken_as_utc(self) -> None:
        assert parse_retry_after("2026-12-03T22:30:10Z", NOW.replace(tzinfo=None)) == 10.0

    def test_midnight_arithmetic(self) -> None:
        assert seconds_until_utc_midnight(NOW) == 5400
        assert seconds_until_utc_midnight(datetime(2026, 12, 4, tzinfo=UTC)) == 86400
        berlin = timezone(timedelta(hours=1))
        assert seconds_until_utc_midnight(datetime(2026, 12, 4, 0, 30, tzinfo=berlin)) == 1800


def test_hierarchy_and_retryability() -> None:
    assert issubclass(ZoomGrantRevoked, ZoomAuthError)
    assert issubclass(ZoomNotFound, ZoomPermanentError)
    for cls in (ZoomTransientError, ZoomRateLimited, ZoomAuthError, ZoomPermanentError):
        assert issubclass(cls, ZoomError)
    assert ZoomTransientError.retryable and ZoomRateLimited.retryable
    assert not (ZoomAuthError.retryable or ZoomPermanentError.retryable or ZoomError.retryable)


def test_errors_survive_pickling() -> None:
    error = ZoomRateLimited("slow down", status=429, code=429, retry_after=3.0, daily=True)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ZoomRateLimited
    assert (copy.message, copy.status, copy.code, copy.retry_after, copy.daily) == (
        "slow down",
        429,
        429,
        3.0,
        True,
    )
    assert str(copy) == str(error)
