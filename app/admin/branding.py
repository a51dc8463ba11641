"""Branding rules (issue [09]): the organisation's name, primary colour and logo.

Every rule lives here; the screen (``branding_routes.py``) only loads, authorises, calls and
renders. Services flush, never commit.

- The primary colour is the background of the public header and buttons and of the email
  header, always under white text, so it must reach WCAG AA's 4.5:1 against white; an
  unreadable colour is refused with its ratio, never stored. That rule is the setting's own
  check in ``app/admin/settings.py`` (so ``flask settings set`` obeys it too).
- A logo is PNG, JPEG or SVG of at most 512 KB, recognised by its bytes (never by its name or
  the browser's content type). An SVG can carry script, so one holding a script, an event
  handler, a foreignObject, a DOCTYPE/entity, or a reference to anything outside itself is
  refused whole rather than rewritten: what is served is exactly what was checked.
"""

from __future__ import annotations

import hashlib
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from flask import url_for

from app.admin import settings
from app.admin.branding_models import BrandingAsset
from app.extensions import db

LOGO = "logo"
MAX_LOGO_BYTES = 512 * 1024
WHITE = "#ffffff"
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}
HASH_IN_URL = 16  # hex digits of the sha256 in the logo's URL: enough to never repeat

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
SVG_NS = "http://www.w3.org/2000/svg"
# Elements that run code or embed other documents.
_SVG_FORBIDDEN_ELEMENTS = {
    "script",
    "foreignobject",
    "iframe",
    "embed",
    "object",
    "handler",
    "listener",
    "audio",
    "video",
}
_CSS_DANGER = re.compile(r"url\s*\(\s*['\"]?\s*(?!#)|@import|expression\s*\(|javascript:", re.I)


class BrandingError(ValueError):
    """Input the branding screen refuses; the message is shown to the admin as it is."""


# --- name and colour -----------------------------------------------------------------------


class BrandingInvalid(BrandingError):
    """Some fields were refused; nothing was saved. ``errors``: field -> message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def save_details(name: str, colour: str, actor_id: int | None) -> list[tuple[str, object]]:
    """Store the organisation name and primary colour, both or neither.

    The rules (a name of at most 120 characters; a ``#rrggbb`` colour readable under white
    text) are the settings' own (``app/admin/settings.py``, shared with ``flask settings
    set``); each real change gets the settings' audit entry. Returns the changed keys."""
    values = {
        "organisation_name": " ".join((name or "").split()),
        "brand_primary_colour": (colour or "").strip().lower(),
    }
    try:
        return settings.save_settings(values, actor_id)
    except settings.SettingsInvalid as exc:
        raise BrandingInvalid(dict(exc.errors)) from None


def ratio_against_white(colour: str) -> float:
    return settings.contrast_ratio(colour, WHITE)


# --- logo ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogoInfo:
    """What pages need to show the logo: never the bytes."""

    content_type: str
    sha256: str
    size: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.content_type]

    @property
    def digest(self) -> str:
        return self.sha256[:HASH_IN_URL]


def describe_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{math.ceil(size / 1024)} KB"  # never "512 KB" for a file over 512 KB
    return f"{size} bytes"


def too_large_message(size: int) -> str:
    return (
        f"The file is {describe_size(size)}; a logo may be at most "
        f"{describe_size(MAX_LOGO_BYTES)}. Nothing was changed."
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _check_svg(data: bytes) -> None:
    """Refuse an SVG that could run code or fetch anything (see the module docstring)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BrandingError("This SVG is not UTF-8 text.") from exc
    lowered = text.lower()
    if "<!doctype" in lowered or "<!entity" in lowered:
        raise BrandingError("SVG logos may not contain a DOCTYPE or entity declarations.")
    if "<?xml-stylesheet" in lowered:
        raise BrandingError("SVG logos may not load style sheets.")
    try:
        # DOCTYPEs (so entities) are refused above and expat fetches nothing external.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as exc:
        raise BrandingError(f"This SVG could not be read: {exc}.") from exc
    if root.tag != f"{{{SVG_NS}}}svg":
        raise BrandingError("This file is not an SVG image (its root element is not <svg>).")
    for element in root.iter():
        name = _local(element.tag)
        if name in _SVG_FORBIDDEN_ELEMENTS:
            raise BrandingError(f"SVG logos may not contain a <{name}> element.")
        if name == "style" and _CSS_DANGER.search(element.text or ""):
            raise BrandingError("SVG logos may not load anything from their style sheet.")
        for attribute, value in element.attrib.items():
            attr = _local(attribute)
            if attr.startswith("on"):
                raise BrandingError(
                    f"SVG logos may not contain event handlers (the {attr} attribute)."
                )
            if attr in {"href", "src"} and not value.strip().startswith("#"):
                raise BrandingError(
                    "SVG logos may not link to anything outside themselves "
                    f"(found {attr}={value.strip()[:60]!r})."
                )
            if attr == "attributename" and _local(value.split(":")[-1]) in {"href", "src"}:
                raise BrandingError("SVG logos may not animate a link (attributeName=href).")
            if "javascript:" in value.lower().replace(" ", ""):
                raise BrandingError("SVG logos may not contain javascript: addresses.")
            if attr == "style" and _CSS_DANGER.search(value):
                raise BrandingError("SVG logos may not load anything from a style attribute.")


def content_type_of(data: bytes) -> str:
    """The logo's type from its bytes, or a BrandingError saying what is accepted."""
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<?xml", b"<svg", b"<!--", b"<!doctype")):
        _check_svg(data)
        return "image/svg+xml"
    raise BrandingError(
        "This file is not a PNG, JPEG or SVG image (its contents say otherwise, whatever its "
        "name). Upload a PNG, JPEG or SVG logo."
    )


def _describe(info: LogoInfo | None) -> str | None:
    if info is None:
        return None
    return f"{info.extension.upper()}, {describe_size(info.size)}, {info.digest}"


def _audit(before: LogoInfo | None, after: LogoInfo | None, actor_id: int | None) -> None:
    """The logo's change in the settings' audit trail (shown on the branding screen)."""
    from app.bookings.models import AuditEntry  # the shared audit trail, as settings use it

    db.session.add(
        AuditEntry(
            booking_id=None,
            actor_id=actor_id,
            action=settings.AUDIT_ACTION,
            changes={LOGO: [_describe(before), _describe(after)]},
        )
    )


def save_logo(data: bytes, actor_id: int | None = None) -> LogoInfo:
    """Check and store ``data`` as the logo, replacing any previous one."""
    if not data:
        raise BrandingError("Choose a logo file to upload.")
    if len(data) > MAX_LOGO_BYTES:
        raise BrandingError(too_large_message(len(data)))
    content_type = content_type_of(data)
    digest = hashlib.sha256(data).hexdigest()
    before = logo_info()
    row = db.session.get(BrandingAsset, LOGO)
    if row is None:
        row = BrandingAsset(kind=LOGO)
        db.session.add(row)
    row.content_type = content_type
    row.data = data
    row.size = len(data)
    row.sha256 = digest
    after = LogoInfo(content_type, digest, len(data))
    if before != after:
        _audit(before, after, actor_id)
    db.session.flush()
    return after


def remove_logo(actor_id: int | None = None) -> bool:
    """Remove the logo; False when there was none."""
    before = logo_info()
    row = db.session.get(BrandingAsset, LOGO)
    if row is None:
        return False
    db.session.delete(row)
    _audit(before, None, actor_id)
    db.session.flush()
    return True


def logo_info() -> LogoInfo | None:
    """The current logo's type and hash (one small query, no bytes)."""
    row = db.session.execute(
        db.select(BrandingAsset.content_type, BrandingAsset.sha256, BrandingAsset.size).where(
            BrandingAsset.kind == LOGO
        )
    ).first()
    return LogoInfo(*row) if row else None


def logo_for(digest: str, extension: str) -> BrandingAsset | None:
    """The logo whose URL is ``logo-<digest>.<extension>``: only the current one, so an old
    URL (cached for a year) never shows different bytes."""
    row = db.session.get(BrandingAsset, LOGO)
    if row is None or row.sha256[:HASH_IN_URL] != digest:
        return None
    if EXTENSIONS[row.content_type] != extension:
        return None
    return row


def logo_url(external: bool = False) -> str | None:
    """The logo's URL (absolute under SLOTBOOK_BASE_URL for emails), or None without one."""
    info = logo_info()
    if info is None:
        return None
    values = {"digest": info.digest, "extension": info.extension}
    if external:
        from app.urls import absolute_url

        return absolute_url("branding.logo", **values)
    return url_for("branding.logo", **values)


def recent_changes(limit: int = 10) -> list:
    """The latest changes of the name, colour and logo, newest first."""
    return settings.recent_changes(["organisation_name", "brand_primary_colour", LOGO], limit)
