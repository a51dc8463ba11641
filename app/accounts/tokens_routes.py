"""API tokens in the browser: ``/me/tokens`` (everyone's own) and ``/admin/tokens`` (all).

Thin: load, authorise, call ``app.accounts.tokens``, render. A new token's plaintext is shown
once, in the answer to the POST that made it (never in a redirect, a flash message or the
session), with ``Cache-Control: no-store``; only its hash is stored. A token id that is not
the actor's (and the actor may not see everyone's) is a 404, like an id no row has.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from app.accounts import tokens
from app.accounts.access import permission_required
from app.accounts.permissions import Perm
from app.accounts.service import AccountError
from app.extensions import db
from app.htmx import render

bp = Blueprint("tokens", __name__)
log = logging.getLogger(__name__)


def _section(status: int = 200, **context) -> Response:
    context.setdefault("rows", tokens.own_tokens(current_user))
    context.setdefault("label", "")
    context.setdefault("sees_everyones", tokens.sees_everyones(current_user))
    return render("accounts/tokens.html", "accounts/_tokens.html", status, **context)


@bp.get("/me/tokens")
@login_required
def page():
    return _section()


@bp.post("/me/tokens")
@login_required
def create():
    label = request.form.get("label", "")
    try:
        row, plaintext = tokens.create_token(current_user, label)
    except AccountError as exc:
        db.session.rollback()
        return _section(422, error=str(exc), label=label)
    db.session.commit()
    log.info("api token %s made by user %s", row.id, current_user.id)
    response = _section(new_token=plaintext, new_row=row)
    response.headers["Cache-Control"] = "no-store"  # the page holds the secret token
    return response


def _visible_or_404(token_id: int):
    row = tokens.visible_token(current_user, token_id)
    if row is None:
        abort(404)
    return row


@bp.get("/me/tokens/<int:token_id>/revoke")
@login_required
def revoke_confirm(token_id: int):
    row = _visible_or_404(token_id)
    return render("accounts/token_revoke.html", "accounts/_token_revoke.html", row=row)


@bp.post("/me/tokens/<int:token_id>/revoke")
@login_required
def revoke(token_id: int):
    row = _visible_or_404(token_id)
    own = row.user_id == current_user.id
    who = "your" if own else f"{row.user.name}'s"
    tokens.revoke(row)
    db.session.commit()
    log.info("api token %s revoked by user %s", row.id, current_user.id)
    flash(f"Revoked {who} token “{row.name}”: it no longer opens the API.", "success")
    return redirect(url_for("tokens.page" if own else "tokens.everyone"), 303)


@bp.get("/admin/tokens")
@permission_required(Perm.USERS_MANAGE)
def everyone():
    return render(
        "accounts/tokens_everyone.html",
        "accounts/_tokens_everyone.html",
        rows=tokens.everyones_tokens(),
    )
