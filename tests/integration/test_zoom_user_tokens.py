"""A doctor's own token: rotation, single flight, 124 retries, invalid_grant, rescue.

Several provider instances stand in for several processes: they share nothing but Redis
and the database, exactly like processes on different hosts. (The same on real worker
processes: tests/integration/test_zoom_production.py.)
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet

from telemed.foundation.cipher import Cipher
from telemed.store import zoom_tokens
from telemed.store.db import Database
from telemed.store.models import Doctor
from telemed.store.zoom_tokens import DatabaseTokenStore
from telemed.zoom.client import ZoomClient
from telemed.zoom.errors import ZoomGrantRevoked, ZoomTransientError
from telemed.zoom.simulator import ZoomSimulator
from telemed.zoom.user_tokens import UserTokenProvider
from tests.support.zoom_oauth import connect_doctor

pytestmark = pytest.mark.integration
EMAIL = "ada@clinic.example"


@pytest.fixture
def sim(shared_sim: ZoomSimulator) -> ZoomSimulator:
    shared_sim.reset()
    shared_sim.token_lifetime_seconds = 3600
    shared_sim.latency_seconds = 0.0
    return shared_sim


@pytest.fixture
def cipher() -> Cipher:
    return Cipher([Fernet.generate_key().decode()])


@pytest.fixture
def make_provider(sim: ZoomSimulator, database: Database, redis_client: redis.Redis,
                  redis_namespace: str, cipher: Cipher) -> Any:
    def make(store: Any = None, **overrides: Any) -> UserTokenProvider:
        arguments: dict[str, Any] = {
            "oauth_url": sim.oauth_url, "client_id": sim.oauth_client_id,
            "client_secret": sim.oauth_client_secret, "redis_client": redis_client, "cipher": cipher,
            "namespace": redis_namespace, "timeout": 2, "margin_seconds": 300,
        }
        arguments.update(overrides)
        return UserTokenProvider("D-7", store or DatabaseTokenStore(database), **arguments)

    return make


def stored(database: Database) -> zoom_tokens.StoredGrant:
    with database.session() as session:
        grant = zoom_tokens.load_grant(session, "D-7")
    assert grant is not None
    return grant


def test_fresh_token_is_used_as_is(sim: ZoomSimulator, database: Database, make_provider: Any) -> None:
    connect_doctor(database, sim, "D-7", EMAIL)
    before = stored(database)
    provider = make_provider()
    assert provider.access_token() == before.access_token
    assert sim.grants_of("refresh_token") == 0
    assert "D-7" in repr(provider) and before.access_token not in repr(provider)


def test_proactive_refresh_rotates_and_persists_before_use(
    sim: ZoomSimulator, database: Database, make_provider: Any
) -> None:
    sim.token_lifetime_seconds = 4
    connect_doctor(database, sim, "D-7", EMAIL)
    before = stored(database)
    # margin 300 s is capped at half the lifetime: renewed 2 s before expiry, i.e. now+2 s.
    provider = make_provider()
    threading.Event().wait(2.1)
    token = provider.access_token()
    after = stored(database)
    assert token == after.access_token != before.access_token
    assert after.version == before.version + 1 and after.refresh_token != before.refresh_token
    assert sim.state.token_status(before.access_token) == "valid"  # renewed while it still worked
    client = ZoomClient(sim.api_url, provider)
    assert client.list_meetings("me") == []


def test_concurrent_processes_refresh_once(
    sim: ZoomSimulator, database: Database, make_provider: Any
) -> None:
    sim.token_lifetime_seconds = 2
    sim.latency_seconds = 0.1  # widen the race window
    connect_doctor(database, sim, "D-7", EMAIL)
    old = stored(database).access_token
    threading.Event().wait(1.2)  # past half-life: every caller wants a refresh now
    providers = [make_provider() for _ in range(4)]  # four "processes"
    barrier = threading.Barrier(16)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def call(provider: UserTokenProvider) -> None:
        barrier.wait()
        try:
            tokens.append(provider.access_token())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(providers[i % 4],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert sim.stats()["counters"].get("invalid_grant", 0) == 0
    assert sim.grants_of("refresh_token") == 1
    assert stored(database).version == 2
    # Callers that did not refresh either reused the still-valid token or waited for the new one.
    assert len(tokens) == 16 and set(tokens) <= {old, stored(database).access_token}


def test_rejected_token_forces_one_shared_refresh(
    sim: ZoomSimulator, database: Database, make_provider: Any
) -> None:
    connect_doctor(database, sim, "D-7", EMAIL)
    first, second = make_provider(), make_provider()
    client_a, client_b = ZoomClient(sim.api_url, first), ZoomClient(sim.api_url, second)
    client_a.list_meetings("me")
    client_b.list_meetings("me")
    sim.expire_tokens()  # both now hold a token Zoom answers with 401 / 124
    client_a.list_meetings("me")  # one refresh, one retry
    client_b.list_meetings("me")  # finds the pair A stored: no second refresh
    assert sim.grants_of("refresh_token") == 1
    assert stored(database).version == 2


def test_invalid_grant_marks_needs_reconnect_once(
    sim: ZoomSimulator, database: Database, make_provider: Any
) -> None:
    calls: list[tuple[str, int]] = []

    class Recording(DatabaseTokenStore):
        def mark_needs_reconnect(self, doctor_id: str, expected_version: int) -> bool:
            changed = super().mark_needs_reconnect(doctor_id, expected_version)
            calls.append((doctor_id, int(changed)))
            return changed

    connect_doctor(database, sim, "D-7", EMAIL)
    sim.revoke_user(EMAIL)  # the doctor removed the app in Zoom
    providers = [make_provider(store=Recording(database)) for _ in range(3)]
    for provider in providers:
        with pytest.raises(ZoomGrantRevoked, match="reconnect"):
            ZoomClient(sim.api_url, provider).list_meetings("me")
    assert [changed for _, changed in calls] == [1]  # later callers see the state, not Zoom
    assert stored(database).status == zoom_tokens.NEEDS_RECONNECT
    assert sim.stats()["counters"]["invalid_grant"] == 1
    with database.session() as session:
        doctor = session.get(Doctor, "D-7")
        assert doctor is not None and doctor.connection == "needs_reconnect"


def test_a_reconnect_wins_over_a_stale_refresh(
    sim: ZoomSimulator, database: Database, make_provider: Any
) -> None:
    connect_doctor(database, sim, "D-7", EMAIL)
    old = stored(database)
    sim.revoke_user(EMAIL)
    connect_doctor(database, sim, "D-7", EMAIL)  # reconnected: a new chain, version 2
    with database.session() as session:
        assert zoom_tokens.mark_needs_reconnect(session, "D-7", old.version) is False
        assert zoom_tokens.swap_tokens(session, "D-7", old.version, zoom_tokens.NewGrant("a", "r", 60)) is None
    assert stored(database).status == zoom_tokens.CONNECTED and stored(database).version == 2


def test_a_pair_zoom_rotated_survives_a_store_failure(
    sim: ZoomSimulator, database: Database, make_provider: Any
) -> None:
    connect_doctor(database, sim, "D-7", EMAIL)

    class Failing(DatabaseTokenStore):
        def swap(self, *args: Any) -> int | None:
            raise ConnectionError("database went away")

    sim.expire_tokens()
    broken = make_provider(store=Failing(database))
    with pytest.raises(ZoomTransientError, match="could not store"):
        broken.invalidate(stored(database).access_token)
        broken.access_token()
    assert sim.grants_of("refresh_token") == 1  # Zoom rotated; the old refresh token is dead
    healthy = make_provider()
    ZoomClient(sim.api_url, healthy).list_meetings("me")  # applies the parked pair
    assert sim.grants_of("refresh_token") == 1 and sim.stats()["counters"].get("invalid_grant", 0) == 0
    assert stored(database).version == 2


def test_not_connected_doctor(database: Database, make_provider: Any) -> None:
    with pytest.raises(ZoomGrantRevoked, match="has not connected"):
        make_provider().access_token()
