"""busy blocks: a partial index of the blocking ones (busy, tentative, out of office) by person
and start, for availability (issue [14])

Availability reads, per person, the blocking busy blocks that start inside given ranges. The
index holds only blocking rows, so that read neither visits free blocks nor reads a table row
to learn a block's status. SQLite uses a partial index only for a query that repeats its
condition, so ``app.bookings.availability`` writes the same ``status IN (...)`` with literals.

Revision ID: a3b5c7d9e1f2
Revises: f7c2d9e4a1b6
Create Date: 2026-12-19 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a3b5c7d9e1f2"
down_revision = "f7c2d9e4a1b6"
branch_labels = None
depends_on = None

BLOCKING = "status IN ('busy', 'tentative', 'oof')"


def upgrade():
    op.create_index(
        "ix_busy_blocks_blocking_period",
        "busy_blocks",
        ["person_id", "starts_at", "ends_at"],
        unique=False,
        sqlite_where=sa.text(BLOCKING),
        postgresql_where=sa.text(BLOCKING),
    )


def downgrade():
    op.drop_index("ix_busy_blocks_blocking_period", table_name="busy_blocks")
