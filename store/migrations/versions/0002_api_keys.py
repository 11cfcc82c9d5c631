"""api keys

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telemed.store.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(140), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("created_at", telemed.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", telemed.store.types.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", telemed.store.types.UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
