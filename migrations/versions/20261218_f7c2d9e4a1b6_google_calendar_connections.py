"""Google calendar connections (issue [12]): the Workspace domains an organisation link
covers, and why one linked calendar could not be read (a person the service account may not
act for)

Revision ID: f7c2d9e4a1b6
Revises: e5a9c3f7b1d4
Create Date: 2026-12-18 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f7c2d9e4a1b6"
down_revision = "e5a9c3f7b1d4"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("calendar_connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("domains", sa.JSON(), nullable=True))
    with op.batch_alter_table("linked_calendars", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("linked_calendars", schema=None) as batch_op:
        batch_op.drop_column("last_error")
    with op.batch_alter_table("calendar_connections", schema=None) as batch_op:
        batch_op.drop_column("domains")
