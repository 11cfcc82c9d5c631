"""outbox: a random token per row (globally unique Message-IDs) and the send claim

Revision ID: 0007_outbox_tokens
Revises: 0006
"""

from collections.abc import Sequence
import secrets

import sqlalchemy as sa
from alembic import op

import telemed.store.types

revision: str = "0007_outbox_tokens"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("token", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("sending_since", telemed.store.types.UTCDateTime(), nullable=True))
    # Existing rows get a token of their own too (as store.models.new_token), made here
    # rather than by the database so both backends get the same kind of token.
    connection = op.get_bind()
    outbox = sa.table("outbox", sa.column("id", sa.Integer()), sa.column("token", sa.String(32)))
    ids = [row[0] for row in connection.execute(sa.select(outbox.c.id).where(outbox.c.token.is_(None)))]
    for start in range(0, len(ids), 1000):
        connection.execute(
            outbox.update().where(outbox.c.id == sa.bindparam("row_id")).values(token=sa.bindparam("new_token")),
            [{"row_id": i, "new_token": secrets.token_urlsafe(16)} for i in ids[start:start + 1000]],
        )
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.alter_column("token", existing_type=sa.String(32), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_column("sending_since")
        batch_op.drop_column("token")
