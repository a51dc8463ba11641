"""branding assets (the organisation's logo, stored in the database)

Revision ID: b7a3c9d2e4f1
Revises: 5e1b7c0a9d21
Create Date: 2026-12-13 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import app.database

# revision identifiers, used by Alembic.
revision = "b7a3c9d2e4f1"
down_revision = "5e1b7c0a9d21"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "branding_assets",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("updated_at", app.database.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "content_type IN ('image/png', 'image/jpeg', 'image/svg+xml')",
            name="ck_branding_assets_content_type",
        ),
        sa.PrimaryKeyConstraint("kind"),
    )


def downgrade():
    op.drop_table("branding_assets")
