"""The booking state machine of SPEC B2, as one table.

    provisional --approve--> confirmed --complete--> completed
    provisional --reject---> rejected
    provisional|confirmed --cancel--> cancelled
    provisional|confirmed --reschedule--> (same status, new time)
    confirmed --no_show--> no_show   (only after the start + the maximum waiting time)
    confirmed|completed --rebook--> a new booking linked to this one (B4); this one unchanged

Rejected and cancelled are final. Withdrawing a provisional request is a cancel, because the
person who asked for it (a visitor's manage link, S5) must be able to take it back.
"""

from __future__ import annotations

from enum import StrEnum

from app.bookings.models import Status


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    COMPLETE = "complete"
    RESCHEDULE = "reschedule"
    REBOOK = "rebook"
    NO_SHOW = "no_show"


class TransitionError(Exception):
    """An action that the booking's current status does not allow; the message is for people."""

    def __init__(self, action: Action, status: str) -> None:
        self.action = action
        self.status = status
        super().__init__(f"A {status} booking cannot be {PAST_TENSE[action]}.")


PAST_TENSE = {
    Action.APPROVE: "approved",
    Action.REJECT: "rejected",
    Action.CANCEL: "cancelled",
    Action.COMPLETE: "marked as completed",
    Action.RESCHEDULE: "rescheduled",
    Action.REBOOK: "rebooked",
    Action.NO_SHOW: "marked as a no-show",
}

# action -> {from status: to status}; REBOOK leaves the original's status as it is.
TRANSITIONS: dict[Action, dict[Status, Status]] = {
    Action.APPROVE: {Status.PROVISIONAL: Status.CONFIRMED},
    Action.REJECT: {Status.PROVISIONAL: Status.REJECTED},
    Action.CANCEL: {Status.PROVISIONAL: Status.CANCELLED, Status.CONFIRMED: Status.CANCELLED},
    Action.COMPLETE: {Status.CONFIRMED: Status.COMPLETED},
    Action.RESCHEDULE: {Status.PROVISIONAL: Status.PROVISIONAL, Status.CONFIRMED: Status.CONFIRMED},
    Action.REBOOK: {Status.CONFIRMED: Status.CONFIRMED, Status.COMPLETED: Status.COMPLETED},
    Action.NO_SHOW: {Status.CONFIRMED: Status.NO_SHOW},
}


def next_status(status: str, action: Action) -> Status:
    """The status after ``action``, or ``TransitionError`` if the action is not allowed."""
    try:
        return TRANSITIONS[action][Status(status)]
    except KeyError:
        raise TransitionError(action, status) from None


def allowed_actions(status: str) -> list[Action]:
    """Actions the status allows, in table order (used to decide which buttons exist)."""
    return [action for action, table in TRANSITIONS.items() if Status(status) in table]
