"""online meetings: the Teams meeting of a booking (T1, T2)

Revision ID: d2e8f4a1c7b9
Revises: c4d1e7a9b2f3
Create Date: 2026-12-15 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import app.database

# revision identifiers, used by Alembic.
revision = "d2e8f4a1c7b9"
down_revision = "c4d1e7a9b2f3"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "online_meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("organiser_email", sa.String(length=320), nullable=False),
        sa.Column("organiser_user_id", sa.Integer(), nullable=True),
        sa.Column("graph_event_id", sa.String(length=500), nullable=True),
        sa.Column("graph_online_meeting_id", sa.String(length=500), nullable=True),
        sa.Column("join_url", sa.Text(), nullable=True),
        sa.Column("push_after", app.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("etag", sa.String(length=200), nullable=True),
        sa.Column("transaction_id", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", app.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.database.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('waiting','scheduled','failed','cancelled')",
            name=op.f("ck_online_meetings_state_known"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_online_meetings_booking_id_bookings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organiser_user_id"],
            ["users.id"],
            name=op.f("fk_online_meetings_organiser_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_online_meetings")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_online_meetings_booking_id")),
    )
    with op.batch_alter_table("online_meetings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_online_meetings_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_online_meetings_push_after"), ["push_after"], unique=False
        )


def downgrade():
    with op.batch_alter_table("online_meetings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_online_meetings_push_after"))
        batch_op.drop_index(batch_op.f("ix_online_meetings_state"))
    op.drop_table("online_meetings")
