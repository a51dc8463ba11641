"""``make run``'s launcher, run for real: embedded Redis, migrations, demo data, web, worker.

Slow by nature (two full starts, one with the demo seed), so every wait polls with a bound.
"""

from __future__ import annotations

import http.cookiejar
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.demo import DEMO_LOGINS, DEMO_PASSWORD
from tests.conftest import CSRF_RE, free_port

START_TIMEOUT = 180  # a bound, not a timing: a loaded CI box seeds the demo slowly
STOP_TIMEOUT = 30
URL_RE = re.compile(r"Slotbook is running at (http://\S+)")
REDIS_RE = re.compile(r"Redis: redis://127\.0\.0\.1:(\d+)/")


class Launcher:
    """``python -m app.devserver`` with its output collected line by line."""

    def __init__(self, instance: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLOTBOOK_", "FLASK_"))}
        for name in ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "SECRET_KEY"):
            env.pop(name, None)
        env.update(SLOTBOOK_INSTANCE_DIR=str(instance), PORT=str(port))
        self.port = port
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.devserver"],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            self._new.put(line)
        self._new.put(None)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: re.Pattern, timeout: float = START_TIMEOUT) -> re.Match:
        """The first output line matching ``pattern``, however long the start takes (bounded)."""
        for line in list(self.lines):
            if match := pattern.search(line):
                return match
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"launcher exited ({self.process.wait()}):\n{self.output[-4000:]}")
            if match := pattern.search(line):
                return match
        pytest.fail(f"no {pattern.pattern!r} within {timeout}s:\n{self.output[-4000:]}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(STOP_TIMEOUT)

    def cleanup(self) -> None:
        """After a failed test: stop it properly if it still runs, kill it if that hangs."""
        if self.process.poll() is None:
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for a reaper (it runs nothing any more)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in {"Z", "X"}


def all_gone(pids: set[int], timeout: float = 10) -> list[int]:
    """The pids still running after ``timeout`` (grandchildren may take a moment)."""
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if not gone(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def child_pids(pid: int) -> set[int]:
    """Every descendant of ``pid`` (Linux /proc), read while the launcher is running."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def sign_in(base: str, email: str, password: str) -> int:
    """Post the login form like a browser; return the status (302 = signed in)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    page = opener.open(f"{base}login", timeout=10).read().decode()
    token = CSRF_RE.search(page).group(1)
    form = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token})
    try:
        return opener.open(f"{base}login", data=form.encode(), timeout=10).status
    except urllib.error.HTTPError as exc:  # 302 (no redirect followed) and 401 land here
        return exc.code


def _wait_for_text(path: Path, text: str, timeout: float = START_TIMEOUT) -> None:
    """Poll (bounded) until the file at ``path`` holds ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    found = path.read_text(errors="replace")[-3000:] if path.exists() else "(no file)"
    pytest.fail(f"{text!r} never appeared in {path}:\n{found}")


@pytest.fixture
def launch(tmp_path):
    started: list[Launcher] = []

    def start() -> Launcher:
        launcher = Launcher(tmp_path / "instance", free_port())
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.cleanup()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_make_run_launcher_starts_everything_and_stops_cleanly(launch, tmp_path):
    first = launch()
    base = first.wait_for(URL_RE).group(1)
    redis_port = int(first.wait_for(REDIS_RE, timeout=1).group(1))
    assert "loading demo data" in first.output
    assert DEMO_LOGINS[0][0] in first.output and DEMO_PASSWORD in first.output
    assert base == f"http://127.0.0.1:{first.port}/"
    # The worker drains the demo's jobs into its log file, not over the banner ([13]).
    worker_log = tmp_path / "instance" / "worker.log"
    assert f"Background worker's log: {worker_log}" in first.output
    _wait_for_text(worker_log, "Listening on")
    assert "Listening on" not in first.output

    with urllib.request.urlopen(f"{base}login", timeout=10) as response:
        assert response.status == 200
        assert "Sign in" in response.read().decode()
    assert sign_in(base, DEMO_LOGINS[0][0], DEMO_PASSWORD) == 302
    assert sign_in(base, DEMO_LOGINS[0][0], "wrong password") == 401

    children = child_pids(first.process.pid)
    assert len(children) >= 3, first.output[-3000:]  # web, worker, redis (and their helpers)
    assert answers(redis_port)
    assert (tmp_path / "instance" / "slotbook.db").exists()
    assert (tmp_path / "instance" / "redis").is_dir()

    assert first.stop() == 0, first.output[-3000:]
    assert not answers(first.port) and not answers(redis_port)
    assert all_gone(children) == [], first.output[-3000:]

    # Same instance folder again: the data is there, so no second seed.
    second = launch()
    base = second.wait_for(URL_RE).group(1)
    assert "not loading demo data" in second.output
    assert "Demo data loaded" not in second.output
    assert sign_in(base, DEMO_LOGINS[0][0], DEMO_PASSWORD) == 302
    assert second.stop() == 0, second.output[-3000:]
    assert not answers(second.port)
