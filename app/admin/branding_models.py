"""Branding files kept in the database (one row per kind, e.g. ``logo``).

The bytes live in the database, not on disk, so every web worker and a restored backup serve
the same logo without shared storage; ``sha256`` names the file in its URL so a changed logo
gets a new URL and browsers may cache each one for a year.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.database import UTCDateTime, utcnow
from app.extensions import db


class BrandingAsset(db.Model):
    __tablename__ = "branding_assets"
    __table_args__ = (
        CheckConstraint(
            "content_type IN ('image/png', 'image/jpeg', 'image/svg+xml')",
            name="ck_branding_assets_content_type",
        ),
    )

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(40))
    # Deferred: pages only need the hash for the URL, never the bytes.
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, deferred=True)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
