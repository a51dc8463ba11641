"""attendees: indexed by booking in the order they were added, and by person (issue [14])

A personal feed names each booking's attendees in the order they were added, and lists the
bookings its person attends. Neither had an index of its own: each booking's attendees were
sorted per booking (the unique constraints order them by person or email), and "the bookings
this person attends" read every attendee row of the organisation on every feed request.

Revision ID: b8d4f2a6c1e3
Revises: a3b5c7d9e1f2
Create Date: 2026-12-20 09:00:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "b8d4f2a6c1e3"
down_revision = "a3b5c7d9e1f2"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_attendees_booking_order", "attendees", ["booking_id", "id"])
    op.create_index("ix_attendees_user_id", "attendees", ["user_id"])


def downgrade():
    op.drop_index("ix_attendees_user_id", table_name="attendees")
    op.drop_index("ix_attendees_booking_order", table_name="attendees")
