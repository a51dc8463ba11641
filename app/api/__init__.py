"""JSON API v1 under /api/v1 (SPEC I1): bearer tokens, JSON errors, an OpenAPI document."""

from app.api import manage_routes  # noqa: F401  (people, groups, booking types: same blueprint)
from app.api.routes import bp

__all__ = ["bp"]
