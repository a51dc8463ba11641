"""Account rules: finding users by email, the first owner, roles, API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Select, bindparam, func, select

from app.accounts.models import ApiToken, Permission, Role, User, role_permissions
from app.accounts.permissions import BUILTIN_ROLES, OWNER_LOCKED, PERMISSION_LABELS, Perm
from app.database import BulkReader, driver_rows, utcnow
from app.extensions import db
from app.security import hash_token, new_token


class AccountError(ValueError):
    """Input an account operation cannot accept; the message is for people."""


class DuplicateEmail(AccountError):
    """Another account already uses this email (the API answers 409)."""


class AccountForbidden(Exception):
    """The actor may not do this to accounts (e.g. grant a role with rights they lack)."""


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def find_user(email: str) -> User | None:
    return db.session.scalars(
        select(User).where(func.lower(User.email) == normalise_email(email))
    ).one_or_none()


def ensure_roles() -> dict[str, Role]:
    """Create missing permissions and built-in roles with their defaults; keep edits."""
    permissions = {p.code: p for p in db.session.scalars(select(Permission))}
    for perm in Perm:
        if perm.value not in permissions:
            permissions[perm.value] = Permission(code=perm.value, label=PERMISSION_LABELS[perm])
            db.session.add(permissions[perm.value])
    roles = {r.slug: r for r in db.session.scalars(select(Role))}
    for slug, (name, perms, is_staff) in BUILTIN_ROLES.items():
        if slug not in roles:
            roles[slug] = Role(
                slug=slug,
                name=name,
                builtin=True,
                is_staff=is_staff,
                permissions=[permissions[p.value] for p in perms],
            )
            db.session.add(roles[slug])
    db.session.flush()
    return roles


def create_user(
    email: str,
    name: str,
    role_slug: str,
    password: str | None = None,
    timezone: str = "Europe/London",
) -> User:
    email = normalise_email(email)
    if "@" not in email:
        raise AccountError(f"{email or 'An empty address'} is not a valid email address.")
    if find_user(email) is not None:
        raise DuplicateEmail(f"A user with the email {email} already exists.")
    roles = ensure_roles()
    if role_slug not in roles:
        raise AccountError(f"Unknown role {role_slug!r}.")
    user = User(
        email=email, name=name or email.split("@")[0], role=roles[role_slug], timezone=timezone
    )
    if password is not None:
        check_password_strength(password)
        user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def check_password_strength(password: str) -> None:
    if len(password) < 10:
        raise AccountError("Use a password of at least 10 characters.")


def set_role_permissions(role: Role, codes: set[str]) -> None:
    """Replace a role's permissions; the owner always keeps the ones that run the matrix."""
    unknown = codes - {p.value for p in Perm}
    if unknown:
        raise AccountError(f"Unknown permission {sorted(unknown)[0]!r}.")
    if role.slug == "owner":
        codes = codes | {p.value for p in OWNER_LOCKED}
    by_code = {p.code: p for p in db.session.scalars(select(Permission))}
    role.permissions = [by_code[c] for c in sorted(codes)]
    db.session.flush()


def create_api_token(user: User, name: str = "CLI") -> str:
    """Store a new token's hash and return the plaintext, which is never stored or shown again."""
    token = new_token("sb")
    db.session.add(ApiToken(user=user, name=name, token_hash=hash_token(token), hint=token[-4:]))
    db.session.flush()
    return token


# How stale ``last_used_at`` may get: recording every call would make every API read a write.
TOKEN_USE_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenHolder:
    """Who a live API token speaks for: enough to authorise a request without loading the
    user, their role and its permissions as ORM objects (every API request needs this)."""

    token_id: int
    last_used_at: datetime | None
    user_id: int
    is_staff: bool
    permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        """As ``User.can``: the user's role holds the permission."""
        return permission in self.permissions


@cache
def _live_token(dialect: str) -> Select:
    """Built once per database (a statement object keeps its cache key, so a request only
    binds the hash), the last use as text (:class:`BulkReader`): every API request runs it,
    and its rows are then the driver's own (:func:`driver_rows`)."""
    return (
        select(
            ApiToken.id,
            BulkReader(dialect).instant(ApiToken.last_used_at),
            User.id,
            Role.is_staff,
            Permission.code,
        )
        .join(User, User.id == ApiToken.user_id)
        .join(Role, Role.id == User.role_id)
        .outerjoin(role_permissions, role_permissions.c.role_id == Role.id)
        .outerjoin(Permission, Permission.id == role_permissions.c.permission_id)
        .where(
            ApiToken.token_hash == bindparam("hash"),
            ApiToken.revoked_at.is_(None),
            User.active.is_(True),
        )
    )


def api_token(token: str) -> TokenHolder | None:
    """Who a plaintext token speaks for, if it is live (not revoked, its user active), in one
    statement: the token, its user's role and the role's permission codes (a row each)."""
    statement = _live_token(db.session.connection().dialect.name)
    rows = driver_rows(statement, {"hash": hash_token(token)})
    if not rows:
        return None
    token_id, used_text, user_id, is_staff, _ = rows[0]
    last_used_at = None if used_text is None else datetime.fromisoformat(used_text)
    codes = frozenset(row[4] for row in rows if row[4] is not None)
    return TokenHolder(token_id, last_used_at, user_id, bool(is_staff), codes)


def token_use_is_stale(row: TokenHolder) -> bool:
    return row.last_used_at is None or utcnow() - row.last_used_at >= TOKEN_USE_GRANULARITY


def can_manage(actor: User, target: User) -> bool:
    """An actor may reset the password of someone whose permissions they hold all of, and
    nobody else: resetting a password is taking over the account, so it must never be a way
    to gain rights (an administrator cannot take over an owner)."""
    return actor.can(Perm.USERS_MANAGE) and target.role.permission_codes <= (
        actor.role.permission_codes
    )
