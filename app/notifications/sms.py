"""The SMS channel (N1): one small interface, one real HTTP gateway, one log-only stand-in.

Gateways differ in everything but the essentials, so the HTTP adapter is configured rather
than subclassed: the URL, the header that carries the token and a JSON body template. It
raises on anything but a 2xx answer or on a network error, so the outbox keeps the
``notify.sms`` row and retries it (honouring ``Retry-After``) until it is marked failed,
where admins see it (N4). Without a configured gateway (development), messages go to the log
instead, and a text holding a private link is not written there: manage and confirm links
carry their token in the URL, and tokens never reach logs.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Protocol

import requests
from flask import current_app

from app.outbox import OutboxMessage, Send, handles

log = logging.getLogger(__name__)

DEFAULT_BODY = '{"to": "{to}", "text": "{text}"}'
TIMEOUT_SECONDS = 10

# A link with something token-like in it: a path segment or query value of 16 or more
# URL-safe characters (new_token gives 43), or a query parameter named like a credential.
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_TOKENISH = re.compile(r"[A-Za-z0-9_\-~.]{16,}")
_SECRET_PARAM = re.compile(r"[?&](token|key|secret|code|sig|signature)=", re.IGNORECASE)


class SmsGateway(Protocol):
    """Anything that can send one text message; raising means "try again later"."""

    def send(self, to: str, text: str) -> None: ...


class SmsError(RuntimeError):
    """The gateway refused or could not be reached; ``retry_after`` is seconds, if it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def render_body(template: str, to: str, text: str) -> object:
    """The JSON body: ``template`` parsed first, then "{to}" and "{text}" replaced inside its
    string values, so a quote or newline in a message can never break or extend the JSON."""
    try:
        parsed = json.loads(template)
    except ValueError as exc:
        raise SmsError(f"SMS_GATEWAY_BODY is not valid JSON: {exc}") from exc

    def fill(value: object) -> object:
        if isinstance(value, str):
            return value.replace("{to}", to).replace("{text}", text)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    return fill(parsed)


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After", "")
    return float(raw) if raw.strip().isdigit() else None


@dataclass
class HttpSmsGateway:
    """POST a JSON body to the provider's URL with the token in a header."""

    url: str
    token: str | None = None
    body_template: str | None = None
    auth_header: str = "Authorization"
    timeout: float = TIMEOUT_SECONDS

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            value = f"Bearer {self.token}" if self.auth_header == "Authorization" else self.token
            headers[self.auth_header] = value
        return headers

    def send(self, to: str, text: str) -> None:
        body = render_body(self.body_template or DEFAULT_BODY, to, text)
        try:
            response = requests.post(
                self.url, json=body, headers=self.headers(), timeout=self.timeout
            )
        except requests.RequestException as exc:
            # The exception's text can hold the URL; the gateway URL is configuration, not a
            # secret, but the token is in a header and never appears here.
            raise SmsError(f"SMS gateway unreachable: {type(exc).__name__}") from exc
        if not 200 <= response.status_code < 300:
            raise SmsError(
                f"SMS gateway answered HTTP {response.status_code}",
                retry_after=_retry_after(response),
            )


def has_private_link(text: str) -> bool:
    """Whether ``text`` holds a link that looks like it carries a token."""
    for url in _URL.findall(text):
        if _SECRET_PARAM.search(url):
            return True
        rest = url.split("://", 1)[1]
        path = rest.split("/", 1)[1] if "/" in rest else ""
        if any(_TOKENISH.fullmatch(part) for part in re.split(r"[/?&=#]", path) if part):
            return True
    return False


class LogSmsGateway:
    """Development: write the message to the log instead of sending it."""

    def send(self, to: str, text: str) -> None:
        if has_private_link(text):
            log.info("SMS to %s (text not logged: it holds a private link)", to)
        else:
            log.info("SMS to %s: %s", to, text)


def configured_gateway() -> SmsGateway:
    """The HTTP gateway when ``SMS_GATEWAY_URL`` is set, otherwise the log."""
    config = current_app.config
    url = config.get("SMS_GATEWAY_URL")
    if not url:
        return LogSmsGateway()
    return HttpSmsGateway(
        url=url,
        token=config.get("SMS_GATEWAY_TOKEN"),
        body_template=config.get("SMS_GATEWAY_BODY"),
        auth_header=config.get("SMS_GATEWAY_AUTH_HEADER") or "Authorization",
    )


def gateway_configured() -> bool:
    """Whether SMS really leaves the building (the admin screen says so when it does not)."""
    return bool(current_app.config.get("SMS_GATEWAY_URL"))


@handles("notify.sms")
def send_sms(message: OutboxMessage) -> Send:
    """Outbox handler for ``notify.sms`` rows ({to, text, rule, source}) from the planner:
    the gateway is called by the outbox after its transaction is closed."""
    payload = message.data
    to, text = payload.get("to"), payload.get("text")
    if not isinstance(to, str) or not to.strip() or not isinstance(text, str):
        raise ValueError("notify.sms needs a recipient number and a text")
    gateway = configured_gateway()
    return Send(lambda: gateway.send(to.strip(), text))
