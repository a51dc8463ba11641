"""outbox claims and ordering keys

Delivery claims a row (who, until when) and commits before any network call; rows about
one booking share an ordering key so they are delivered one at a time.

Revision ID: 97013da51b25
Revises: 2a428669f72c
Create Date: 2026-12-10 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import app.database

# revision identifiers, used by Alembic.
revision = "97013da51b25"
down_revision = "2a428669f72c"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("claimed_until", app.database.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("ordering_key", sa.String(length=80), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_outbox_messages_ordering_key"), ["ordering_key"], unique=False
        )
    _scrub_delivered_links()


# Fields that carried live link tokens (manage, confirm, poll answer) or bodies holding them.
LINK_FIELDS = ("manage_url", "confirm_url", "url", "token", "text", "html")


def _scrub_delivered_links():
    """Rows delivered before this revision kept their links in plain text; they are done
    and need them no more. (Rows not yet done keep theirs until delivered.)"""
    outbox = sa.table(
        "outbox_messages",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("payload", sa.JSON),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(outbox.c.id, outbox.c.payload).where(outbox.c.status == "done"))
    for row_id, payload in rows.all():
        if isinstance(payload, dict) and any(k in payload for k in LINK_FIELDS):
            kept = {k: v for k, v in payload.items() if k not in LINK_FIELDS}
            conn.execute(outbox.update().where(outbox.c.id == row_id).values(payload=kept))


def downgrade():
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_messages_ordering_key"))
        batch_op.drop_column("ordering_key")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
