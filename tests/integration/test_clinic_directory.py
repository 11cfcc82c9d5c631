"""The store-backed clinic directory: profiles built from rows (secrets decrypted), the
default clinic's as given, and a short cache, so a change is seen within its TTL."""

from __future__ import annotations

import pytest

from telemed.foundation.tenancy import ClinicProfile, UnknownClinic
from telemed.store import clinics
from telemed.store.clinic_directory import StoreDirectory
from telemed.store.clinic_tables import CLINIC_DELETED
from telemed.store.db import Database

pytestmark = pytest.mark.integration
DEFAULT = ClinicProfile("default", "default", mail_from="Ops <ops@default.example>")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_profiles_from_rows_the_default_as_given_and_a_short_cache(database: Database) -> None:
    with database.session() as s:
        clinics.add_clinic(s, "north", "North", zoom_account_id="acc", zoom_client_id="cid",
                           zoom_client_secret="canary-secret", admin_emails=["a@north.example"])
    clock = Clock()
    directory = StoreDirectory(database, DEFAULT, ttl_seconds=5, clock=clock)
    assert directory.profile("default") is DEFAULT
    north = directory.profile("north")
    assert north.zoom_account is not None and north.zoom_account.client_secret == "canary-secret"
    assert north.zoom_account_scope == "account:acc" and north.admin_emails == ("a@north.example",)
    assert "canary-secret" not in repr(north) + repr(north.zoom_account)
    with database.session() as s:
        assert "canary-secret" not in repr(clinics.get_clinic(s, "north"))  # nor in the row's
    assert list(directory.clinic_ids()) == ["default", "north"]
    with pytest.raises(UnknownClinic):
        directory.profile("south")

    with database.session() as s:
        clinics.update_clinic(s, "north", name="North Renamed")
        clinics.add_clinic(s, "south", "South")
        clinics.suspend_clinic(s, "north")
    clock.now += 4.9  # still cached: an unknown clinic too
    assert directory.profile("north").name == "North"
    with pytest.raises(UnknownClinic):
        directory.profile("south")
    assert list(directory.clinic_ids()) == ["default", "north"]
    clock.now += 0.2  # past the TTL
    assert (directory.profile("north").name, directory.profile("north").status) == ("North Renamed", "suspended")
    assert directory.profile("south").name == "South"
    assert list(directory.clinic_ids()) == ["default", "south"]  # active ones only

    with database.session() as s:
        row = clinics.get_clinic(s, "south")
        assert row is not None
        row.status = CLINIC_DELETED
        s.add(row)
    directory.forget()
    with pytest.raises(UnknownClinic):
        directory.profile("south")


def test_the_default_profile_must_be_the_default_clinics(database: Database) -> None:
    with pytest.raises(ValueError, match="default"):
        StoreDirectory(database, ClinicProfile("north", "North"))
