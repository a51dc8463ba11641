"""Branding settings (issue [09]): organisation name, primary colour and the logo.

Every refusal is checked to store nothing; every acceptance is checked where it shows: the
public pages (/book), an email delivered to a real local SMTP server, and the staff header.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.admin.branding_models import BrandingAsset
from app.admin.settings import SettingError, contrast_ratio, get_setting, set_setting
from app.database import begin_write
from app.extensions import db
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import csrf_from, login
from tests.notifications import conftest as _mail
from tests.notifications.conftest import deliver_all

smtp_server = _mail.smtp_server  # the real local SMTP server fixture
PAGE = "/admin/settings/branding"
LOGO_URL = re.compile(r'src="(/branding/logo-([0-9a-f]{16})\.(png|jpg|svg))"')


def png_bytes(width: int = 2, height: int = 1) -> bytes:
    """A real, minimal PNG (any image viewer opens it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x24\x57\xa7" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
JPEG += b"\xff\xd9"
SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    b'width="160" height="40" viewBox="0 0 160 40">'
    b'<defs><linearGradient id="g"><stop offset="0" stop-color="#2457a7"/></linearGradient></defs>'
    b'<rect width="160" height="40" fill="url(#g)"/><use xlink:href="#g"/>'
    b'<text x="8" y="26" fill="#fff" style="font-weight:bold">Acme</text></svg>'
)


@pytest.fixture
def admin(factory):
    return factory.user("administrator", email="adam@example.test", name="Adam Admin")


@pytest.fixture
def token(client, admin):
    login(client, admin.email)
    return csrf_from(client, PAGE)


def _upload(client, token: str, data: bytes, filename: str = "logo.png"):
    return client.post(
        f"{PAGE}/logo",
        data={"csrf_token": token, "logo": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def _stored(app) -> tuple[str, bytes, str] | None:
    with app.app_context():
        row = db.session.get(BrandingAsset, "logo")
        found = (row.content_type, row.data, row.sha256) if row else None
        db.session.rollback()
    return found


def _logo_src(html: str) -> str:
    match = LOGO_URL.search(html)
    assert match, "no logo on the page"
    return match.group(1)


# --- the logo upload ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "extension"),
    [
        (png_bytes(), "logo.png", "image/png", "png"),
        (JPEG, "logo.jpeg", "image/jpeg", "jpg"),
        (SVG, "logo.svg", "image/svg+xml", "svg"),
        (png_bytes(), "named-wrongly.svg", "image/png", "png"),  # the bytes decide, not the name
    ],
)
def test_each_image_type_is_stored_and_served(
    app, client, token, data, filename, content_type, extension
):
    """PNG, JPEG and SVG are stored in the database as uploaded and served with a year's cache,
    nosniff and a restrictive CSP under a URL that carries the hash."""
    response = _upload(client, token, data, filename)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    stored = _stored(app)
    assert stored == (content_type, data, hashlib.sha256(data).hexdigest())

    page = client.get(PAGE).get_data(as_text=True)
    assert "Logo uploaded" in page
    src = _logo_src(page)
    assert src == f"/branding/logo-{stored[2][:16]}.{extension}"

    served = app.test_client().get(src)  # anonymous: public pages and emails show it
    assert served.status_code == 200
    assert served.data == data
    assert served.headers["Content-Type"] == content_type
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    csp = served.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp
    # Another extension or hash under the same scheme is not this logo.
    assert app.test_client().get(src.rsplit(".", 1)[0] + ".gif").status_code == 404
    assert app.test_client().get("/branding/logo-0123456789abcdef.png").status_code == 404


def test_a_5_mb_file_is_refused_with_a_clear_page_and_nothing_stored(app, client, token):
    """5 MB: the branding page again (413) saying the size and the limit; no row written."""
    before = db_state(app)
    big = png_bytes() + b"\x00" * (5 * 1024 * 1024)
    response = _upload(client, token, big)
    assert response.status_code == 413
    body = response.get_data(as_text=True)
    assert "The file is 5.0 MB; a logo may be at most 512 KB. Nothing was changed." in body
    assert 'id="b-logo"' in body  # the form again, not a bare error page
    assert changed_tables(before, db_state(app)) == []


def test_a_file_just_over_512_kb_is_refused(app, client, token):
    """A file a little over the limit (its Content-Length could still fit) is refused too."""
    response = _upload(client, token, png_bytes() + b"\x00" * (512 * 1024))
    assert response.status_code == 413
    assert "The file is 513 KB; a logo may be at most 512 KB." in response.get_data(as_text=True)
    assert _stored(app) is None
    exactly = png_bytes()
    exactly += b"\x00" * (512 * 1024 - len(exactly))
    assert _upload(client, token, exactly).status_code == 303


@pytest.mark.parametrize(
    ("svg", "message"),
    [
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "may not contain a &lt;script&gt; element",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>',
            "event handlers (the onload attribute)",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><rect onclick="x()"/></svg>',
            "event handlers (the onclick attribute)",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)">'
            b"<rect/></a></svg>",
            "may not link to anything outside themselves",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink">'
            b'<image x:href="https://evil.example/p.png"/></svg>',
            "may not link to anything outside themselves",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><div>x</div>'
            b"</foreignObject></svg>",
            "may not contain a &lt;foreignobject&gt; element",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><style>rect{fill:url(https://x.example/a)}'
            b"</style></svg>",
            "may not load anything from their style sheet",
        ),
        (
            b'<!DOCTYPE svg [<!ENTITY x "y">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>',
            "may not contain a DOCTYPE",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><a><set attributeName="xlink:href" '
            b'to="https://evil.example/"/><rect/></a></svg>',
            "may not animate a link",
        ),
        (b"<svg><rect/></svg>", "its root element is not &lt;svg&gt;"),  # no SVG namespace
        (b'<svg xmlns="http://www.w3.org/2000/svg"><rect>', "could not be read"),
    ],
)
def test_unsafe_or_broken_svgs_are_refused(app, client, token, svg, message):
    """Script, handlers, javascript:/external links, foreignObject, remote CSS, entities: 400
    with the reason, nothing stored."""
    before = db_state(app)
    response = _upload(client, token, svg, "logo.svg")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"GIF89a\x01\x00\x01\x00", "logo.png"),
        (b"just some text", "logo.jpg"),
        (b"\x89PNX\r\n\x1a\n" + b"\x00" * 20, "logo.png"),
        (b"%PDF-1.7", "logo.svg"),
    ],
)
def test_wrong_magic_bytes_are_refused(app, client, token, data, filename):
    """Whatever the name says, bytes that are not PNG, JPEG or SVG are refused."""
    before = db_state(app)
    response = _upload(client, token, data, filename)
    assert response.status_code == 400
    assert "This file is not a PNG, JPEG or SVG image" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []


def test_no_file_is_a_clear_message(app, client, token):
    response = client.post(
        f"{PAGE}/logo", data={"csrf_token": token}, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert "Choose a logo file to upload." in response.get_data(as_text=True)


def test_the_url_changes_with_the_logo_and_old_urls_stop_serving(app, client, token):
    """A new logo gets a new URL (caches keep the old bytes under the old one, which is then
    gone), never new bytes under an old URL."""
    _upload(client, token, png_bytes(2, 1))
    first = _logo_src(client.get("/book").get_data(as_text=True))
    _upload(client, token, png_bytes(3, 1))
    second = _logo_src(client.get("/book").get_data(as_text=True))
    assert first != second
    assert app.test_client().get(first).status_code == 404
    assert app.test_client().get(second).data == png_bytes(3, 1)


def test_remove_asks_first_then_removes(app, client, token):
    """GET shows a confirmation and changes nothing; POST removes; pages lose the logo."""
    _upload(client, token, SVG, "logo.svg")
    src = _logo_src(client.get("/book").get_data(as_text=True))
    before = db_state(app)
    confirm = client.get(f"{PAGE}/logo/remove")
    assert confirm.status_code == 200
    assert "Remove the logo?" in confirm.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []

    response = client.post(f"{PAGE}/logo/remove", data={"csrf_token": token})
    assert response.status_code == 303
    assert _stored(app) is None
    assert "/branding/logo-" not in client.get("/book").get_data(as_text=True)
    assert app.test_client().get(src).status_code == 404
    again = client.get(f"{PAGE}/logo/remove", follow_redirects=True)
    assert "There is no logo to remove." in again.get_data(as_text=True)


# --- name and colour ---------------------------------------------------------------------


def test_contrast_ratio_matches_wcag():
    assert round(contrast_ratio("#000000", "#ffffff"), 2) == 21.0
    assert round(contrast_ratio("#ffffff", "#ffffff"), 2) == 1.0
    assert round(contrast_ratio("#767676", "#ffffff"), 2) == 4.54  # the classic AA grey


def test_name_and_colour_are_saved_and_drive_the_public_page(app, client, token):
    """Saved values reach /book: the name in the header and title, the colour in --brand."""
    response = client.post(
        PAGE,
        data={
            "csrf_token": token,
            "organisation_name": " Acme   Training ",
            "brand_primary_colour": "#1F6F43",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        assert get_setting("organisation_name") == "Acme Training"
        assert get_setting("brand_primary_colour") == "#1f6f43"
    page = client.get(PAGE).get_data(as_text=True)
    assert "Branding saved (Organisation name: Acme Training, Primary colour: #1f6f43)." in page
    changes = page[page.index('id="branding-changes"') :]
    assert "<td>Adam Admin</td>" in changes
    assert "<td>Slotbook Training → Acme Training</td>" in changes
    assert "<td>#2457a7 → #1f6f43</td>" in changes
    public = client.get("/book").get_data(as_text=True)
    assert "--brand: #1f6f43" in public
    assert "Acme Training</span>" in public


@pytest.mark.parametrize(
    ("colour", "message"),
    [
        (
            "#ffcc00",
            "Primary colour: #ffcc00 is too light for white text: its contrast ratio is 1.51:1",
        ),
        ("#777777", "its contrast ratio is 4.48:1 and at least 4.5:1 is needed"),
        ("red", "Primary colour: expected a colour as #rrggbb"),
        ("#12345", "Primary colour: expected a colour as #rrggbb"),
        ("#2457a7;}body{x", "Primary colour: expected a colour as #rrggbb"),
    ],
)
def test_unreadable_or_malformed_colours_are_refused(app, client, token, colour, message):
    """A colour under 4.5:1 against white is refused with its ratio; nothing is stored."""
    before = db_state(app)
    response = client.post(
        PAGE,
        data={"csrf_token": token, "organisation_name": "Acme", "brand_primary_colour": colour},
    )
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert message in body
    assert 'aria-invalid="true"' in body
    assert changed_tables(before, db_state(app)) == []


def test_an_empty_name_is_refused(app, client, token):
    before = db_state(app)
    response = client.post(
        PAGE,
        data={"csrf_token": token, "organisation_name": "  ", "brand_primary_colour": "#2457a7"},
    )
    assert response.status_code == 400
    assert "Organisation name: enter a name" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []


def test_the_command_line_obeys_the_same_contrast_rule(app):
    """``flask settings set`` uses the setting's own check: an unreadable colour is refused."""
    with app.app_context():
        begin_write()
        with pytest.raises(SettingError, match=r"contrast ratio is 1\.51:1"):
            set_setting("brand_primary_colour", "#ffcc00")
        set_setting("brand_primary_colour", "#1f6f43")
        db.session.commit()
        assert get_setting("brand_primary_colour") == "#1f6f43"


def test_logo_changes_are_in_the_audit_trail(app, client, token):
    """Upload, replace and remove each leave an entry with who and what (type, size, hash)."""
    _upload(client, token, SVG, "logo.svg")
    _upload(client, token, png_bytes())
    client.post(f"{PAGE}/logo/remove", data={"csrf_token": token})
    page = client.get(PAGE).get_data(as_text=True)
    rows = re.findall(r"<td>Logo</td>\s*<td>([^<]*)</td>", page)
    svg_digest = hashlib.sha256(SVG).hexdigest()[:16]
    png_digest = hashlib.sha256(png_bytes()).hexdigest()[:16]
    svg = f"SVG, {len(SVG)} bytes, {svg_digest}"
    png = f"PNG, {len(png_bytes())} bytes, {png_digest}"
    assert rows == [f"{png} → —", f"{svg} → {png}", f"— → {svg}"]


# --- where the logo shows ----------------------------------------------------------------


def test_logo_shows_on_book_and_in_the_staff_header(app, client, token, factory):
    """Public pages show it beside the name; every staff page shows it in the header."""
    assert "/branding/logo-" not in client.get("/book").get_data(as_text=True)
    _upload(client, token, png_bytes())
    public = client.get("/book").get_data(as_text=True)
    src = _logo_src(public)
    assert f'<img class="pub-logo" src="{src}"' in public
    agent = factory.user("agent", email="ann@example.test")
    staff = app.test_client()
    login(staff, agent.email)
    header = staff.get("/me/profile").get_data(as_text=True)
    assert f'<img class="brand-logo" src="{src}"' in header


def test_logo_shows_in_emails_with_an_absolute_url(app, client, token, smtp_server):
    """An email (a real invitation, delivered over SMTP) shows the logo by absolute URL under
    SLOTBOOK_BASE_URL, and the header in the primary colour."""
    from app.accounts.passwords import send_invitation
    from app.accounts.service import create_user

    _upload(client, token, png_bytes())
    client.post(
        PAGE,
        data={"csrf_token": token, "organisation_name": "Acme", "brand_primary_colour": "#1f6f43"},
    )
    src = _logo_src(client.get("/book").get_data(as_text=True))
    with app.app_context():
        begin_write()
        user = create_user("ines@example.test", "Ines", "agent")
        inviter = db.session.scalars(select(User).where(User.email == "adam@example.test")).one()
        send_invitation(user, inviter)
        db.session.commit()
    deliver_all(app)
    [mail] = smtp_server.to("ines@example.test")
    base = app.config["SLOTBOOK_BASE_URL"].rstrip("/")
    assert f'<img src="{base}{src}" alt="Acme"' in mail.html
    assert "background:#1f6f43" in mail.html


# --- who may -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("owner", True),
        ("administrator", True),
        ("manager", False),
        ("booking-manager", False),
        ("agent", False),
        ("learner", False),
    ],
)
def test_only_settings_managers_may_see_or_change_branding(app, factory, role, allowed):
    """settings.manage: owners and administrators; others get 403 and change nothing."""
    user = factory.user(role)
    client = app.test_client()
    login(client, user.email)
    token = csrf_from(client, "/me/profile")
    before = db_state(app)
    requests = [
        client.get(PAGE),
        client.post(
            PAGE,
            data={"csrf_token": token, "organisation_name": "X", "brand_primary_colour": "#000000"},
        ),
        _upload(client, token, png_bytes()),
        client.get(f"{PAGE}/logo/remove"),
        client.post(f"{PAGE}/logo/remove", data={"csrf_token": token}),
    ]
    statuses = [r.status_code for r in requests]
    if allowed:
        assert statuses == [200, 303, 303, 200, 303]
    else:
        assert statuses == [403] * 5
        assert changed_tables(before, db_state(app)) == []
        nav = client.get("/me/profile").get_data(as_text=True)
        assert PAGE not in nav


def test_anonymous_is_sent_to_sign_in(app):
    response = app.test_client().get(PAGE)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_posts_without_a_csrf_token_change_nothing(app, client, token):
    """Every branding POST needs the form's CSRF token."""
    _upload(client, token, png_bytes())
    before = db_state(app)
    for response in [
        client.post(PAGE, data={"organisation_name": "X", "brand_primary_colour": "#000000"}),
        client.post(
            f"{PAGE}/logo",
            data={"logo": (io.BytesIO(JPEG), "l.jpg")},
            content_type="multipart/form-data",
        ),
        client.post(f"{PAGE}/logo/remove", data={}),
    ]:
        assert response.status_code == 400
        assert "Your form expired" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []
