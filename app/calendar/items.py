"""One calendar item as HTML, written in Python (issue [14]).

A Team week of 100 people draws ~6,000 items; as a Jinja macro each cost a macro call, a
dozen attribute lookups and escapes, and the same booking drawn in several lanes or days was
written again each time. ``cal_item`` writes exactly what the macro in
``templates/calendar/_item.html`` wrote (``tests/calendar/test_items.py`` compares the two),
with the part that is the same for every segment of an item written once per item.

Only the text fields (titles, names, labels) are escaped: ids are integers, the class list
and the style come from ``app/calendar/queries.py`` (fixed words, numbers, a checked
``#rrggbb`` colour), as in the macro.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from markupsafe import Markup, escape

from app.calendar.queries import Item, Lane, Segment

CELL_BREAK = "\n          "  # what the template wrote after each day cell of a row


@lru_cache(maxsize=8192)
def _e(text: str) -> str:
    """``markupsafe.escape`` as plain text, memoised: a week repeats a few hundred titles,
    names and labels thousands of times."""
    return str(escape(text))


def lane_cells(
    lane: Lane, days: Sequence, booking_base: str, pick_url: Callable[[Lane, object], str | None]
) -> Markup:
    """The ``<td>`` of each day of a person's row in the Team week, as the template wrote
    them: the day's pick-a-slot address (escaped, as an attribute) and its items."""
    out = []
    for day, cell in zip(days, lane.cells, strict=True):
        url = pick_url(lane, day.date)
        out.append(f'<td data-pick-url="{_e(url)}">' if url else "<td>")
        if cell:
            out.append('<ul class="pw-cell">')
            out.extend(_item_html(seg, booking_base) for seg in cell)
            out.append("</ul>")
        out.append("</td>" + CELL_BREAK)
    return Markup("".join(out))  # noqa: S704 - items and the address are escaped above


def cal_item(seg: Segment, booking_base: str, style: str = "") -> Markup:
    """The ``<li>`` of one segment (``style``: its grid placement in a time grid)."""
    return Markup(_item_html(seg, booking_base, style))  # noqa: S704 - escaped in _parts


def _item_html(seg: Segment, booking_base: str, style: str = "") -> str:
    """:func:`cal_item` as plain text, for callers that join many items into one Markup."""
    it = seg.item
    parts = it.html
    if parts is None or parts[0] != booking_base:
        parts = it.html = (booking_base, *_parts(it, booking_base))
    _, head, colour, middle, tail = parts
    if style or colour:
        head = f'{head} style="{style}{colour}"'
    return f'{head}>{middle}{seg.time_label}</span> <span class="cal-title">{tail}'


def _parts(it: Item, booking_base: str) -> tuple[str, str, str, str]:
    """The item's fixed pieces: the opening of the ``<li>``, its colour for the style, the
    opening of its link or box, and everything after the time label."""
    head = f'<li class="cal-item {it.css}"'
    if it.booking_id:
        url = f"{booking_base}{it.booking_id}"
        colour = f"--type: {it.colour}"
        opening = (
            f'<a class="cal-link" href="{url}" hx-get="{url}" hx-target="#drawer" '
            'hx-swap="innerHTML" hx-push-url="false">'
        )
        closing = "</a>"
    else:
        colour = ""
        opening = '<div class="cal-box">'
        closing = "</div>"
    tail = [_e(it.title), "</span>"]
    if it.kind == "busy":
        tail.append('<span class="visually-hidden"> (from a linked calendar)</span>')
    if it.conflicts:
        tail.append(f' <span class="cal-conflict">{_e(it.conflict_label)}</span>')
    if it.detail:
        tail.append(f' <span class="cal-detail">{_e(it.detail)}</span>')
    if it.ended:
        tail.append(f' <span class="cal-status">{str(it.status).capitalize()}</span>')
    tail += [closing, "</li>"]
    return head, colour, opening + '<span class="cal-time">', "".join(tail)
