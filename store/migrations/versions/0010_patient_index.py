"""patient index: keyed hashes of the patient's name words and e-mail next to their
encrypted columns (store.patient_index), for the admin page's search; and an index for
the admin page's list, one clinic's appointments by start time.

The new column starts NULL on existing rows: a migration has no keys to decrypt the
names with. Rows are indexed when written again, and a clinic's remaining rows on its
admin's first search (store.patient_search.reindex); ``telemed keys rotate`` indexes
every row.

Revision ID: 0010_patient_index
Revises: 0009_clinics
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_patient_index"
down_revision: str | None = "0009_clinics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch rebuild: that trips the foreign keys pointing at appointments).
    op.add_column("appointments", sa.Column("patient_index", sa.Text(), nullable=True))
    op.create_index("ix_appointments_clinic_start", "appointments", ["clinic_id", "start_time"])


def downgrade() -> None:
    op.drop_index("ix_appointments_clinic_start", table_name="appointments")
    op.execute("ALTER TABLE appointments DROP COLUMN patient_index")
