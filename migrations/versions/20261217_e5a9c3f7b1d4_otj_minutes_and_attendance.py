"""planned off-the-job minutes on booking types and bookings, and Teams attendance (T3)

Revision ID: e5a9c3f7b1d4
Revises: e5f2a8c1d3b7
Create Date: 2026-12-16 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import app.database

# revision identifiers, used by Alembic.
revision = "e5a9c3f7b1d4"
down_revision = "e5f2a8c1d3b7"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("booking_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planned_otj_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "complete_on_verified", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planned_otj_minutes", sa.Integer(), nullable=True))
    op.create_table(
        "meeting_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("otj_minutes", sa.Integer(), nullable=True),
        sa.Column("people", sa.JSON(), nullable=False),
        sa.Column("meeting_minutes", sa.Integer(), nullable=True),
        sa.Column("held_at", app.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("checked_at", app.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", app.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", app.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.database.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending','recorded','needs_review','none')",
            name=op.f("ck_meeting_attendance_state_known"),
        ),
        sa.CheckConstraint(
            "otj_minutes IS NULL OR otj_minutes >= 0",
            name=op.f("ck_meeting_attendance_minutes_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_meeting_attendance_booking_id_bookings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by_id"],
            ["users.id"],
            name=op.f("fk_meeting_attendance_reviewed_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_attendance")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_meeting_attendance_booking_id")),
    )
    with op.batch_alter_table("meeting_attendance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_attendance_state"), ["state"], unique=False)


def downgrade():
    with op.batch_alter_table("meeting_attendance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_attendance_state"))
    op.drop_table("meeting_attendance")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("planned_otj_minutes")
    with op.batch_alter_table("booking_types", schema=None) as batch_op:
        batch_op.drop_column("complete_on_verified")
        batch_op.drop_column("planned_otj_minutes")
