"""JSON errors for the API: one shape, ``{"error": code, "message": text}``, with a 4xx status.

Codes are a contract (scripts branch on them); messages are for people and may change.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

from app.extensions import db

API_PREFIX = "/api/"

# HTTP errors raised by Flask/Werkzeug themselves (routing, abort) and the code each becomes.
HTTP_CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "validation_error",
    415: "invalid_json",
    500: "internal_error",
}


class ApiError(Exception):
    """A request the API refuses; ``code`` is the stable machine-readable reason."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    response = jsonify(error=code, message=message)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def http_error_response(exc: HTTPException):
    """An HTTP error (404 for an unknown path, 405 for a wrong method, ...) as API JSON.

    Used by the app-wide handlers for paths under /api/, because routing errors happen before
    any blueprint is chosen and would otherwise render the HTML error page.
    """
    status = exc.code or 500
    code = HTTP_CODES.get(status, "validation_error" if status < 500 else "internal_error")
    message = {
        404: "There is nothing at this address.",
        405: f"{request.method} is not allowed here.",
    }.get(status, exc.description or exc.name)
    if status >= 500:
        message = "Something went wrong on our side; nothing was changed. Try again later."
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    return error_response(status, code, message, headers)


def register_error_handlers(bp: Blueprint) -> None:
    """Translate refusals raised in API views into JSON, rolling back anything unfinished."""
    from app.accounts.groups import DuplicateGroup
    from app.accounts.hours import HoursError
    from app.accounts.service import AccountError, AccountForbidden, DuplicateEmail
    from app.bookings.lifecycle import TransitionError
    from app.bookings.policy import PermissionDenied
    from app.bookings.service import BookingError, ConflictError
    from app.bookings.types import BookingTypeError
    from app.teams.service import TeamsUnavailable

    def refuse(status: int, code: str, message: str, headers: dict | None = None):
        db.session.rollback()
        return error_response(status, code, message, headers)

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return refuse(exc.status, exc.code, exc.message, exc.headers)

    @bp.errorhandler(PermissionDenied)
    def forbidden(exc: PermissionDenied):
        return refuse(403, "forbidden", str(exc))

    @bp.errorhandler(ConflictError)
    def conflict(exc: ConflictError):
        return refuse(409, "conflict", str(exc))

    @bp.errorhandler(TransitionError)
    def invalid_transition(exc: TransitionError):
        return refuse(409, "invalid_transition", str(exc))

    @bp.errorhandler(BookingError)
    def unprocessable(exc: BookingError):
        return refuse(422, "validation_error", str(exc))

    @bp.errorhandler(TeamsUnavailable)  # a BookingError with a code of its own (issue [10])
    def teams_unavailable(exc: TeamsUnavailable):
        return refuse(422, "teams_unavailable", str(exc))

    # People, groups, hours and booking types: the services' refusals (a subclass is answered
    # by its own handler: Flask looks up the exception's classes most specific first).
    @bp.errorhandler(AccountForbidden)
    def account_forbidden(exc: AccountForbidden):
        return refuse(403, "forbidden", str(exc))

    @bp.errorhandler(DuplicateEmail)
    @bp.errorhandler(DuplicateGroup)
    def duplicate(exc: AccountError):
        return refuse(409, "conflict", str(exc))

    @bp.errorhandler(AccountError)
    @bp.errorhandler(HoursError)
    @bp.errorhandler(BookingTypeError)
    def refused_input(exc: ValueError):
        return refuse(400, "validation_error", str(exc))

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        db.session.rollback()
        return http_error_response(exc)
