"""Importing people from CSV (issue [07], acceptance 3) on the screen and with
``flask people import``, and the other ``flask people`` commands: all or nothing, every bad
row named by its line number before anything is written."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import event, func, select

from app.accounts.models import Group, User, group_members
from app.accounts.passwords import INVITE_KIND
from app.database import begin_write
from app.extensions import db
from app.outbox import OutboxMessage
from tests.accounts.conftest import changed_tables, db_state
from tests.conftest import csrf_from, login

HEADER = "email,name,role,timezone,groups\n"
ZONES = ["Europe/London", "America/New_York", "Asia/Kolkata", ""]


def _rows(count: int = 500) -> list[str]:
    """``count`` good rows; the file line of row i is i + 2 (the header is line 1)."""
    rows = []
    for n in range(count):
        role = "learner" if n % 5 else "agent"
        groups = "Reviewers;north-team" if n % 7 == 0 else ""
        rows.append(f"person{n:04}@example.test,Person {n:04},{role},{ZONES[n % 4]},{groups}\n")
    return rows


def _csv(rows: list[str]) -> str:
    return HEADER + "".join(rows)


def _with_three_bad_rows() -> tuple[str, dict[int, str]]:
    rows = _rows()
    rows[41] = "person0007@example.test,Copy of 7,agent,,\n"  # line 43: email of line 9
    rows[249] = "person0249@example.test,Person 249,wizard,,\n"  # line 251: unknown role
    rows[498] = "person0498@example.test,Person 498,agent,Mars/Olympus,\n"  # line 500: zone
    return _csv(rows), {
        43: "person0007@example.test is already on line 9",
        251: "unknown role 'wizard'",
        500: "unknown time zone 'Mars/Olympus'",
    }


@pytest.fixture
def groups(app):
    with app.app_context():
        begin_write()
        db.session.add_all(
            [Group(slug="reviewers", name="Reviewers"), Group(slug="north-team", name="North")]
        )
        db.session.commit()


def _users(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def _upload(client, text: str):
    token = csrf_from(client, "/admin/people/import")
    data = {"csrf_token": token, "file": (io.BytesIO(text.encode()), "people.csv")}
    return client.post("/admin/people/import", data=data, content_type="multipart/form-data")


@pytest.fixture
def owner_client(app, client, factory):
    owner = factory.user("owner", email="owner@example.test", name="Olive Owner")
    login(client, owner.email)
    return client


def test_a_file_with_three_bad_rows_writes_nothing_and_names_them(
    app, owner_client, groups, factory
):
    """500 rows, 3 bad: the preview lists exactly lines 43, 251 and 500 with their problems,
    offers no import button, and the database is unchanged."""
    text, bad = _with_three_bad_rows()
    before = db_state(app)
    response = _upload(owner_client, text)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    named = {
        int(n): p
        for n, p in re.findall(r'<li data-line="(\d+)">Line \d+ \([^)]*\): ([^<]+)</li>', html)
    }
    assert named.keys() == bad.keys()
    for line, problem in bad.items():
        assert problem.replace("'", "&#39;") in named[line]
    assert "Nothing was written" in html and 'name="confirm"' not in html
    assert changed_tables(before, db_state(app)) == []


def test_the_fixed_file_writes_500_people_in_one_transaction(app, owner_client, groups):
    """Preview, then confirm: 500 people with their roles, zones and groups, one commit."""
    text = _csv(_rows())
    preview = _upload(owner_client, text)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Import 500 people" in html
    assert _users(app) == 1  # the preview wrote nothing

    commits = []
    with app.app_context():
        engine = db.engine
    listener = lambda conn: commits.append(1)  # noqa: E731
    event.listen(engine, "commit", listener)
    try:
        token = csrf_from(owner_client, "/admin/people/import")
        response = owner_client.post(
            "/admin/people/import", data={"csrf_token": token, "csv_text": text, "confirm": "1"}
        )
    finally:
        event.remove(engine, "commit", listener)
    assert response.status_code == 303 and response.headers["Location"] == "/admin/people"
    assert len(commits) == 1
    assert _users(app) == 501
    with app.app_context():
        kolkata = db.session.scalars(select(User).where(User.email == "person0002@example.test"))
        person = kolkata.one()
        assert (person.name, person.role.slug, person.timezone) == (
            "Person 0002",
            "learner",
            "Asia/Kolkata",
        )
        assert person.password_hash is None and person.active
        members = db.session.scalar(select(func.count()).select_from(group_members))
        assert members == 2 * len(range(0, 500, 7))
    assert "Olive Owner imported 500 people" in owner_client.get("/admin/people").get_data(
        as_text=True
    )


def test_import_rechecks_at_confirm_and_refuses_what_changed(app, owner_client, groups, factory):
    """An email taken between preview and confirm: nothing is written, the row is named."""
    text = _csv(_rows(3))
    assert _upload(owner_client, text).status_code == 200
    factory.user("agent", email="person0001@example.test")
    before = db_state(app)
    token = csrf_from(owner_client, "/admin/people/import")
    response = owner_client.post(
        "/admin/people/import", data={"csrf_token": token, "csv_text": text, "confirm": "1"}
    )
    assert response.status_code == 400
    assert "person0001@example.test already has an account" in response.get_data(as_text=True)
    assert changed_tables(before, db_state(app)) == []


def test_import_names_other_problems(app, owner_client, factory):
    factory.user("agent", email="taken@example.test")
    text = _csv(
        [
            "taken@example.test,Taken,agent,,\n",
            "no-at-sign,Bad,agent,,\n",
            "fine@example.test,Fine,agent,,Nowhere\n",
            ",No email,agent,,\n",
            "norole@example.test,No role,,,\n",
        ]
    )
    html = _upload(owner_client, text).get_data(as_text=True)
    assert "Line 2 (taken@example.test): taken@example.test already has an account" in html
    assert "Line 3 (no-at-sign): &#39;no-at-sign&#39; is not a valid email address" in html
    assert "Line 4 (fine@example.test): unknown group &#39;Nowhere&#39;" in html
    assert "Line 5: no email address" in html
    assert "Line 6 (norole@example.test): no role" in html
    bad_header = _upload(owner_client, "mail,name\nx@example.test,X\n")
    assert bad_header.status_code == 400
    assert "Line 1 must name the columns" in bad_header.get_data(as_text=True)


def test_administrator_cannot_import_owners(app, client, factory):
    admin = factory.user("administrator", email="admin@example.test")
    login(client, admin.email)
    html = _upload(client, _csv(["boss@example.test,Boss,owner,,\n"])).get_data(as_text=True)
    assert "Line 2 (boss@example.test): you cannot give the role Owner" in html
    assert _users(app) == 1


# --- flask people ------------------------------------------------------------------------


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=list(args), catch_exceptions=False)

    return invoke


def test_cli_import_dry_run_then_for_real(app, cli, groups, tmp_path, factory):
    factory.user("owner", email="owner@example.test")
    text, bad = _with_three_bad_rows()
    path = tmp_path / "people.csv"
    path.write_text(text)
    before = db_state(app)
    for args in (["--dry-run"], []):
        result = cli("people", "import", str(path), *args)
        assert result.exit_code == 1, result.output
        for line, problem in bad.items():
            assert f"line {line}: {problem}" in result.output
        assert len(re.findall(r"^line \d+:", result.output, re.M)) == 3
        assert "Nothing was written: 3 bad rows of 500" in result.output
    assert changed_tables(before, db_state(app)) == []

    path.write_text(_csv(_rows()))
    dry = cli("people", "import", str(path), "--dry-run")
    assert dry.exit_code == 0 and "All 500 rows are fine; nothing was written" in dry.output
    assert changed_tables(before, db_state(app)) == []
    real = cli("people", "import", str(path))
    assert real.exit_code == 0 and "Imported 500 people." in real.output
    assert _users(app) == 501
    again = cli("people", "import", str(path))
    assert again.exit_code == 1 and "line 2: person0000@example.test already has an account" in (
        again.output
    )
    assert _users(app) == 501


def test_cli_add_and_list(app, cli):
    result = cli(
        "people", "add", "Amara@Example.test", "--name", "Amara", "--role", "owner",
        "--timezone", "Asia/Tokyo",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Added amara@example.test (Owner, Asia/Tokyo)." in result.output
    invited = cli(
        "people", "add", "lee@example.test", "--name", "Lee", "--role", "learner", "--invite"
    )
    assert invited.exit_code == 0 and "invitation" in invited.output
    with app.app_context():
        lee = db.session.scalars(select(User).where(User.email == "lee@example.test")).one()
        kinds = [
            m.payload
            for m in db.session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == INVITE_KIND)
            )
        ]
        assert kinds == [{"user_id": lee.id, "invited_by_id": None}]
    for bad, message in [
        (["--role", "wizard"], "Unknown role 'wizard'"),
        (["--role", "agent", "--timezone", "Mars/Olympus"], "Unknown time zone"),
    ]:
        result = cli("people", "add", "x@example.test", "--name", "X", *bad)
        assert result.exit_code == 1 and message in result.output
    duplicate = cli("people", "add", "AMARA@example.test", "--name", "A", "--role", "agent")
    assert duplicate.exit_code == 1 and "already uses the email" in duplicate.output
    assert _users(app) == 2

    listing = cli("people", "list")
    assert listing.exit_code == 0
    lines = [line for line in listing.output.splitlines() if "\t" in line]
    assert lines == [
        "amara@example.test\tAmara\towner\tAsia/Tokyo\tactive",
        "lee@example.test\tLee\tlearner\tEurope/London\tactive",
    ]
    learners = cli("people", "list", "--role", "learner")
    assert [line.split("\t")[0] for line in learners.output.splitlines() if "\t" in line] == [
        "lee@example.test"
    ]
