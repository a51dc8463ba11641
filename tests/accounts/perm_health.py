"""Permission tables for the health probes (``/healthz``, ``/readyz``, app/health.py).

Both are public on purpose: load balancers and systemd ask them without a session or a token.
Neither takes input nor changes anything, and ``tests/ops/test_health.py`` checks they say
nothing an outsider could use.
"""

from __future__ import annotations

PUBLIC = {"health.healthz", "health.readyz"}


def register(tables: dict) -> None:
    """Add the probes to the public endpoints."""
    tables["PUBLIC_ENDPOINTS"].update(PUBLIC)
