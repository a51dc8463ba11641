"""HTMX conventions (DESIGN.md): one URL serves the page and its fragment.

A request from HTMX (``HX-Request``) gets the fragment, unless it is a history restore (then
the browser needs the whole page). Both answers say ``Vary: HX-Request`` so no cache hands a
fragment to a full page load or the other way round.
"""

from __future__ import annotations

from flask import Response, make_response, render_template, request

CHANGED_EVENT = "bookingChanged"


def wants_fragment() -> bool:
    return bool(request.headers.get("HX-Request")) and not request.headers.get(
        "HX-History-Restore-Request"
    )


def render(page: str, fragment: str, status: int = 200, /, **context) -> Response:
    """Render ``fragment`` for HTMX and ``page`` (which includes it) otherwise. The HTTP
    status is positional, so templates may still take a ``status`` variable."""
    template = fragment if wants_fragment() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def changed(response: Response, event: str = CHANGED_EVENT) -> Response:
    """Tell the page (calendar, lists) that something changed, so it refreshes itself."""
    response.headers["HX-Trigger"] = event
    return response
