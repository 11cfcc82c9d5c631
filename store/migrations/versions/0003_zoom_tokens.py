"""doctor zoom tokens and oauth states

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telemed.store.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "doctor_zoom_tokens",
        sa.Column("doctor_id", sa.String(128), sa.ForeignKey("doctors.id"), primary_key=True),
        sa.Column("access_token", telemed.store.types.EncryptedText(), nullable=False),
        sa.Column("refresh_token", telemed.store.types.EncryptedText(), nullable=False),
        sa.Column("expires_at", telemed.store.types.UTCDateTime(), nullable=False),
        sa.Column("lifetime_seconds", sa.Float(), nullable=False),
        sa.Column("scope", sa.String(2000), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("connected_at", telemed.store.types.UTCDateTime(), nullable=False),
        sa.Column("refreshed_at", telemed.store.types.UTCDateTime(), nullable=True),
        sa.Column("updated_at", telemed.store.types.UTCDateTime(), nullable=False),
    )
    op.create_table(
        "zoom_oauth_states",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("doctor_id", sa.String(128), sa.ForeignKey("doctors.id"), nullable=False),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("code_verifier", telemed.store.types.EncryptedText(), nullable=False),
        sa.Column("created_at", telemed.store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", telemed.store.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", telemed.store.types.UTCDateTime(), nullable=True),
    )
    op.create_index("ix_zoom_oauth_states_doctor_id", "zoom_oauth_states", ["doctor_id"])
    op.create_index("ix_zoom_oauth_states_expires_at", "zoom_oauth_states", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_zoom_oauth_states_expires_at", table_name="zoom_oauth_states")
    op.drop_index("ix_zoom_oauth_states_doctor_id", table_name="zoom_oauth_states")
    op.drop_table("zoom_oauth_states")
    op.drop_table("doctor_zoom_tokens")
