"""booking types carry an address for face-to-face and a link for remote meetings

A type allowing both modes could carry the details of its default mode only, so a visitor who
chose the other mode was told "Face to face" with no address, or "Remote" with no link.

Revision ID: e5f2a8c1d3b7
Revises: d2e8f4a1c7b9
Create Date: 2026-12-16 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e5f2a8c1d3b7"
down_revision = "d2e8f4a1c7b9"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("booking_types", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("face_to_face_detail", sa.String(500), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("remote_detail", sa.String(500), nullable=False, server_default="")
        )


def downgrade():
    with op.batch_alter_table("booking_types", schema=None) as batch_op:
        batch_op.drop_column("remote_detail")
        batch_op.drop_column("face_to_face_detail")
