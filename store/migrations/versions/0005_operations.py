"""operations: Zoom webhook receipts

Revision ID: 0005
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telemed.store.types

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "zoom_webhook_receipts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dedupe_key", sa.String(64), nullable=False, unique=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("zoom_meeting_id", sa.BigInteger(), nullable=True),
        sa.Column("zoom_user_id", sa.String(64), nullable=True),
        sa.Column("payload", telemed.store.types.EncryptedText(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", telemed.store.types.UTCDateTime(), nullable=False),
        sa.Column("processed_at", telemed.store.types.UTCDateTime(), nullable=True),
        sa.Column("note", sa.String(300), nullable=True),
    )
    op.create_index("ix_zoom_webhook_receipts_status", "zoom_webhook_receipts", ["status"])
    op.create_index("ix_zoom_webhook_receipts_zoom_meeting_id", "zoom_webhook_receipts", ["zoom_meeting_id"])


def downgrade() -> None:
    op.drop_table("zoom_webhook_receipts")
