"""The admin page's gatekeeping over real HTTP: sign-in, session, CSRF, revocation."""

from __future__ import annotations

import re

import httpx
import pytest
import redis

from telemed.store import api_keys
from telemed.store.db import Database
from tests.support.webapp import Recorder, running_app, settings_for, web_services

pytestmark = pytest.mark.integration


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert match, html
    return match.group(1)


@pytest.fixture
def admin(database: Database, redis_client: redis.Redis, redis_namespace: str):  # type: ignore[no-untyped-def]
    with database.session() as s:
        _, admin_key = api_keys.create_key(s, "admin", "test")
        _, booking_key = api_keys.create_key(s, "booking", "test")
    with running_app(web_services(settings_for(redis_namespace), database, redis_client, Recorder())) as url:
        yield url, admin_key, booking_key, database


def _sign_in(client: httpx.Client, url: str, key: str) -> httpx.Response:
    form = client.get(f"{url}/admin/login")
    return client.post(f"{url}/admin/login", data={"api_key": key, "csrf": _csrf(form.text)})


def test_sign_in_with_an_admin_key_only(admin) -> None:  # type: ignore[no-untyped-def]
    url, admin_key, booking_key, _ = admin
    with httpx.Client() as client:
        first = client.get(f"{url}/admin")
        assert first.status_code == 303 and first.headers["location"] == "/admin/login"
        refused = _sign_in(client, url, booking_key)
        assert refused.status_code == 401 and "not an active admin API key" in refused.text
        assert _sign_in(client, url, "tmk_nonsense").status_code == 401
        signed_in = _sign_in(client, url, admin_key)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/admin/appointments"
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
        page = client.get(f"{url}/admin/appointments")
        assert page.status_code == 200 and "Appointments" in page.text
        assert page.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in page.headers[
            "content-security-policy"]
        assert admin_key not in page.text


def test_posts_need_the_csrf_token(admin) -> None:  # type: ignore[no-untyped-def]
    url, admin_key, _, _ = admin
    with httpx.Client() as client:
        no_token = client.post(f"{url}/admin/login", data={"api_key": admin_key})
        assert no_token.status_code == 401 and "expired" in no_token.text
        forged = client.post(f"{url}/admin/login", data={"api_key": admin_key, "csrf": "0" * 64})
        assert forged.status_code == 401
        _sign_in(client, url, admin_key)
        answer = client.post(f"{url}/admin/dead-letters/some-id/retry", data={"csrf": "0" * 64})
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/problems?done=csrf"
        token = _csrf(client.get(f"{url}/admin/appointments").text)
        gone = client.post(f"{url}/admin/dead-letters/some-id/retry", data={"csrf": token})
        assert gone.headers["location"] == "/admin/problems?done=gone"
        link = client.post(f"{url}/admin/doctors/D-1/connect-link", data={"csrf": token})
        assert link.status_code == 404 and "There is no such doctor." in link.text


def test_revoking_the_key_ends_the_session(admin) -> None:  # type: ignore[no-untyped-def]
    url, admin_key, _, database = admin
    with httpx.Client() as client:
        _sign_in(client, url, admin_key)
        assert client.get(f"{url}/admin/appointments").status_code == 200
        with database.session() as s:
            assert api_keys.revoke_key(s, admin_key.split("_")[1])
        assert client.get(f"{url}/admin/appointments").status_code == 303
    with httpx.Client() as stranger:
        stranger.cookies.set("telemed_admin", "forged.cookie.value", path="/admin")
        assert stranger.get(f"{url}/admin/appointments").status_code == 303


def test_a_cookie_saved_before_sign_out_is_refused(admin) -> None:  # type: ignore[no-untyped-def]
    url, admin_key, _, _ = admin
    with httpx.Client() as client:
        _sign_in(client, url, admin_key)
        saved = client.cookies.get("telemed_admin", path="/admin")
        assert saved and client.get(f"{url}/admin/appointments").status_code == 200
        signed_out = client.post(f"{url}/admin/logout", data={"csrf": _csrf(client.get(f"{url}/admin/appointments").text)})
        assert signed_out.status_code == 303 and signed_out.headers["location"] == "/admin/login"
    with httpx.Client() as replay:
        replay.cookies.set("telemed_admin", saved, path="/admin")
        answer = replay.get(f"{url}/admin/appointments")
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"
        retry = replay.post(f"{url}/admin/dead-letters/some-id/retry", data={"csrf": "0" * 64})
        assert retry.status_code == 303 and retry.headers["location"] == "/admin/login"


def test_another_session_of_the_same_key_survives_a_sign_out(admin) -> None:  # type: ignore[no-untyped-def]
    url, admin_key, _, _ = admin
    with httpx.Client() as first, httpx.Client() as second:
        _sign_in(first, url, admin_key)
        _sign_in(second, url, admin_key)
        first.post(f"{url}/admin/logout", data={"csrf": _csrf(first.get(f"{url}/admin/appointments").text)})
        assert second.get(f"{url}/admin/appointments").status_code == 200


def test_sign_in_without_redis_is_refused_plainly(database: Database, redis_namespace: str) -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    with database.session() as s:
        _, admin_key = api_keys.create_key(s, "admin", "test")
    dead_redis = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    with running_app(web_services(settings_for(redis_namespace), database, dead_redis)) as url, \
            httpx.Client() as client:
        answer = _sign_in(client, url, admin_key)
        assert answer.status_code == 503 and "Redis does not answer" in answer.text
        assert "telemed_admin=" not in answer.headers.get("set-cookie", "").replace("telemed_admin_login", "")
