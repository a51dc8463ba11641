"""bookings may be marked no_show (the visitor did not come within the waiting time)

Revision ID: c4d1e7a9b2f3
Revises: b7a3c9d2e4f1
Create Date: 2026-12-14 09:00:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "c4d1e7a9b2f3"
down_revision = "b7a3c9d2e4f1"
branch_labels = None
depends_on = None

OLD = "status IN ('provisional','confirmed','rejected','cancelled','completed')"
NEW = "status IN ('provisional','confirmed','rejected','cancelled','completed','no_show')"


def upgrade():
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_bookings_status_known"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_bookings_status_known"), NEW)


def downgrade():
    # A no-show was a confirmed booking whose visitor did not come: that is what it becomes.
    op.execute("UPDATE bookings SET status = 'confirmed' WHERE status = 'no_show'")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_bookings_status_known"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_bookings_status_known"), OLD)
