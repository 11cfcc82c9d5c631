"""How each ``telemed`` command is exercised in a clinic's scope against a clinic's resource,
for the isolation matrix (tests/integration/test_isolation_matrix.py).

The principal of a command is its scope: ``--clinic ID``, or the clinic its CLINIC_ID
argument names. Each exerciser runs the command in-process (Click's runner, the
deployment's environment), asserts that it reaches the resource exactly when the resource
is the scope's ("not found" like a missing one otherwise) and returns what the command
printed, and whose scope that was, for the matrix's scan for other clinics' data.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from click.testing import CliRunner, Result

from telemed.cli import main
from telemed.events.publish import configure as configure_publisher
from telemed.foundation.connect_links import read_connect_token
from telemed.foundation.tenancy import scoped
from telemed.settings import reset_settings_cache
from telemed.store import api_keys, appointments, clinics, ingress_keys, notifications
from telemed.store.clinic_tables import Clinic
from tests.support.isolation_routes import event_about, inbox_clinics, signed_event
from tests.support.isolation_world import ClinicData, World, seed_throwaway


@dataclass(frozen=True)
class Shown:
    """What a command printed, in whose scope."""

    outputs: tuple[str, ...]
    scope: str


Run = Callable[..., Result]
Exerciser = Callable[[World, ClinicData, ClinicData, Run], Shown]


def runner(world: World) -> Run:
    """Run ``telemed`` as a fresh process would: its settings and ``events.publish``'s
    default publisher built from this deployment's environment, not kept from an earlier one."""
    def run(*args: str, input: str | None = None) -> Result:
        reset_settings_cache()
        configure_publisher(None)
        try:
            return CliRunner().invoke(main, list(args), input=input, env=world.env())
        finally:
            reset_settings_cache()
            configure_publisher(None)

    return run


def _shown(scope: ClinicData, *results: Result) -> Shown:
    return Shown(tuple(r.output for r in results), scope.id)


def _mine(scope: ClinicData, resource: ClinicData) -> bool:
    return scope.id == resource.id


def _read(world: World, key: str, resource: ClinicData) -> httpx.Response:
    return httpx.get(f"{world.url}/v1/appointments/{resource.appointment}",
                     headers={"Authorization": f"Bearer {key}"}, timeout=10)


def _post_event(world: World, resource: ClinicData, key_id: str, secret: str) -> int:
    """An event about the resource, naming its clinic, signed with the key: the door's answer."""
    _, body = event_about(resource, resource.id)
    return httpx.post(f"{world.url}/v1/events", content=body, headers=signed_event(secret, body, key_id),
                      timeout=10).status_code


# Data commands (--clinic) --------------------------------------------------------------------


def status(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result = run("status", resource.appointment, "--clinic", scope.id)
    if _mine(scope, resource):
        assert result.exit_code == 0 and str(resource.meeting_id) in result.output, result.output
        return _shown(scope, result)
    missing = run("status", "NOPE-1", "--clinic", scope.id)
    assert result.exit_code == missing.exit_code == 1, result.output
    assert result.output == missing.output.replace("NOPE-1", resource.appointment)
    return _shown(scope, result, missing)


def publish(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    """An operator's event into the scope's clinic: about the resource's appointment id,
    named by its clinic's label; it lands in the scope, never in the resource's clinic."""
    event_id, body = event_about(resource, resource.id)
    result = run("publish", "-", "--clinic", scope.id, input=body.decode())
    assert result.exit_code == 0 and "accepted" in result.output, result.output
    assert inbox_clinics(world, event_id) == {scoped(scope.id, event_id): scope.id}
    with world.database.session() as s:
        theirs = appointments.get_appointment(s, resource.key)
        assert theirs is not None and theirs.version == 1
    return _shown(scope, result)


def doctors_list(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result = run("doctors", "list", "--clinic", scope.id)
    assert result.exit_code == 0, result.output
    assert (f"Dr Other {resource.mark}" in result.output) == _mine(scope, resource)
    assert (resource.other_doctor in result.output) == _mine(scope, resource)
    return _shown(scope, result)


def doctors_connect_link(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result = run("doctors", "connect-link", resource.other_doctor, "--clinic", scope.id)
    if _mine(scope, resource):
        assert result.exit_code == 0, result.output
        token = result.stdout.strip().split("token=", 1)[1]
        claim = read_connect_token(world.settings.fernet_keys, token)
        assert claim.doctor_id == scoped(resource.id, resource.other_doctor)
        return _shown(scope, result)
    missing = run("doctors", "connect-link", "NOPE-1", "--clinic", scope.id)
    assert result.exit_code == missing.exit_code == 2 and "not known yet" in result.output, result.output
    assert result.output == missing.output.replace("NOPE-1", resource.other_doctor)
    return _shown(scope, result, missing)


def _letter_run(world: World, scope: ClinicData, resource: ClinicData,
                act: Callable[[str], Result]) -> tuple[Result, str, bool]:
    letter = world.dead_letter(resource)
    try:
        result = act(letter)
        return result, letter, world.is_dead(letter)
    finally:
        world.drop_letter(letter)


def dlq_list(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result, letter, _ = _letter_run(world, scope, resource, lambda _: run("dlq", "list", "--clinic", scope.id))
    assert result.exit_code == 0, result.output
    assert (letter in result.output) == _mine(scope, resource)
    return _shown(scope, result)


def dlq_show(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result, letter, _ = _letter_run(world, scope, resource,
                                    lambda letter: run("dlq", "show", letter, "--clinic", scope.id))
    if _mine(scope, resource):
        assert result.exit_code == 0 and f'sync_meeting("{resource.appointment}")' in result.output, result.output
        return _shown(scope, result)
    missing = run("dlq", "show", "NOPE-1", "--clinic", scope.id)
    assert result.exit_code == missing.exit_code == 1
    assert result.output == missing.output.replace("NOPE-1", letter)
    return _shown(scope, result, missing)


def dlq_retry(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result, letter, still_dead = _letter_run(world, scope, resource,
                                             lambda letter: run("dlq", "retry", letter, "--clinic", scope.id))
    if _mine(scope, resource):
        assert result.exit_code == 0 and not still_dead, result.output
    else:
        assert result.exit_code == 1 and still_dead and f"no dead letter with id {letter}" in result.output
    return _shown(scope, result)


def dlq_purge(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    own = world.dead_letter(scope)
    try:
        result, _, still_dead = _letter_run(world, scope, resource,
                                            lambda _: run("dlq", "purge", "--clinic", scope.id, "--yes"))
        assert result.exit_code == 0 and not world.is_dead(own), result.output
        assert still_dead != _mine(scope, resource)
    finally:
        world.drop_letter(own)
    return _shown(scope, result)


def _webhook_switch(world: World, resource: ClinicData, run_it: Callable[[], Result]) -> tuple[Result, bool]:
    """Run a webhook command while the resource's clinic's webhook is disabled (as the
    delivery worker disables one that answered 410): the result, and whether it still is."""
    with world.database.session() as s:
        assert notifications.disable_webhook(s, resource.webhook_url, "410 Gone", resource.id)
    try:
        result = run_it()
        with world.database.session() as s:
            return result, notifications.webhook_disabled(s, resource.webhook_url, resource.id)
    finally:
        with world.database.session() as s:
            notifications.enable_webhook(s, resource.webhook_url, resource.id)


def webhook_status(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result, _ = _webhook_switch(world, resource, lambda: run("webhook", "status", "--clinic", scope.id))
    if _mine(scope, resource):
        assert result.exit_code == 1 and result.output.startswith("disabled"), result.output
    else:
        assert result.exit_code == 0 and result.output.strip() == "enabled", result.output
    return _shown(scope, result)


def webhook_enable(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result, still_disabled = _webhook_switch(world, resource, lambda: run("webhook", "enable", "--clinic", scope.id))
    assert result.exit_code == 0, result.output
    assert still_disabled != _mine(scope, resource)
    assert ("webhook enabled" in result.output) == _mine(scope, resource), result.output
    return _shown(scope, result)


# API keys ------------------------------------------------------------------------------------


def keys_create(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result = run("keys", "create", "--role", "admin", "--clinic", scope.id, "--label", "matrix")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[0]
    try:
        answer = _read(world, key, resource)
        assert answer.status_code == (200 if _mine(scope, resource) else 404), answer.text
    finally:
        with world.database.session() as s:
            api_keys.revoke_key(s, key.split("_")[1])
    return _shown(scope, result)


def keys_list(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result = run("keys", "list", "--clinic", scope.id)
    assert result.exit_code == 0, result.output
    for key in resource.keys.values():
        assert (key.split("_")[1] in result.output) == _mine(scope, resource)
    return _shown(scope, result)


def keys_revoke(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    """Revoking one of the scope's keys ends that key only; the resource's clinic's keys work on."""
    with world.database.session() as s:
        row, fresh = api_keys.create_key(s, "admin", "to revoke", clinic_id=scope.id)
        prefix = row.prefix
    result = run("keys", "revoke", prefix)
    assert result.exit_code == 0, result.output
    assert _read(world, fresh, scope).status_code == 401
    assert _read(world, resource.keys["admin"], resource).status_code == 200
    return _shown(scope, result)


# The clinic registry -------------------------------------------------------------------------


def _row(world: World, clinic: ClinicData) -> Clinic:
    with world.database.session() as s:
        row = clinics.get_clinic(s, clinic.id)
        assert row is not None
        s.expunge(row)
        return row


def clinics_add(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    """Adding a clinic under a taken id is refused and changes no clinic."""
    result = run("clinics", "add", scope.id, "--name", "Intruder Clinic", "--webhook-url",
                 "https://intruder.example/hook")
    assert result.exit_code == 2 and "is taken" in result.output, result.output
    row = _row(world, resource)
    assert (row.name, row.webhook_url) == (f"{resource.mark} Clinic", resource.webhook_url)
    return _shown(scope, result)


def clinics_update(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    desk = f"Desk {uuid.uuid4().hex[:8]}"
    result = run("clinics", "update", scope.id, "--display-name", desk)
    assert result.exit_code == 0, result.output
    assert (_row(world, resource).mail_display_name == desk) == _mine(scope, resource)
    return _shown(scope, result)


def clinics_show(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result = run("clinics", "show", scope.id)
    assert result.exit_code == 0, result.output
    assert (f"{resource.mark} Clinic" in result.output) == _mine(scope, resource)
    assert (resource.webhook_url in result.output) == _mine(scope, resource)
    return _shown(scope, result)


def clinics_suspend(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result = run("clinics", "suspend", scope.id)
    try:
        assert result.exit_code == 0, result.output
        door = _post_event(world, resource, resource.ingress_key_id, resource.ingress_secret)
        assert door == (403 if _mine(scope, resource) else 202)
    finally:
        with world.database.session() as s:
            clinics.resume_clinic(s, scope.id)
    return _shown(scope, result)


def clinics_resume(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    with world.database.session() as s:
        clinics.suspend_clinic(s, scope.id)
        clinics.suspend_clinic(s, resource.id)
    try:
        result = run("clinics", "resume", scope.id)
        assert result.exit_code == 0, result.output
        door = _post_event(world, resource, resource.ingress_key_id, resource.ingress_secret)
        assert door == (202 if _mine(scope, resource) else 403)
    finally:
        with world.database.session() as s:
            clinics.resume_clinic(s, scope.id)
            clinics.resume_clinic(s, resource.id)
    return _shown(scope, result)


def clinics_refusals(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result = run("clinics", "refusals", scope.id)
    assert result.exit_code == 0, result.output
    assert (resource.refused_event in result.output) == _mine(scope, resource)
    return _shown(scope, result)


def ingress_key_list(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result = run("clinics", "ingress-key", "list", scope.id)
    assert result.exit_code == 0, result.output
    assert (resource.ingress_key_id in result.output) == _mine(scope, resource)
    return _shown(scope, result)


def ingress_key_add(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result = run("clinics", "ingress-key", "add", scope.id)
    assert result.exit_code == 0, result.output
    key_id = re.search(r"^key id: (\S+)$", result.stdout, re.M)
    secret = re.search(r"^secret: (\S+)$", result.stdout, re.M)
    assert key_id and secret, result.output
    try:
        with world.database.session() as s:
            theirs = {k.key_id for k in ingress_keys.list_keys(s, resource.id)}
        assert (key_id.group(1) in theirs) == _mine(scope, resource)
        door = _post_event(world, resource, key_id.group(1), secret.group(1))
        assert door == (202 if _mine(scope, resource) else 403)  # it signs for its own clinic only
    finally:
        with world.database.session() as s:
            ingress_keys.retire_key(s, key_id.group(1))
    return Shown((result.stderr,), scope.id)  # stdout holds the new key's secret, shown this once


def ingress_key_retire(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    with world.database.session() as s:
        info, _ = ingress_keys.add_key(s, scope.id)
    result = run("clinics", "ingress-key", "retire", info.key_id)
    assert result.exit_code == 0 and f"of clinic {scope.id} retired" in result.output, result.output
    assert _post_event(world, resource, resource.ingress_key_id, resource.ingress_secret) == 202
    return _shown(scope, result)


def clinics_export(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    result = run("clinics", "export", scope.id, "--out", "-")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["clinic"]["id"] == scope.id
    listed = {a["id"] for a in document["appointments"]}
    assert (resource.appointment in listed) == _mine(scope, resource)
    assert (resource.mark in result.stdout) == _mine(scope, resource)
    return _shown(scope, result)


def clinics_delete(world: World, scope: ClinicData, resource: ClinicData, run: Run) -> Shown:
    """Deleting is for good, so the clinic deleted is a fresh one seeded like A and B in the
    same deployment (its resource stands in for the scope's): its data goes, the
    resource of another clinic stays whole."""
    doomed = seed_throwaway(world)
    with world.database.session() as s:  # its webhook answered 410 Gone once: the worker's switch
        notifications.disable_webhook(s, doomed.webhook_url, "410 Gone", doomed.id)
    result = run("clinics", "delete", doomed.id, "--confirm", doomed.id, "--leave-zoom-meetings")
    assert result.exit_code == 0 and f"clinic {doomed.id} deleted" in result.output, result.output
    if _mine(scope, resource):
        assert _read(world, doomed.keys["admin"], doomed).status_code == 401
        with world.database.session() as s:
            assert appointments.get_appointment(s, doomed.key) is None
            assert not notifications.webhook_disabled(s, doomed.webhook_url, doomed.id)
    else:
        answer = _read(world, resource.keys["admin"], resource)
        assert answer.status_code == 200 and answer.json()["clinic_id"] == resource.id
        with world.database.session() as s:
            assert appointments.get_doctor(s, scoped(resource.id, resource.other_doctor)) is not None
            assert [k.key_id for k in ingress_keys.list_keys(s, resource.id) if k.active] == [resource.ingress_key_id]
        assert _post_event(world, resource, resource.ingress_key_id, resource.ingress_secret) == 202
    return Shown((result.output,), doomed.id)
