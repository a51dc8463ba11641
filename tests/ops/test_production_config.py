"""Production refuses to start without Redis unless told by name to run without background work.

Without ``REDIS_URL`` the outbox is never delivered and rate limits are kept per process, so a
production start without it used to look healthy while sending nothing (issue [11]).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app import create_app
from app.config import PROJECT_ROOT, Config, ConfigError
from app.extensions import db
from app.security import generate_key

STRONG_SECRET = "k" * 20 + "Zx9-Qw3_Lm7Pt2Rv5Ys8"


@pytest.fixture
def production(monkeypatch, tmp_path):
    """A production environment with real keys and nothing about Redis."""
    for name in ("REDIS_URL", "SLOTBOOK_NO_BACKGROUND_JOBS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLOTBOOK_ENV", "production")
    monkeypatch.setenv("SLOTBOOK_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", STRONG_SECRET)
    monkeypatch.setenv("SLOTBOOK_ENCRYPTION_KEYS", generate_key())
    return monkeypatch


def _run_in_project(*arguments: str) -> subprocess.CompletedProcess:
    """Python in the project folder, in this test's environment (as gunicorn or systemd would
    start it there)."""
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_without_redis_url_is_refused_with_the_way_out(production):
    with pytest.raises(ConfigError) as refused:
        Config()
    message = str(refused.value)
    assert "REDIS_URL must be set in production" in message
    assert "SLOTBOOK_NO_BACKGROUND_JOBS=1" in message


def test_production_starts_with_redis_url(production):
    production.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert Config().REDIS_URL == "redis://127.0.0.1:6379/0"


def test_both_redis_and_no_background_jobs_is_refused(production):
    production.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    production.setenv("SLOTBOOK_NO_BACKGROUND_JOBS", "1")
    with pytest.raises(ConfigError, match="unset one of them"):
        Config()


def test_development_and_tests_still_start_without_redis(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("SLOTBOOK_INSTANCE_DIR", str(tmp_path))
    for environment in ("development", "testing"):
        monkeypatch.setenv("SLOTBOOK_ENV", environment)
        assert Config().REDIS_URL is None


def test_wsgi_refuses_to_start_and_says_why(production):
    """What gunicorn runs: the import of ``wsgi`` fails with the sentence, not a traceback
    about a missing connection later."""
    done = _run_in_project("-c", "import wsgi")
    assert done.returncode != 0
    assert "REDIS_URL must be set in production" in done.stderr


def test_without_background_jobs_it_starts_and_readyz_says_redis_is_not_used(
    production, database_url
):
    production.setenv("SLOTBOOK_NO_BACKGROUND_JOBS", "1")
    production.setenv("DATABASE_URL", database_url)
    app = create_app()
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 200, response.get_json()
        checks = response.get_json()["checks"]
        assert checks["redis"] == {"ok": True, "detail": "not used: SLOTBOOK_NO_BACKGROUND_JOBS=1"}
        assert checks["worker"] == checks["redis"]
    finally:
        with app.app_context():
            db.engine.dispose()


def test_the_worker_says_it_needs_redis(production, database_url):
    production.setenv("SLOTBOOK_NO_BACKGROUND_JOBS", "1")
    production.setenv("DATABASE_URL", database_url)
    done = _run_in_project("worker.py", "--burst")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "worker.py needs REDIS_URL" in done.stderr


def test_wsgi_freezes_what_start_up_made(production, database_url):
    """gunicorn's workers import ``wsgi``: afterwards the app's start-up objects are out of
    the collector's reach (a full collection walked ~157,000 of them, ~70 ms)."""
    production.setenv("SLOTBOOK_NO_BACKGROUND_JOBS", "1")
    production.setenv("DATABASE_URL", database_url)
    done = _run_in_project("-c", "import gc, wsgi; print(gc.get_freeze_count())")
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) > 50_000
