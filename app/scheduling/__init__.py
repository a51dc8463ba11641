"""The pure scheduling engine: no Flask, no SQLAlchemy, only aware datetimes and intervals."""
