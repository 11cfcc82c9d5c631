"""AccountTokenProvider against the Zoom simulator and a real (or embedded) Redis.

Several provider instances stand in for several worker processes: they share nothing but
Redis, exactly like processes on different hosts.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet
from redis.backoff import NoBackoff
from redis.retry import Retry

from telemed.foundation.cipher import Cipher
from telemed.zoom.client import ZoomClient
from telemed.zoom.errors import ZoomAppRefused, ZoomAuthError, ZoomTransientError
from telemed.zoom.simulator import ZoomSimulator
from telemed.zoom.tokens import AccountTokenProvider, StaticTokenProvider, TokenProvider

pytestmark = pytest.mark.integration


@pytest.fixture
def sim(shared_sim: ZoomSimulator) -> ZoomSimulator:
    shared_sim.reset()
    shared_sim.latency_seconds = 0.0
    shared_sim.state.token_lifetime_seconds = 3600
    return shared_sim


@pytest.fixture
def cipher() -> Cipher:
    return Cipher([Fernet.generate_key().decode()])


@pytest.fixture
def make_provider(
    sim: ZoomSimulator, redis_client: redis.Redis, redis_namespace: str, cipher: Cipher
) -> Any:
    def make(**overrides: Any) -> AccountTokenProvider:
        arguments: dict[str, Any] = {
            "oauth_url": sim.oauth_url,
            "account_id": sim.account_id,
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
            "redis_client": redis_client,
            "cipher": cipher,
            "namespace": redis_namespace,
            "timeout": 2,
        }
        arguments.update(overrides)
        return AccountTokenProvider(**arguments)

    return make


def test_protocol() -> None:
    provider = StaticTokenProvider("s3cr3t-token")
    assert isinstance(provider, TokenProvider)
    assert provider.access_token() == "s3cr3t-token"
    provider.invalidate("s3cr3t-token")  # nothing to renew from; still the same token
    assert provider.access_token() == "s3cr3t-token"
    assert "s3cr3t" not in repr(provider)


def test_unconfigured_static_provider_fails_before_sending(sim: ZoomSimulator) -> None:
    client = ZoomClient(sim.api_url, StaticTokenProvider(""))
    with pytest.raises(ZoomAuthError, match="no Zoom access token"):
        client.get_meeting(85746065123)
    assert sim.requests() == []


def test_one_grant_serves_every_process(make_provider: Any, sim: ZoomSimulator) -> None:
    first = make_provider()
    token = first.access_token()
    assert sim.state.token_status(token) == "valid"
    assert first.access_token() == token
    assert make_provider().access_token() == token  # another "process" finds it in Redis
    assert sim.grants == 1
    form = sim.requests(path_prefix="/oauth/token")[0]["form"]
    assert form == {"grant_type": "account_credentials", "account_id": sim.account_id}


def test_in_process_copy_saves_redis_round_trips(
    make_provider: Any, redis_client: redis.Redis
) -> None:
    provider = make_provider()
    provider.access_token()
    redis_client.delete(provider.cache_key)
    provider.access_token()  # served from memory: Redis is not consulted while fresh
    assert redis_client.exists(provider.cache_key) == 0


def test_cached_token_is_encrypted_in_redis(
    make_provider: Any,
    redis_client: redis.Redis,
    cipher: Cipher,
    sim: ZoomSimulator,
    redis_namespace: str,
) -> None:
    provider = make_provider()
    token = provider.access_token()
    raw = redis_client.get(provider.cache_key)
    assert isinstance(raw, bytes) and token.encode() not in raw
    assert token in cipher.decrypt(raw.decode().split(":", 1)[1])
    assert 3590_000 < redis_client.pttl(provider.cache_key) <= 3600_000
    assert provider.cache_key.startswith(redis_namespace + ":")
    assert sim.account_id not in provider.cache_key and sim.client_id not in provider.cache_key
    assert token not in repr(provider)


def test_concurrent_processes_make_exactly_one_grant(
    make_provider: Any, sim: ZoomSimulator
) -> None:
    sim.latency_seconds = 0.2  # widen the race window
    providers = [make_provider() for _ in range(12)]
    barrier = threading.Barrier(len(providers) * 2)
    tokens: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def fetch(provider: AccountTokenProvider) -> None:
        barrier.wait()
        try:
            token = provider.access_token()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            return
        with lock:
            tokens.append(token)

    # Two threads per provider: in-process and cross-process contention at once.
    threads = [threading.Thread(target=fetch, args=(p,)) for p in providers for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len(tokens) == 24 and len(set(tokens)) == 1
    assert sim.grants == 1


def test_renews_before_expiry(make_provider: Any, sim: ZoomSimulator) -> None:
    sim.state.token_lifetime_seconds = 2
    provider = make_provider(margin_seconds=1)
    first = provider.access_token()
    assert provider.access_token() == first
    time.sleep(1.1)  # inside the margin, before expiry
    second = provider.access_token()
    assert second != first and sim.grants == 2
    assert sim.state.token_status(first) == "valid"  # renewed while the old one still worked


def test_margin_never_exceeds_half_the_lifetime(make_provider: Any, sim: ZoomSimulator) -> None:
    sim.state.token_lifetime_seconds = 4
    provider = make_provider(margin_seconds=300)
    token = provider.access_token()
    assert provider.access_token() == token and make_provider().access_token() == token
    assert sim.grants == 1


def test_renewal_with_a_moving_clock(make_provider: Any, sim: ZoomSimulator) -> None:
    now = [time.time()]
    provider = make_provider(clock=lambda: now[0])
    other = make_provider(clock=lambda: now[0])
    first = provider.access_token()
    now[0] += 3600 - 300 - 1
    assert provider.access_token() == first and sim.grants == 1
    now[0] += 2  # inside the 300 s margin
    second = provider.access_token()
    assert second != first and sim.grants == 2
    assert other.access_token() == second and sim.grants == 2  # picked up from Redis


def test_waiter_uses_a_still_valid_token_while_another_renews(
    make_provider: Any, sim: ZoomSimulator, redis_client: redis.Redis
) -> None:
    now = [time.time()]
    provider = make_provider(clock=lambda: now[0])
    first = provider.access_token()
    now[0] += 3600 - 100  # in the margin, not expired
    redis_client.set(provider.lock_key, "someone-else", px=5000)
    assert make_provider(clock=lambda: now[0]).access_token() == first
    assert sim.grants == 1


def test_waiter_takes_over_from_a_crashed_renewer(
    make_provider: Any, sim: ZoomSimulator, redis_client: redis.Redis
) -> None:
    provider = make_provider()
    redis_client.set(provider.lock_key, "crashed-process", px=300)
    started = time.monotonic()
    token = provider.access_token()
    assert 0.25 < time.monotonic() - started < 3
    assert sim.state.token_status(token) == "valid" and sim.grants == 1
    assert redis_client.exists(provider.lock_key) == 0  # released after use


def test_waiter_gives_up_when_the_lock_never_frees(
    make_provider: Any, redis_client: redis.Redis
) -> None:
    provider = make_provider(timeout=0.1)  # waits at most 2 * 0.1 + 5 + 1 s
    provider._wait_limit = 0.3  # keep the test fast
    redis_client.set(provider.lock_key, "stuck", px=60_000)
    with pytest.raises(ZoomTransientError, match="timed out waiting"):
        provider.access_token()


def test_invalidate_drops_only_the_rejected_token(
    make_provider: Any, sim: ZoomSimulator, redis_client: redis.Redis
) -> None:
    one, two = make_provider(), make_provider()
    stale = one.access_token()
    one.invalidate("some-other-token")
    assert redis_client.exists(one.cache_key) == 1 and one.access_token() == stale

    two.invalidate(stale)
    fresh = two.access_token()
    assert fresh != stale and sim.grants == 2
    one.invalidate(stale)  # a late report about the old token must not drop the new one
    assert redis_client.exists(one.cache_key) == 1
    assert one.access_token() == fresh and sim.grants == 2


def test_rejected_token_gets_one_refresh_and_retry(make_provider: Any, sim: ZoomSimulator) -> None:
    client = ZoomClient(sim.api_url, make_provider())
    assert client.list_meetings("me") == []
    sim.expire_tokens()
    assert client.list_meetings("me") == []
    assert sim.grants == 2
    assert [(r["path"], r["status"]) for r in sim.requests()] == [
        ("/oauth/token", 200),
        ("/v2/users/me/meetings", 200),
        ("/v2/users/me/meetings", 401),
        ("/oauth/token", 200),
        ("/v2/users/me/meetings", 200),
    ]


def test_bad_client_secret(make_provider: Any) -> None:
    # The app itself is refused (a revoked app, a wrong secret): the workers park the
    # clinic's work on it (workers.meetings.app_failures).
    with pytest.raises(ZoomAppRefused) as caught:
        make_provider(client_secret="wrong").access_token()
    assert isinstance(caught.value, ZoomAuthError) and caught.value.status == 401
    assert "wrong" not in str(caught.value)


def test_bad_account_id(make_provider: Any) -> None:
    with pytest.raises(ZoomAppRefused) as caught:
        make_provider(account_id="nope").access_token()
    assert caught.value.status == 400


def test_a_revoked_app(make_provider: Any, sim: ZoomSimulator) -> None:
    provider = make_provider()
    token = provider.access_token()
    assert sim.revoke_app(sim.client_id) == 1  # the token it had dies with the app
    assert sim.state.token_status(token) == "unknown"
    provider.invalidate(token)
    with pytest.raises(ZoomAppRefused):
        provider.access_token()


def test_a_burst_after_a_refusal_asks_zoom_once(make_provider: Any, sim: ZoomSimulator) -> None:
    """Threads queued behind the one that was refused get the refusal, not a request each."""
    provider = make_provider(client_secret="wrong")
    failures: list[BaseException] = []

    def ask() -> None:
        try:
            provider.access_token()
        except ZoomAppRefused as exc:
            failures.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(failures) == 8 and len({id(f) for f in failures}) == 8  # each its own exception
    assert len(sim.requests(path_prefix="/oauth/token")) == 1
    # Another process's token (the app works again) ends the refusal at once.
    make_provider().access_token()
    assert provider.access_token()


def test_revoked_grant(make_provider: Any, sim: ZoomSimulator) -> None:
    sim.inject_failure(
        400, {"reason": "Invalid Token!", "error": "invalid_grant"}, path_prefix="/oauth/"
    )
    with pytest.raises(ZoomAppRefused):  # an account app has no grant but its credentials
        make_provider().access_token()


def test_token_endpoint_outage(make_provider: Any, sim: ZoomSimulator) -> None:
    sim.inject_failure(503, None, path_prefix="/oauth/")
    with pytest.raises(ZoomTransientError):
        make_provider().access_token()
    sim.inject_failure(200, {"token_type": "bearer"}, path_prefix="/oauth/")
    with pytest.raises(ZoomTransientError, match="access_token"):
        make_provider().access_token()


def test_failed_renewal_keeps_serving_the_valid_token(
    make_provider: Any, sim: ZoomSimulator
) -> None:
    now = [time.time()]
    provider = make_provider(clock=lambda: now[0])
    first = provider.access_token()
    now[0] += 3600 - 100
    sim.inject_failure(503, None, path_prefix="/oauth/", count=5)
    assert provider.access_token() == first
    assert provider.access_token() == first  # backing off: no second attempt right away
    assert len(sim.requests(path_prefix="/oauth/")) == 2
    now[0] += 99  # expired now: nothing valid left, so the outage surfaces
    with pytest.raises(ZoomTransientError):
        provider.access_token()


def test_unreadable_cache_entry_is_replaced(
    make_provider: Any, redis_client: redis.Redis, sim: ZoomSimulator
) -> None:
    provider = make_provider()
    redis_client.set(provider.cache_key, "deadbeef:not-a-fernet-token", px=60_000)
    token = provider.access_token()
    assert sim.state.token_status(token) == "valid"
    assert b"not-a-fernet-token" not in redis_client.get(provider.cache_key)  # type: ignore[operator]


def test_redis_outage_is_transient(make_provider: Any) -> None:
    dead = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    with pytest.raises(ZoomTransientError, match="Redis"):
        make_provider(redis_client=dead).access_token()


def test_configuration_is_checked(make_provider: Any) -> None:
    with pytest.raises(ValueError):
        make_provider(oauth_url="http://zoom.example/oauth")
    with pytest.raises(ValueError):
        make_provider(client_secret="")
