"""meetings: the patient's registration (registrant id, their own join link, for whom) and
the doctor a meeting was made for;
the Zoom hosts that cannot use registration; the audit of patients' /join/ link clicks

Revision ID: 0008_registrants
Revises: 0007_outbox_tokens
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telemed.store.types

revision: str = "0008_registrants"
down_revision: str | None = "0007_outbox_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch_op:
        # Meetings made before registration existed keep the passcode link.
        batch_op.add_column(sa.Column("registration", sa.String(16), nullable=False, server_default="off"))
        batch_op.add_column(sa.Column("registrant_id", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("registrant_join_url", telemed.store.types.EncryptedText(), nullable=True))
        batch_op.add_column(sa.Column("registrant_key", telemed.store.types.EncryptedText(), nullable=True))
        batch_op.add_column(sa.Column("doctor_id", sa.String(128), nullable=True))
    op.create_table(
        "join_clicks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("appointment_id", sa.String(128), nullable=False, index=True),
        sa.Column("at", telemed.store.types.UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
    )
    op.create_table(
        "registration_fallbacks",
        sa.Column("host", sa.String(320), primary_key=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("first_at", telemed.store.types.UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registration_fallbacks")
    op.drop_table("join_clicks")
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.drop_column("doctor_id")
        batch_op.drop_column("registrant_key")
        batch_op.drop_column("registrant_join_url")
        batch_op.drop_column("registrant_id")
        batch_op.drop_column("registration")
