"""notifications: start-link audits, reminders, webhook switch, admin alerts

Revision ID: 0004
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telemed.store.types

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "start_link_audits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("appointment_id", sa.String(128), nullable=False),
        sa.Column("doctor_id", sa.String(128), nullable=False),
        sa.Column("principal", sa.String(160), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("at", telemed.store.types.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_start_link_audits_appointment_id", "start_link_audits", ["appointment_id"])

    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("appointment_id", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("offset_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", telemed.store.types.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("appointment_id", "version", "role", "offset_seconds", name="uq_reminder_key"),
    )
    op.create_index("ix_reminders_appointment_id", "reminders", ["appointment_id"])

    op.create_table(
        "webhook_endpoints",
        sa.Column("url_hash", sa.String(64), primary_key=True),
        sa.Column("disabled_at", telemed.store.types.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
    )

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("appointment_id", sa.String(128), nullable=True),
        sa.Column("created_at", telemed.store.types.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_alerts_kind", "alerts", ["kind"])
    op.create_index("ix_alerts_appointment_id", "alerts", ["appointment_id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_appointment_id", table_name="alerts")
    op.drop_index("ix_alerts_kind", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_reminders_appointment_id", table_name="reminders")
    op.drop_table("reminders")
    op.drop_index("ix_start_link_audits_appointment_id", table_name="start_link_audits")
    op.drop_table("start_link_audits")
