"""Sign in and out. The session is cleared at login (no fixation) and the user's session
token rotates at logout, so a copied cookie dies with the session it came from. Failed
sign-ins are throttled per account and per address (``app.accounts.throttle``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from app.accounts import throttle
from app.accounts.forms import LoginForm
from app.accounts.models import User
from app.accounts.service import find_user
from app.extensions import db, login_manager

bp = Blueprint("accounts", __name__)


@login_manager.user_loader
def load_user(session_token: str) -> User | None:
    user = db.session.scalars(select(User).where(User.session_token == session_token)).one_or_none()
    return user if user is not None and user.active else None


def landing_url(user: User) -> str:
    """Where a signed-in person starts: staff on the team calendar, everyone else (learners,
    employers) on their bookings list."""
    return url_for("calendar.index") if user.is_staff else url_for("bookings.index")


def _safe_next(target: str | None, default: str | None = None) -> str:
    """Only same-site relative paths, so the login form cannot bounce people elsewhere.

    Backslashes are refused: browsers read ``/\\evil.example`` as ``//evil.example``.
    Anything else falls back to ``default`` (the bookings list unless given).
    """
    if target and "\\" not in target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/")
            and not target.startswith("//")
        ):
            return target
    return default or url_for("bookings.index")


BAD_CREDENTIALS = "That email and password do not match an active account."


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(landing_url(current_user))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        wait = throttle.wait_seconds(form.email.data)
        if wait:
            return _too_many_attempts(form, wait)
        user = find_user(form.email.data)
        if not _password_matches(user, form.password.data) or not user.active:
            throttle.record_failure(form.email.data)
            error = BAD_CREDENTIALS
        else:
            throttle.record_success(form.email.data)
            next_url = _safe_next(request.args.get("next"), landing_url(user))
            session.clear()
            login_user(user)
            return redirect(next_url)
    status = 401 if error else 200
    return render_template("accounts/login.html", form=form, error=error), status


def _too_many_attempts(form: LoginForm, wait: int):
    """429 on the sign-in page itself, the same for known and unknown addresses."""
    error = (
        f"Too many sign-in attempts. Try again in {throttle.describe_wait(wait)}. "
        "Until then sign-in is refused, even with the right password."
    )
    response = make_response(render_template("accounts/login.html", form=form, error=error), 429)
    response.headers["Retry-After"] = str(wait)
    return response


_dummy_hashes: dict[str, str] = {}


def _password_matches(user: User | None, password: str) -> bool:
    """Check the password, spending the same hashing time when there is no account (or no
    password yet), so the answer's timing does not tell who has an account."""
    if user is not None and user.password_hash:
        return user.check_password(password)
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    if method not in _dummy_hashes:
        _dummy_hashes[method] = generate_password_hash("not a password", method=method)
    check_password_hash(_dummy_hashes[method], password)
    return False


@bp.post("/logout")
@login_required
def logout():
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("accounts.login"))


@bp.get("/")
def home():
    if current_user.is_authenticated:
        return redirect(landing_url(current_user))
    return redirect(url_for("accounts.login"))
