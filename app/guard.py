"""One guard for untrusted input at the HTTP edge, for every route (DESIGN: every external
input is untrusted; bad input gets a clear 4xx and changes nothing).

Some values pass every form's own checks yet cannot be stored or computed with, and used to
surface as 500s deep inside a view:

- a NUL character: PostgreSQL refuses it in any text value ("cannot contain NUL");
- an unpaired UTF-16 surrogate (only JSON can carry one, as ``"\\ud800"``): it cannot be
  encoded as UTF-8, so neither the database driver nor the response can take it;
- an id beyond PostgreSQL's ``integer`` (int4) in a URL path: the query overflows (SQLite's
  own limit is 2**63). Ids in form and query fields are each view's to check, since their
  forms have better messages ("Choose a person"); ``parse_id`` is the helper for that;
- digits other than 0-9 ("²", "٣"): ``str.isdigit`` accepts them, ``int`` does not always;
- a date in year 1 or 9999: date maths (week starts, month ends, zone conversion) overflows,
  and the notifier cannot render it.

``refuse_hostile_input`` runs before every view. It refuses NUL and surrogates anywhere (path,
query string, form, field names, JSON body) and, outside the API (whose parameters
``app/api/params.py`` parses with codes of its own), non-ASCII digits and out-of-range
dates. Each is an ``InputRefused`` (400) with a
clear message, which the app's error handlers render as the product's error page, or as the
API's JSON error under /api/. ``IdConverter`` replaces
``<int:...>`` app-wide, and a path id beyond the column type is answered 404.
``parse_id``, ``parse_day`` and ``parse_instant`` are the bounded parsers for the ids and
dates that views read themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime

from flask import Flask, request
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.routing import IntegerConverter

from app.database import MAX_ID

MIN_YEAR, MAX_YEAR = 1900, 2999  # the API (app/api/params.py) too: anything else is a typo
API_PREFIX = "/api/"

FORBIDDEN_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
# The shapes ``date.fromisoformat`` / ``datetime.fromisoformat`` accept: 2025-03-03, 20250303,
# 2025-W10-1, each optionally followed by a time.
DATE_LIKE = re.compile(r"\d{4}(?:-?\d{2}-?\d{2}|-?W\d{2}(?:-?\d)?)(?:[T ].*)?", re.DOTALL)
# Bare digits (20250303) are read as a date only in fields that hold one: elsewhere they are
# ids or phone numbers.
DATE_FIELDS = frozenset({"day", "date", "from", "to", "until", "start", "end", "week", "starts"})
CHARACTER_MESSAGE = (
    "The request contains a character that cannot be accepted (a NUL byte or a broken "
    "Unicode character). Remove it and try again."
)
DATE_MESSAGE = f"Dates must fall between the years {MIN_YEAR} and {MAX_YEAR}. Check the date."
DIGITS_MESSAGE = "Numbers must be written with the digits 0 to 9."


class InputRefused(BadRequest):
    """A request refused at the edge; ``description`` is shown to the person as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(description=message)


class IdConverter(IntegerConverter):
    """``<int:...>`` for ids: ASCII digits only (``\\d`` would take "٣" too). An id beyond
    ``MAX_ID`` still matches, so the route and method are the right ones, and the guard then
    answers 404, the same as an id that does not exist. Failing the match instead would make
    Werkzeug answer 405 when another method of the same path exists."""

    regex = r"[0-9]{1,100}"


# --- bounded parsers for views -----------------------------------------------------------


def parse_id(value: object) -> int | None:
    """A positive id from a form or query value (ASCII digits, at most ``MAX_ID``), else None."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        number = int(value)
        return number if 0 < number <= MAX_ID else None
    return None


def year_in_range(year: int) -> bool:
    return MIN_YEAR <= year <= MAX_YEAR


def parse_day(value: str | None) -> date | None:
    """An ISO date within the sane years, else None (absent, malformed or out of range)."""
    try:
        day = date.fromisoformat(value.strip()) if value else None
    except ValueError:
        return None
    return day if day is not None and year_in_range(day.year) else None


def parse_instant(value: str | None) -> datetime | None:
    """An ISO date-time with an offset, within the sane years, else None."""
    try:
        parsed = datetime.fromisoformat(value.strip()) if value else None
    except ValueError:
        return None
    if parsed is None or parsed.utcoffset() is None or not year_in_range(parsed.year):
        return None
    return parsed


# --- the guard ---------------------------------------------------------------------------


def _out_of_range_date(name: str, value: str) -> bool:
    """``value`` is written as an ISO date (or date-time) whose year is out of range. The
    year is read from its first four digits, so a date that is also invalid otherwise
    ("9999-W52-7" is in year 10000) is refused with the same clear message."""
    text = value.strip()
    if len(text) > 40 or not DATE_LIKE.fullmatch(text):
        return False
    if text.isdigit() and name not in DATE_FIELDS:
        return False
    return not year_in_range(int(text[:4]))


def _json_strings(data: object) -> Iterator[str]:
    """Every key and string value in a parsed JSON document (iteratively: no recursion)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from (k for k in item if isinstance(k, str))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _json_body() -> object:
    """The body parsed as JSON when it is meant as JSON (the API reads any body as JSON);
    None when it is not JSON at all (the view then says so itself)."""
    if request.mimetype in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        return None
    if not (request.is_json or request.path.startswith(API_PREFIX)):
        return None
    raw = request.get_data(cache=True)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _fields() -> Iterator[tuple[str, str]]:
    """(name, value) of every value the request carries to a view: path, query and form."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str):
            yield name, value
    for source in (request.args, request.form):
        for name, values in source.lists():
            for value in values:
                yield name, value
    for name, upload in request.files.items(multi=True):
        yield name, upload.filename or ""


def _names() -> Iterator[str]:
    """The field names themselves: they reach views (and logs) too."""
    yield from request.args.keys()
    yield from request.form.keys()
    yield from request.files.keys()


def _refusal(name: str, value: str, strict: bool) -> str | None:
    """Why ``value`` (of the field ``name``) is refused, or None. Beyond the characters, the
    checks are ``strict`` outside the API, whose parameters are parsed by ``app/api/params.py``
    with codes of their own."""
    if FORBIDDEN_CHARACTERS.search(value):
        return CHARACTER_MESSAGE
    if not strict:
        return None
    text = value.strip()
    if text.isdigit() and not text.isascii():
        return DIGITS_MESSAGE
    if _out_of_range_date(name, value):
        return DATE_MESSAGE
    return None


def refuse_hostile_input() -> None:
    """``before_request``: raise ``InputRefused`` for what no view can store or compute with,
    and ``NotFound`` for a path id no row can have."""
    for value in (request.view_args or {}).values():
        if isinstance(value, int) and value > MAX_ID:
            raise NotFound()
    strict = not request.path.startswith(API_PREFIX)
    for name, value in _fields():
        if message := _refusal(name, value, strict):
            raise InputRefused(message)
    texts = (*_names(), *_json_strings(_json_body()))
    if any(FORBIDDEN_CHARACTERS.search(text) for text in texts):
        raise InputRefused(CHARACTER_MESSAGE)


def init_guard(app: Flask) -> None:
    """Install the id converter (before any blueprint adds its rules) and the guard."""
    app.url_map.converters["int"] = IdConverter
    app.before_request(refuse_hostile_input)
