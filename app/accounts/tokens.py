"""API tokens in the browser (SPEC I1): who may see, make and revoke which token.

Everyone signed in may use the API (each operation checks its own permissions, as the
screens do), so everyone may hold tokens. Tokens are credentials, so seeing and revoking
*other people's* belongs with ``users.manage`` ("Manage users and reset passwords"): the
holders of the right that can already take over an account by resetting its password. The
owner always keeps it (``OWNER_LOCKED``); administrators hold it by default. Revoking only
ever takes access away, so unlike a password reset it needs no "holds all their rights" rule.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.accounts.models import ApiToken, User
from app.accounts.permissions import Perm
from app.accounts.service import AccountError, create_api_token
from app.database import utcnow
from app.extensions import db
from app.security import hash_token

LABEL_MAX = 120


def sees_everyones(actor: User) -> bool:
    """May ``actor`` list and revoke everybody's tokens (the /admin/tokens screen)?"""
    return actor.can(Perm.USERS_MANAGE)


def own_tokens(user: User) -> list[ApiToken]:
    """``user``'s live tokens, newest first (revoked ones no longer matter to anyone)."""
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )


def everyones_tokens() -> list[ApiToken]:
    """Every live token with its holder loaded (one query), by holder then newest first."""
    return list(
        db.session.scalars(
            select(ApiToken)
            .join(User, User.id == ApiToken.user_id)
            .options(joinedload(ApiToken.user))
            .where(ApiToken.revoked_at.is_(None))
            .order_by(User.name, User.id, ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )


def visible_token(actor: User, token_id: int) -> ApiToken | None:
    """The live token ``token_id`` if ``actor`` may revoke it, else None (the route's 404:
    someone else's token id must look exactly like one that does not exist)."""
    row = db.session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return None
    if row.user_id != actor.id and not sees_everyones(actor):
        return None
    return row


def clean_label(label: str | None) -> str:
    """A label people can recognise the token by; required, one line, at most 120 chars."""
    label = " ".join((label or "").split())
    if not label:
        raise AccountError("Give the token a name, such as the script or tool that will use it.")
    if len(label) > LABEL_MAX:
        raise AccountError(f"Keep the name to {LABEL_MAX} characters or fewer.")
    return label


def create_token(user: User, label: str | None) -> tuple[ApiToken, str]:
    """Make a token for ``user``; returns the row and the plaintext (shown once, never kept)."""
    plaintext = create_api_token(user, clean_label(label))
    row = db.session.scalars(
        select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext))
    ).one()
    return row, plaintext


def revoke(row: ApiToken) -> None:
    """Stop the token working at once: the API's lookup skips revoked rows."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.session.flush()
