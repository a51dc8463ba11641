"""Provider registry: one class per ``ConnectionKind``, looked up by the connection's kind."""

from __future__ import annotations

from dataclasses import replace

from flask import current_app, has_app_context

from app.connections.models import Connection
from app.connections.providers.base import Provider, ProviderSettings
from app.urls import absolute_url

_REGISTRY: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    _REGISTRY[cls.kind] = cls
    return cls


def provider_settings() -> ProviderSettings:
    """Configuration for providers, read from the running app. ``SLOTBOOK_CALENDAR_TIMEOUT``
    (one request, default 20 s) and ``SLOTBOOK_CALENDAR_DOWNLOAD_TIMEOUT`` (a whole feed or
    discovery, default 60 s) may be set in the app's config; tests shorten them."""
    from app.admin.settings import get_setting

    config = current_app.config
    redirect_uri = absolute_url("connections.microsoft_callback")
    client_id, client_secret = _organisation_app()
    google_id, google_secret = _google_client()
    return ProviderSettings(
        allow_private_urls=bool(
            config.get("SLOTBOOK_ALLOW_PRIVATE_URLS") or get_setting("allow_private_calendar_urls")
        ),
        authority_host=config["MS_AUTHORITY_HOST"].rstrip("/"),
        graph_url=config["MS_GRAPH_URL"].rstrip("/"),
        redirect_uri=redirect_uri,
        ms_client_id=client_id,
        ms_client_secret=client_secret,
        google_auth_uri=config["GOOGLE_AUTH_URI"],
        google_token_uri=config["GOOGLE_TOKEN_URI"],
        google_api_url=config["GOOGLE_CALENDAR_API_URL"].rstrip("/"),
        google_client_id=google_id,
        google_client_secret=google_secret,
        google_redirect_uri=absolute_url("connections.google_callback"),
        timeout=float(config.get("SLOTBOOK_CALENDAR_TIMEOUT", 20.0)),
        download_timeout=float(config.get("SLOTBOOK_CALENDAR_DOWNLOAD_TIMEOUT", 60.0)),
    )


def _organisation_app() -> tuple[str, str]:
    """Client id and secret of the organisation's Microsoft app registration, if set up."""
    from sqlalchemy import select

    from app.connections.models import ConnectionKind
    from app.extensions import db

    org = db.session.scalars(
        select(Connection).where(Connection.kind == ConnectionKind.MICROSOFT_ORG)
    ).first()
    if org is None or not org.client_id:
        return "", ""
    return org.client_id, org.reveal_secret() or ""


def _google_client() -> tuple[str, str]:
    """The organisation's Google OAuth client (id, secret) for personal links, if entered;
    it is kept on the Google Workspace row, sealed with its service account key."""
    from sqlalchemy import select

    from app.connections.models import ConnectionKind
    from app.extensions import db

    org = db.session.scalars(
        select(Connection).where(Connection.kind == ConnectionKind.GOOGLE_ORG)
    ).first()
    if org is None or not org.client_id or not org.secret_sealed:
        return "", ""
    from app.connections.providers.google import org_secret

    secret = org_secret(org.reveal_secret()).get("client_secret") or ""
    return (org.client_id, str(secret)) if secret else ("", "")


def provider_for(connection: Connection, settings: ProviderSettings | None = None) -> Provider:
    """The provider object for a connection, holding its decrypted secret for this call only."""
    _load_builtin_providers()
    cls = _REGISTRY[connection.kind]
    settings = settings or provider_settings()
    if not settings.person_zones:
        settings = replace(settings, person_zones=_person_zones(connection))
    return cls(connection, connection.reveal_secret(), settings)


def _person_zones(connection: Connection) -> tuple[tuple[int, str], ...]:
    """Each calendar owner's zone, read here (before any network call) because providers
    never touch the database."""
    from sqlalchemy import select

    from app.accounts.models import User
    from app.extensions import db

    if not has_app_context():
        return ()
    with db.session.no_autoflush:  # a connection being set up is not saved by reading
        ids = {c.person_id for c in connection.calendars} | {connection.user_id}
        ids.discard(None)
        if not ids:
            return ()
        query = select(User.id, User.timezone).where(User.id.in_(ids))
        rows = db.session.execute(query).all()
    return tuple((row.id, row.timezone) for row in rows if row.timezone)


def _load_builtin_providers() -> None:
    # Imported on first use: each module registers its class.
    from app.connections.providers import caldav, google, graph, ics  # noqa: F401
