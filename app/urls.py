"""Absolute links built on the configured base URL, never on the request's ``Host`` header.

Links that leave the app (emails, OAuth redirect URIs) must not trust a forged ``Host``:
they are built on ``SLOTBOOK_BASE_URL``, and work without a request context (jobs, CLI).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app


def absolute_url(endpoint: str, **values) -> str:
    """The external URL of ``endpoint`` under ``SLOTBOOK_BASE_URL`` (scheme, host, path)."""
    base = urlsplit(current_app.config["SLOTBOOK_BASE_URL"])
    adapter = current_app.url_map.bind(
        base.netloc,
        script_name=base.path.rstrip("/") or "/",
        url_scheme=base.scheme or "http",
    )
    return adapter.build(endpoint, values, force_external=True)
