"""``/healthz`` and ``/readyz`` (SPEC I7): per-check JSON, 200/503, no sign-in, nothing secret.

Each check is made to fail for real: a Redis address where nothing listens, a schema whose
recorded revision is not the head, no worker heartbeat; and ``worker.py --burst`` is run to
show a cron-style worker counts as alive.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from app import config as app_config
from app import create_app
from app.extensions import db
from app.health import HEARTBEAT_KEY, beat
from tests.conftest import free_port, run_burst_worker

CHECKS = ["database", "redis", "migrations", "worker"]


def _failed(body: dict) -> set[str]:
    return {name for name, result in body["checks"].items() if not result["ok"]}


def test_healthz_answers_without_sign_in_or_cookie(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_readyz_is_ready_only_with_a_fresh_worker_heartbeat(client, redis):
    unready = client.get("/readyz")
    assert unready.status_code == 503
    body = unready.get_json()
    assert body["status"] == "unready"
    assert list(body["checks"]) == CHECKS
    assert _failed(body) == {"worker"}
    assert "no worker" in body["checks"]["worker"]["detail"]

    beat(redis)
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["status"] == "ready"
    assert ready.get_json()["checks"]["worker"]["last_seen_seconds_ago"] <= 1
    assert "Set-Cookie" not in ready.headers

    # The beat lapses on Redis's clock: past a minute of silence the worker counts as gone.
    redis.pexpire(HEARTBEAT_KEY, 1)
    deadline = time.monotonic() + 5
    while redis.exists(HEARTBEAT_KEY):
        assert time.monotonic() < deadline, "the heartbeat never lapsed"
        time.sleep(0.01)
    assert client.get("/readyz").status_code == 503


def test_readyz_reports_redis_down_without_saying_where_it_is(database_url, redis):
    port = free_port()  # nothing listens there
    app = create_app(app_config.TestConfig(database_url, f"redis://:s3cr3tpass@127.0.0.1:{port}/0"))
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        body = response.get_json()
        assert _failed(body) == {"redis", "worker"}
        assert body["checks"]["database"]["ok"] and body["checks"]["migrations"]["ok"]
        raw = response.get_data(as_text=True)
        for secret in (str(port), "127.0.0.1", "s3cr3tpass", "redis://", "Error"):
            assert secret not in raw
    finally:
        with app.app_context():
            db.engine.dispose()


def test_readyz_reports_a_schema_behind_the_migrations(app, client, redis):
    beat(redis)
    with app.app_context():
        head = db.session.scalar(text("SELECT version_num FROM alembic_version"))
        db.session.execute(text("UPDATE alembic_version SET version_num = 'older'"))
        db.session.commit()
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.get_json()
        assert _failed(body) == {"migrations"}
        assert "flask db upgrade" in body["checks"]["migrations"]["detail"]
    finally:
        with app.app_context():
            db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
            db.session.commit()
    assert client.get("/readyz").status_code == 200


def test_a_burst_worker_beats_the_heartbeat(app, client, database_url, redis, redis_url, tmp_path):
    assert client.get("/readyz").status_code == 503
    run_burst_worker(app, database_url, redis_url, tmp_path)
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
