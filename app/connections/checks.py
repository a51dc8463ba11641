"""Link checks run in the background (K2): no web request waits for a calendar server.

Linking asks the calendar server whether the address, the login and the data are right. A
slow or hostile server can take a minute to answer that (or drip its answer a byte at a
time); inside a web request it would hold one of the few web workers all that while, and a
handful of such requests would stop every page of the site for everyone. So the request
only builds the draft (``service.caldav_draft`` / ``ics_draft``: every check that needs no
network), keeps it in Redis for an hour with its secret sealed, and queues ``run_check``; the
page polls a small status fragment until the job has linked the calendar or said why not.

The job takes the check's random id, never the secret (DESIGN: no secrets in job
arguments), and a check is shown only to the person who started it. Once the job is done
the sealed secret is dropped from Redis; only the outcome stays, until the hour is up.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from dataclasses import asdict, dataclass
from enum import StrEnum

from redis.exceptions import RedisError

from app.connections import service
from app.connections.models import Connection
from app.connections.service import LinkError, NotFound
from app.extensions import db
from app.jobs import in_app_context, queue, redis_connection

log = logging.getLogger(__name__)

QUEUE = "default"  # ahead of the sync queue: someone is watching this one
KEEP_SECONDS = 3600
JOB_TIMEOUT = 300  # discovery has one deadline (download_timeout); this is the backstop
SLOW_AFTER_SECONDS = 30  # then the page says the check is taking longer than usual
ID_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
UNAVAILABLE = (
    "Slotbook cannot check calendars at the moment (its background service is not "
    "answering). Please try again in a few minutes."
)
FAILED = "Something went wrong while checking the calendar. Please try again."


class State(StrEnum):
    CHECKING = "checking"
    LINKED = "linked"
    FAILED = "failed"


@dataclass
class LinkCheck:
    """One person's request to link a calendar, and what became of it."""

    id: str
    user_id: int
    kind: str
    label: str  # what is being checked, for the page ("127.0.0.1", "ada on dav.example")
    started_at: float  # time.time()
    state: str = State.CHECKING
    message: str | None = None  # the outcome, a sentence for the person
    connection_id: int | None = None
    # The draft, until the job has used it.
    url: str | None = None
    username: str | None = None
    secret_sealed: str | None = None

    @property
    def done(self) -> bool:
        return self.state != State.CHECKING

    @property
    def slow(self) -> bool:
        return not self.done and time.time() - self.started_at > SLOW_AFTER_SECONDS

    def draft(self) -> Connection:
        return Connection(
            kind=self.kind,
            user_id=self.user_id,
            url=self.url,
            username=self.username,
            label=self.label,
            secret_sealed=self.secret_sealed,
        )

    def finish(self, state: State, message: str, connection_id: int | None = None) -> None:
        """Record the outcome and forget the secret. After a failure the address and user
        name stay (neither is secret; a feed's address is kept redacted), so the form can
        be filled in again."""
        self.state, self.message, self.connection_id = state, message, connection_id
        self.secret_sealed = None
        if state == State.LINKED:
            self.url = self.username = None


def start(user, draft: Connection) -> LinkCheck:
    """Keep ``draft`` and queue its check; ``LinkError`` when background work is down."""
    check = LinkCheck(
        id=secrets.token_urlsafe(24),
        user_id=user.id,
        kind=draft.kind,
        label=draft.label or "",
        started_at=time.time(),
        url=draft.url,
        username=draft.username,
        secret_sealed=draft.secret_sealed,
    )
    try:
        _save(check)
        queue(QUEUE).enqueue(
            run_check,
            check.id,
            job_id=f"link-check-{check.id}",
            job_timeout=JOB_TIMEOUT,
            result_ttl=60,
            failure_ttl=KEEP_SECONDS,
        )
    except (RedisError, ConnectionError) as exc:
        log.warning("could not queue a link check: %s", type(exc).__name__)
        raise LinkError(UNAVAILABLE) from exc
    return check


def find(user, check_id: str | None) -> LinkCheck:
    """One of the person's own checks; ``NotFound`` for another person's, an expired or a
    malformed id (they look the same from outside)."""
    if not check_id or not ID_RE.match(check_id):
        raise NotFound("That calendar check is not known (it may be over an hour old).")
    try:
        check = _load(check_id)
    except (RedisError, ConnectionError) as exc:
        raise LinkError(UNAVAILABLE) from exc
    if check is None or check.user_id != user.id:
        raise NotFound("That calendar check is not known (it may be over an hour old).")
    return check


@in_app_context
def run_check(check_id: str) -> str:
    """The RQ job: link the draft (``service.link_draft`` talks to the server, then saves),
    commit, and record the outcome for the page. Runs once; a repeat finds it done."""
    from app.accounts.models import User

    check = _load(check_id)
    if check is None or check.done:
        return "gone"
    user = db.session.get(User, check.user_id)
    try:
        if user is None or not user.is_active:
            raise LinkError("Your account is no longer active, so nothing was linked.")
        connection = service.link_draft(user.id, check.draft())
        db.session.commit()
    except LinkError as exc:
        db.session.rollback()
        check.finish(State.FAILED, str(exc))
    except Exception:
        db.session.rollback()
        check.finish(State.FAILED, FAILED)
        _save(check)
        raise  # RQ keeps the traceback for the failed job
    else:
        check.finish(State.LINKED, linked_message(connection), connection.id)
    _save(check)
    return check.state


def linked_message(connection: Connection) -> str:
    count = len(connection.calendars)
    return (
        f"Linked “{connection.label}” with {count} calendar{'s' if count != 1 else ''}. "
        "Its busy time is read within a minute."
    )


def _key(check_id: str) -> str:
    return f"slotbook:link-check:{check_id}"


def _save(check: LinkCheck) -> None:
    redis_connection().set(_key(check.id), json.dumps(asdict(check)), ex=KEEP_SECONDS)


def _load(check_id: str) -> LinkCheck | None:
    raw = redis_connection().get(_key(check_id))
    if raw is None:
        return None
    try:
        return LinkCheck(**json.loads(raw))
    except (TypeError, ValueError):
        return None
