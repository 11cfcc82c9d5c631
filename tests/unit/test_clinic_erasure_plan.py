"""The decisions behind a clinic's erasure, without a database or Redis: which tables it
empties (all of them), which messages are whose, which Redis keys are the clinic's."""

from __future__ import annotations

import fnmatch

import pytest
import redis
from sqlmodel import SQLModel

import telemed.store.schema  # noqa: F401  (every table in the metadata)
from telemed.clinic_scope import key_in
from telemed.foundation.cipher import Cipher
from telemed.store.clinic_erasure import PLAN_TABLES, plan
from telemed.workers.clinic_redis import clinic_key_patterns
from telemed.workers.queue.ownership import Reference, reference
from telemed.zoom.tokens import AccountTokenProvider, account_token_keys
from telemed.zoom.user_tokens import UserTokenProvider, user_token_keys


def test_the_plan_covers_every_table_of_the_schema() -> None:
    # A new table must say how a clinic's rows in it are found (store.clinic_erasure.plan).
    assert set(SQLModel.metadata.tables) == set(PLAN_TABLES)
    steps = [step.name for step in plan("acme", "https://hooks.example/x")]
    assert steps == [t for t in PLAN_TABLES if t != "clinics"]  # the clinic row is the tombstone, last
    assert all(step.conditions for step in plan("acme"))


def test_children_go_before_what_they_point_at() -> None:
    order = {name: index for index, name in enumerate(PLAN_TABLES)}
    for table in SQLModel.metadata.tables.values():
        for key in table.foreign_keys:
            parent = key.column.table.name
            assert order[table.name] < order[parent], f"{table.name} must be emptied before {parent}"


@pytest.mark.parametrize(("actor", "args", "expected"), [
    ("process_event", ["acme/evt-1"], Reference(key="acme/evt-1")),
    ("sync_meeting", ["APT-1"], Reference(key="APT-1")),
    ("deliver_notification", [42], Reference(outbox_id=42)),
    ("notification_failed", [{"args": [42], "actor_name": "deliver_notification"}, {}], Reference(outbox_id=42)),
    ("process_zoom_webhook", [7], Reference(receipt_id=7)),
    ("deliver_notification", [True], Reference()),  # not an id
    ("sync_meeting", [], Reference()),
    ("someone_elses_actor", ["acme/x"], Reference()),
])
def test_what_a_message_names(actor: str, args: list[object], expected: Reference) -> None:
    assert reference(actor, args) == expected


def test_the_clinic_key_patterns_match_its_keys_only() -> None:
    patterns = clinic_key_patterns("tm", "acme")
    mine = ["tm:clinic:acme:waiting", "tm:lock:sync:acme/APT-1", "tm:zoom:daily-wait:acme/A:B-7"]
    others = ["tm:clinic:acme-west:waiting", "tm:lock:sync:bacme/APT-1", "tm:lock:sync:APT-1",
              "tm:clinic:bolt:acme", "other:lock:sync:acme/APT-1", "tm:meetings.msgs"]
    assert all(any(fnmatch.fnmatchcase(k, p) for p in patterns) for k in mine)
    assert not [k for k in others if any(fnmatch.fnmatchcase(k, p) for p in patterns)]


def test_token_keys_are_the_providers_own() -> None:
    client = redis.Redis()  # never connects: only the key names are read
    cipher = Cipher(["k" * 43 + "="])
    account = AccountTokenProvider("https://zoom.example/oauth/token", "acct", "client", "secret", client, cipher,
                                   namespace="tm")
    assert (account.cache_key, account.lock_key) == account_token_keys("tm", "acct", "client")
    user = UserTokenProvider("acme/D-1", store=None, oauth_url="https://zoom.example/oauth/token",  # type: ignore[arg-type]
                             client_id="c", client_secret="s", redis_client=client, cipher=cipher, namespace="tm")
    assert (user.lock_key, user.rescue_key) == user_token_keys("tm", "acme/D-1")


def test_a_clinics_own_id_becomes_its_key_and_a_typed_key_is_nobodys() -> None:
    assert key_in("acme", "APT-1") == "acme/APT-1"
    assert key_in("default", "APT-1") == "APT-1"
    assert key_in("default", "acme/APT-1") is None
    assert key_in("bolt", "acme/APT-1") is None
