"""Set-password links, forgotten passwords and everyone's own profile.

Public (no sign-in): ``/set-password/<token>`` (GET shows a form or says why the link cannot
be used and changes nothing; POST sets the password once and signs the person in) and
``/forgot-password`` (the same answer whether or not the address has an account,
rate-limited per IP and per address). Signed in: ``/me/profile`` (name, time zone, password).
"""

from __future__ import annotations

import functools
import logging
from zoneinfo import available_timezones

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
from flask_login import current_user, login_required, login_user
from flask_wtf import FlaskForm
from limits.errors import StorageError
from redis.exceptions import RedisError
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from app.accounts import passwords
from app.accounts.forms import PasswordResetForm
from app.accounts.models import User
from app.accounts.routes import landing_url
from app.accounts.service import AccountError, check_password_strength, normalise_email
from app.extensions import db, limiter

log = logging.getLogger(__name__)

links_bp = Blueprint("passwords", __name__)
bp = Blueprint("profile", __name__, url_prefix="/me/profile")

# Pages whose URL holds a secret: never cached, never sent on as a Referer.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
LINK_STATUS = {passwords.USED: 410, passwords.EXPIRED: 410, passwords.UNKNOWN: 404}


# --- set a password through a link ---------------------------------------------------------


def _private(response):
    response = make_response(response)
    response.headers.update(PRIVATE_HEADERS)
    return response


def _link_problem(state: str, row):
    inviter = None
    expired_on = None
    if row is not None:
        if row.created_by_id:
            inviter = db.session.get(User, row.created_by_id)
        expired_on = passwords.describe_moment(passwords.expiry_in(row))
    page = render_template(
        "accounts/link_problem.html",
        state=state,
        purpose=row.purpose if row is not None else None,
        inviter=inviter,
        expired_on=expired_on,
    )
    return _private((page, LINK_STATUS[state]))


@links_bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str):
    state, row = passwords.token_state(token)
    if state != passwords.OK:
        return _link_problem(state, row)
    form = PasswordResetForm()
    if form.validate_on_submit():
        try:
            user = passwords.redeem(token, form.password.data)
        except passwords.LinkError as exc:
            db.session.rollback()
            return _link_problem(exc.state, None if exc.state == passwords.UNKNOWN else row)
        except AccountError as exc:
            db.session.rollback()
            form.password.errors = [*form.password.errors, str(exc)]
        else:
            db.session.commit()
            session.clear()
            login_user(user)
            flash("Your password is set and you are signed in.", "success")
            return redirect(landing_url(user), 303)
    status = 400 if form.errors else 200
    page = render_template(
        "accounts/set_password.html",
        form=form,
        person=row.user,
        purpose=row.purpose,
        expires=passwords.describe_moment(passwords.expiry_in(row)),
    )
    return _private((page, status))


# --- forgot password ---------------------------------------------------------------------


class ForgotPasswordForm(FlaskForm):
    # Looked up, not validated beyond presence: a syntax check would answer differently.
    # The length is no hint about accounts (no address is longer) and keeps megabytes of
    # "address" out of the outbox row that is written for every request.
    email = EmailField(
        "Email",
        validators=[
            DataRequired(message="Enter your email address."),
            Length(max=254, message="An email address has at most 254 characters."),
        ],
    )


def _ip_key() -> str:
    return request.remote_addr or "unknown"


def _email_key() -> str:
    return f"pw-email:{normalise_email(request.form.get('email', ''))}"


def _no_email() -> bool:
    return not normalise_email(request.form.get("email", ""))


def _ip_limit() -> str:
    return current_app.config["SLOTBOOK_LIMIT_PASSWORD_RESET_IP"]


def _email_limit() -> str:
    return current_app.config["SLOTBOOK_LIMIT_PASSWORD_RESET_EMAIL"]


def _limited(view):
    """Per-IP and per-address limits on the POST (429 page over them). When the limit store
    is unreachable the post is refused with a 503: an outage must not unlock mail bombing."""
    checked = limiter.limit(_ip_limit, key_func=_ip_key, methods=["POST"], scope="pw-reset-ip")(
        limiter.limit(
            _email_limit,
            key_func=_email_key,
            methods=["POST"],
            exempt_when=_no_email,
            scope="pw-reset-email",
        )(view)
    )

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if request.method != "POST":
            return view(*args, **kwargs)
        try:
            return checked(*args, **kwargs)
        except (StorageError, RedisError, ConnectionError, TimeoutError) as exc:
            log.warning("rate limit storage failed: reset refused (%s)", type(exc).__name__)
            db.session.rollback()
            page = render_template(
                "errors/page.html",
                code=503,
                title="Please try again shortly",
                message="Password resets are paused for a moment. Please try again shortly.",
            )
            response = make_response(page, 503)
            response.headers["Retry-After"] = "30"
            return response

    return wrapper


@links_bp.route("/forgot-password", methods=["GET", "POST"])
@_limited
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        address = normalise_email(form.email.data)
        passwords.request_password_reset(address)
        db.session.commit()
        return render_template("accounts/forgot_password.html", form=form, sent_to=address)
    status = 400 if form.errors else 200
    return render_template("accounts/forgot_password.html", form=form, sent_to=None), status


# --- my profile ------------------------------------------------------------------------------


@functools.cache
def zone_names() -> tuple[str, ...]:
    return tuple(sorted(z for z in available_timezones() if "/" in z or z == "UTC"))


class ProfileForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[
            DataRequired(message="Enter your name."),
            Length(max=200, message="Use at most 200 characters."),
        ],
    )
    timezone = SelectField("Time zone", validate_choice=True)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = list(zone_names())
        self.timezone.validate_choice = True


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired(message="Enter your current password.")]
    )
    password = PasswordField(
        "New password",
        validators=[
            DataRequired(message="Enter a new password."),
            Length(min=10, message="Use at least 10 characters."),
        ],
    )
    confirm = PasswordField(
        "Repeat the new password",
        validators=[
            DataRequired(message="Repeat the new password."),
            EqualTo("password", message="The passwords do not match."),
        ],
    )


def _profile_page(profile_form=None, password_form=None, status: int = 200):
    profile_form = profile_form or ProfileForm(
        formdata=None, name=current_user.name, timezone=current_user.timezone
    )
    if not profile_form.is_submitted() and current_user.timezone not in zone_names():
        # A stored zone outside the list (an old alias) stays selectable, so saving the
        # name alone never changes it.
        profile_form.timezone.choices.insert(0, current_user.timezone)
    password_form = password_form or ChangePasswordForm(formdata=None)
    return render_template(
        "accounts/profile.html",
        profile_form=profile_form,
        password_form=password_form,
    ), status


@bp.get("")
@login_required
def page():
    return _profile_page()


@bp.post("")
@login_required
def save():
    form = ProfileForm()
    if current_user.timezone not in zone_names():
        form.timezone.choices.insert(0, current_user.timezone)
    if not form.validate():
        if form.timezone.errors:
            form.timezone.errors = ["Choose a time zone from the list."]
        return _profile_page(profile_form=form, status=400)
    current_user.name = form.name.data.strip()
    current_user.timezone = form.timezone.data
    db.session.commit()
    flash("Your profile is saved.", "success")
    return redirect(url_for("profile.page"), 303)


@bp.post("/password")
@login_required
def change_password():
    form = ChangePasswordForm()
    valid = form.validate()
    if valid and not current_user.check_password(form.current_password.data):
        form.current_password.errors = ["That is not your current password."]
        valid = False
    if valid:
        try:
            check_password_strength(form.password.data)
        except AccountError as exc:
            form.password.errors = [str(exc)]
            valid = False
    if not valid:
        return _profile_page(password_form=form, status=400)
    user = current_user._get_current_object()
    user.set_password(form.password.data)  # new session token: other browsers are signed out
    db.session.commit()
    login_user(user)  # this browser follows the new token
    flash("Your password is changed. You were signed out everywhere else.", "success")
    return redirect(url_for("profile.page"), 303)
