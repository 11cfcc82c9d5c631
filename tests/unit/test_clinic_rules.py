"""The per-clinic rules as plain functions: the bounded metric label, what a profile means
for mail and webhooks, the clinic-wide Zoom causes, the webhook payload's ids, the default
clinic from the environment, and a Zoom receipt's clinic."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from telemed.foundation.clinic_label import OTHER, ClinicLabels, bounded_label
from telemed.foundation.connect_links import make_connect_token, read_connect_token
from telemed.foundation.tenancy import DEFAULT_CLINIC, ClinicProfile, ZoomApp
from telemed.settings import default_profile, load_settings
from telemed.store.operations import dedupe_key, read_receipt_payload, receipt_payload
from telemed.workers.alerts import _LINK, connect_link_command, connect_link_placeholder
from telemed.workers.clinic_profiles import admin_recipients, reminder_offsets, sender, webhook_target
from telemed.workers.delivery.webhook import delivery_id, webhook_payload
from telemed.workers.notifier.messages import AdminAlert
from telemed.workers.notifier.render import render_admin, render_patient
from telemed.workers.policy import app_failures
from telemed.zoom.apps import account_app, app_fingerprint, oauth_app
from telemed.zoom.errors import (
    ZoomAppRefused,
    ZoomAuthError,
    ZoomError,
    ZoomGrantRevoked,
    ZoomPermanentError,
    ZoomRateLimited,
    ZoomTransientError,
    app_refusal,
)
from tests.support.notices import patient
from tests.support.snapshots import snapshot

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# The bounded label ------------------------------------------------------------------------


def test_the_first_clinics_get_their_own_label_and_the_rest_other() -> None:
    seen: set[str] = set()
    labels = [bounded_label(f"c-{i}", seen, limit=3) for i in range(5)]
    assert labels == ["c-0", "c-1", "c-2", OTHER, OTHER]
    assert bounded_label("c-1", seen, limit=3) == "c-1"  # a clinic keeps its label
    assert bounded_label(DEFAULT_CLINIC, seen, limit=3) == DEFAULT_CLINIC  # always itself, never counted
    assert seen == {"c-0", "c-1", "c-2"}


def test_the_process_labels_stay_bounded_however_many_clinics() -> None:
    labels = ClinicLabels(limit=20)
    values = {labels(f"clinic-{i}") for i in range(1000)}
    assert len(values) == 21 and OTHER in values
    assert labels(DEFAULT_CLINIC) == DEFAULT_CLINIC


# What a profile means ---------------------------------------------------------------------


SETTINGS = load_settings(secret_keys=Fernet.generate_key().decode(), mail_from="telemed <no-reply@deploy.example>",
                         reminder_offsets="24h,15m", admin_email="root@deploy.example")


def test_the_sender_is_the_clinics_or_the_deployments_address_under_the_clinics_name() -> None:
    assert sender(default_profile(SETTINGS), SETTINGS).mail_from == "telemed <no-reply@deploy.example>"
    own = ClinicProfile("b", "Clinic B", mail_from="desk@b.example", mail_display_name="B Telehealth",
                        mail_reply_to="front@b.example")
    assert (sender(own, SETTINGS).mail_from, sender(own, SETTINGS).reply_to) == (
        "B Telehealth <desk@b.example>", "front@b.example")
    assert sender(ClinicProfile("b", "Clinic B"), SETTINGS).mail_from == "Clinic B <no-reply@deploy.example>"
    assert sender(ClinicProfile("b", "Clinic B", mail_from="Desk <d@b.example>"), SETTINGS).mail_from == \
        "Desk <d@b.example>"


def test_reminders_webhook_and_admins_do_not_fall_back_to_the_deployment() -> None:
    bare = ClinicProfile("b", "Clinic B")
    assert reminder_offsets(bare, SETTINGS) == "24h,15m"  # the deployment's offsets
    assert reminder_offsets(ClinicProfile("b", "B", reminder_offsets="2h"), SETTINGS) == "2h"
    assert webhook_target(bare) is None  # no URL: none is owed
    assert admin_recipients(bare) == ()  # never the deployment's admin
    assert admin_recipients(ClinicProfile("b", "B", admin_emails=("a@b.example", " a@b.example", ""))) == (
        "a@b.example",)
    target = webhook_target(ClinicProfile("b", "B", webhook_url="https://hooks.b.example/x", webhook_secret="s3"))
    assert target is not None and target.secret == "s3" and "s3" not in repr(target)


def test_the_default_clinic_is_the_environment() -> None:
    settings = load_settings(secret_keys=Fernet.generate_key().decode(), zoom_account_id="acct", zoom_client_id="cid",
                             zoom_client_secret="sec", zoom_oauth_client_id="oid", zoom_oauth_client_secret="osec",
                             zoom_webhook_secret_token="zw", webhook_url="https://hooks.example/x",
                             webhook_secret="ws", admin_email="root@deploy.example")
    profile = default_profile(settings)
    assert profile.clinic_id == DEFAULT_CLINIC
    assert profile.zoom_account == ZoomApp("cid", "sec", "acct") and profile.zoom_oauth == ZoomApp("oid", "osec")
    assert profile.zoom_account_scope == "account:acct"
    assert (profile.zoom_webhook_secret, profile.webhook_secret, profile.admin_emails) == (
        "zw", "ws", ("root@deploy.example",))
    assert "sec" not in repr(profile.zoom_account)
    assert default_profile(load_settings(secret_keys=Fernet.generate_key().decode(),
                                         zoom_account_id="acct")).zoom_account is None  # incomplete: none


def test_which_apps_can_be_used_and_their_fingerprints() -> None:
    full = ClinicProfile("b", "B", zoom_account=ZoomApp("cid", "sec", "acct"), zoom_oauth=ZoomApp("oid", "osec"))
    assert account_app(full) is not None and oauth_app(full) is not None
    assert account_app(ClinicProfile("b", "B", zoom_account=ZoomApp("cid", "sec"))) is None  # no account id
    assert oauth_app(ClinicProfile("b", "B", zoom_oauth=ZoomApp("oid", ""))) is None
    fingerprint = app_fingerprint(full.zoom_account)
    assert fingerprint == app_fingerprint(ZoomApp("cid", "sec", "acct"))
    assert fingerprint != app_fingerprint(ZoomApp("cid", "rotated", "acct")) != app_fingerprint(None)
    assert "sec" not in fingerprint and len(fingerprint) == 16


# Clinic-wide Zoom causes --------------------------------------------------------------------


@pytest.mark.parametrize(("error", "account_hosted", "cause"), [
    (ZoomAppRefused("Invalid client_id or client_secret", status=401), False, app_failures.REFUSED),
    (ZoomAuthError("Invalid access token, does not contain scopes", status=401, code=4711), True,
     app_failures.REFUSED),
    (ZoomAuthError("Invalid access token, does not contain scopes", status=401, code=4711), False, None),  # a doctor's
    (ZoomAuthError("Access token is expired.", status=401, code=124), True, None),  # renewable
    (ZoomGrantRevoked("Invalid Token!", status=400), True, None),
    (ZoomPermanentError("Meeting hosting not allowed", status=400, code=3161), True, None),  # the meeting's
    (ZoomTransientError("Internal error", status=503), True, None),
])
def test_which_failures_are_the_clinics_app(error: ZoomError, account_hosted: bool, cause: str | None) -> None:
    assert app_failures.cause_of(error, account_hosted=account_hosted) == cause


def test_a_refused_grant_is_the_apps_and_outages_stay_outages() -> None:
    refused = app_refusal(ZoomAuthError("Invalid client_id or client_secret", status=401))
    assert isinstance(refused, ZoomAppRefused) and refused.status == 401
    assert isinstance(app_refusal(ZoomPermanentError("Account ID is invalid", status=400)), ZoomAppRefused)
    outage = ZoomTransientError("down", status=503)
    assert app_refusal(outage) is outage
    limited = ZoomRateLimited("slow down")
    assert app_refusal(limited) is limited
    bug = ZoomError("unexpected")
    assert app_refusal(bug) is bug


def test_a_causes_reasons_share_its_prefix_and_name_the_app_not_the_secret() -> None:
    cause = app_failures.app_refused("clinic-a", "a-client", "Invalid client_id or client_secret (HTTP 401)")
    assert cause.reason.startswith(cause.prefix) and cause.prefix.startswith(app_failures.app_prefix("clinic-a"))
    assert "a-client" in cause.prefix and "clinic-a" in cause.subject
    missing = app_failures.app_missing("clinic-a")
    assert missing.prefix.startswith(app_failures.app_prefix("clinic-a")) and missing.kind == "zoom_app"
    assert not app_failures.app_prefix("clinic-ab").startswith(app_failures.app_prefix("clinic-a"))
    quota = app_failures.host_quota("clinic-a", "D-1", NOW)
    assert quota.kind == "quota_exhausted" and "daily create/update limit" in quota.reason
    assert len(cause.reason) < 300  # fits the attention reason column


# Webhook payloads and receipts in the clinic's own ids --------------------------------------


def test_a_clinics_webhook_shows_its_own_ids_and_its_clinic() -> None:
    payload = webhook_payload(snapshot(appointment_id="clinic-b/A-1", kind="invite", channel="webhook",
                                       role="booking"), NOW)
    assert payload["appointment"]["id"] == "A-1" and payload["clinic_id"] == "clinic-b"
    assert payload["delivery_id"] == "clinic-b:A-1.v1.invite"
    assert "clinic-b/" not in json.dumps(payload)
    default = webhook_payload(snapshot(appointment_id="A-1", kind="invite", channel="webhook", role="booking"), NOW)
    assert (default["appointment"]["id"], default["clinic_id"], default["delivery_id"]) == (
        "A-1", DEFAULT_CLINIC, "A-1.v1.invite")  # unchanged for a single clinic
    assert delivery_id(snapshot(appointment_id="clinic-c/A-1")) != delivery_id(snapshot(appointment_id="clinic-b/A-1"))


def test_a_zoom_receipt_remembers_its_clinic() -> None:
    body = '{"event":"meeting.started"}'
    assert read_receipt_payload(receipt_payload(DEFAULT_CLINIC, body)) == (DEFAULT_CLINIC, body)
    assert receipt_payload(DEFAULT_CLINIC, body) == body  # as before clinics
    assert read_receipt_payload(receipt_payload("clinic-b", body)) == ("clinic-b", body)
    # A body signed by the default clinic can never pass for another clinic's receipt.
    assert read_receipt_payload('{"clinic=":"clinic-b"}')[0] == DEFAULT_CLINIC
    assert dedupe_key(body.encode(), "clinic-b") != dedupe_key(body.encode()) == dedupe_key(body.encode(), DEFAULT_CLINIC)


# Mail: Reply-To and every admin ---------------------------------------------------------------


def test_a_clinics_reply_to_and_all_its_admins() -> None:
    message = render_patient(patient(), "B Telehealth <desk@b.example>")
    assert message["Reply-To"] is None
    from telemed.workers.notifier.render import default_renderer

    with_reply = default_renderer().patient(patient(), "B Telehealth <desk@b.example>", reply_to="front@b.example")
    assert with_reply["Reply-To"] == "front@b.example" and with_reply["From"] == "B Telehealth <desk@b.example>"
    alert = render_admin(AdminAlert("s", "b", "a1@b.example", also_to=("a2@b.example",)), "B <desk@b.example>")
    assert alert["To"] == "a1@b.example, a2@b.example"
    with pytest.raises(ValueError, match="admin_email"):
        AdminAlert("s", "b", "a1@b.example", also_to=("not an address",))


# Connect links of a clinic's doctor -------------------------------------------------------


def test_connect_links_and_placeholders_carry_a_clinics_doctor() -> None:
    keys = [Fernet.generate_key().decode()]
    from datetime import timedelta

    token = make_connect_token(keys, "clinic-b/D-7", timedelta(hours=1))
    assert read_connect_token(keys, token).doctor_id == "clinic-b/D-7"
    with pytest.raises(ValueError):
        make_connect_token(keys, "a/b/D-7", timedelta(hours=1))
    match = _LINK.search(f"send: {connect_link_placeholder('clinic-b/D-7')}")
    assert match is not None and match.group(1) == "clinic-b/D-7"
    assert connect_link_command("clinic-b/D-7") == "telemed doctors connect-link --clinic clinic-b D-7"
    assert connect_link_command("D-7") == "telemed doctors connect-link D-7"
