"""Migrations match the models and run both ways, through the real ``flask db`` commands.

SQLite always; PostgreSQL too when ``TEST_DATABASE_URL`` is set, in a database created for
this test on that server (so the shared test database is left alone) and dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, inspect

from app.config import PROJECT_ROOT, normalise_database_url

pytestmark = pytest.mark.db

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


def _fresh_postgres() -> Iterator[str]:
    import psycopg

    server = urlsplit(TEST_DATABASE_URL)
    name = f"slotbook_migr_{uuid.uuid4().hex[:12]}"
    admin_url = server._replace(scheme="postgresql").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# PostgreSQL joins the backends when TEST_DATABASE_URL names one (as .ci/run does).
BACKENDS = ["sqlite", "postgresql"] if TEST_DATABASE_URL else ["sqlite"]


@pytest.fixture(params=BACKENDS)
def empty_database(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
    else:
        yield from _fresh_postgres()


def flask_db(url: str, instance: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DATABASE_URL=url, SLOTBOOK_INSTANCE_DIR=str(instance))
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "flask", "--app", "app:create_app", "db", *args]
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"flask db {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def tables(url: str) -> set[str]:
    engine = create_engine(normalise_database_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_matches_models_and_downgrades_to_base(empty_database, tmp_path):
    from app import _import_models
    from app.extensions import db

    _import_models()  # every model's table, as create_app() sees them
    flask_db(empty_database, tmp_path, "upgrade")
    expected = {table.name for table in db.metadata.sorted_tables}
    assert tables(empty_database) == expected | {"alembic_version"}

    check = flask_db(empty_database, tmp_path, "check")
    assert "No new upgrade operations detected" in check.stdout + check.stderr

    flask_db(empty_database, tmp_path, "downgrade", "base")
    assert tables(empty_database) <= {"alembic_version"}

    # And back up again: a downgrade must leave nothing behind that blocks the next upgrade.
    flask_db(empty_database, tmp_path, "upgrade")
    assert tables(empty_database) == expected | {"alembic_version"}
