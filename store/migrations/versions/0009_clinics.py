"""clinics (tenants): the clinics, their ingress keys, refused cross-clinic events; the
clinic that owns each event, doctor, appointment, alert and API key; scoped keys
(foundation.tenancy) are longer than the contract's ids, so the id columns widen.

Every existing row belongs to the default clinic and keeps its key: a default-clinic
key is the bare id. An appointment's old ``clinic_id`` was the event's own label of the
clinic; it moves to ``event_clinic_id``.

Revision ID: 0009_clinics
Revises: 0008_registrants
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telemed.store.types

revision: str = "0009_clinics"
down_revision: str | None = "0008_registrants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ID, KEY, CLINIC = 128, 169, 40
# (table, column) holding a contract id that is now a scoped key.
KEY_COLUMNS = [
    ("inbox_events", "event_id"), ("inbox_events", "appointment_id"), ("doctors", "id"),
    ("appointments", "id"), ("appointments", "doctor_id"), ("appointments", "last_event_id"),
    ("meetings", "appointment_id"), ("meetings", "doctor_id"), ("join_clicks", "appointment_id"),
    ("provisioning_intents", "appointment_id"), ("provisioning_intents", "open_for"),
    ("outbox", "appointment_id"), ("start_link_audits", "appointment_id"), ("start_link_audits", "doctor_id"),
    ("reminders", "appointment_id"), ("alerts", "appointment_id"), ("zoom_oauth_states", "doctor_id"),
    ("doctor_zoom_tokens", "doctor_id"),
]
OWNED = ["inbox_events", "doctors", "alerts", "api_keys"]


def _widen(length: int, old: int) -> None:
    # SQLite does not enforce a VARCHAR's length: only PostgreSQL needs the change.
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column in KEY_COLUMNS:
        op.alter_column(table, column, type_=sa.String(length), existing_type=sa.String(old))


def upgrade() -> None:
    op.create_table(
        "clinics",
        sa.Column("id", sa.String(CLINIC), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("zoom_account_id", sa.String(128), nullable=True),
        sa.Column("zoom_client_id", sa.String(128), nullable=True),
        sa.Column("zoom_client_secret", telemed.store.types.EncryptedText(), nullable=True),
        sa.Column("zoom_oauth_client_id", sa.String(128), nullable=True),
        sa.Column("zoom_oauth_client_secret", telemed.store.types.EncryptedText(), nullable=True),
        sa.Column("zoom_webhook_secret", telemed.store.types.EncryptedText(), nullable=True),
        sa.Column("mail_from", sa.String(320), nullable=True),
        sa.Column("mail_reply_to", sa.String(320), nullable=True),
        sa.Column("mail_display_name", sa.String(200), nullable=True),
        sa.Column("reminder_offsets", sa.String(100), nullable=True),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("webhook_secret", telemed.store.types.EncryptedText(), nullable=True),
        sa.Column("admin_emails", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", telemed.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", telemed.store.types.UTCDateTime(), nullable=False),
        sa.Column("deleted_at", telemed.store.types.UTCDateTime(), nullable=True),
    )
    op.create_table(
        "clinic_ingress_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("clinic_id", sa.String(CLINIC), sa.ForeignKey("clinics.id"), nullable=False, index=True),
        sa.Column("secret", telemed.store.types.EncryptedText(), nullable=False),
        sa.Column("created_at", telemed.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", telemed.store.types.UTCDateTime(), nullable=True),
        sa.Column("retired_at", telemed.store.types.UTCDateTime(), nullable=True),
    )
    op.create_table(
        "ingress_refusals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("signer_clinic_id", sa.String(CLINIC), nullable=False, index=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("named_clinic_id", sa.String(128), nullable=False),
        sa.Column("event_id", sa.String(KEY), nullable=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("at", telemed.store.types.UTCDateTime(), nullable=False),
    )
    _widen(KEY, OLD_ID)
    for table in OWNED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("clinic_id", sa.String(CLINIC), nullable=False, server_default="default"))
            batch_op.create_index(f"ix_{table}_clinic_id", ["clinic_id"])
    with op.batch_alter_table("appointments") as batch_op:
        batch_op.add_column(sa.Column("event_clinic_id", sa.String(128), nullable=True))
    op.execute("UPDATE appointments SET event_clinic_id = clinic_id, clinic_id = 'default'")
    with op.batch_alter_table("appointments") as batch_op:
        batch_op.alter_column("clinic_id", existing_type=sa.String(128), type_=sa.String(CLINIC),
                              nullable=False, server_default="default")
        batch_op.create_index("ix_appointments_clinic_id", ["clinic_id"])


def downgrade() -> None:
    # Plain DROP/RENAME COLUMN (SQLite 3.35+ and PostgreSQL) instead of batch mode: a batch
    # rebuild of doctors or appointments trips the foreign keys that point at them.
    op.drop_index("ix_appointments_clinic_id", table_name="appointments")
    op.execute("ALTER TABLE appointments DROP COLUMN clinic_id")
    op.execute("ALTER TABLE appointments RENAME COLUMN event_clinic_id TO clinic_id")
    for table in OWNED:
        op.drop_index(f"ix_{table}_clinic_id", table_name=table)
        op.execute(f"ALTER TABLE {table} DROP COLUMN clinic_id")
    _widen(OLD_ID, KEY)
    op.drop_table("ingress_refusals")
    op.drop_table("clinic_ingress_keys")
    op.drop_table("clinics")
