"""Permission-table builders for the people screens (/admin/people), learner profiles and
others' hours.

``register(tables)`` adds one valid request per route to the shared tables of
``tests/accounts/conftest.py`` (see the comment above ``OBJECT_BUILDERS`` there).
"""

from __future__ import annotations


def register(tables: dict) -> None:
    """Add this area's routes to the permission table."""
