"""Synchronous client of the mail catcher's MailHog-compatible HTTP API, for the Invoke tasks."""

from __future__ import annotations

import html
import json
import re
import urllib.error
import urllib.request
from email.utils import getaddresses
from typing import Any
from urllib.parse import quote, urlencode

from localaws.errors import ConfigError, ServiceError
from localaws.mail.mime import decode_message
from localaws.mail.store import SEARCH_KINDS

DEFAULT_BASE_URL = "http://127.0.0.1:8025"
DEFAULT_TIMEOUT_SECONDS = 5.0
# Messages `latest_code` reads. A "to" search matches substrings, so its
# results can include messages to other addresses that contain the requested one.
CODE_SEARCH_LIMIT = 50

_CODE = re.compile(r"\b[0-9]{6}\b")
_STRONG = re.compile(r"<strong\b[^>]*>(.*?)</strong\s*>", re.IGNORECASE | re.DOTALL)
_INVISIBLE_ELEMENT = re.compile(r"<(script|style|head|title)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


class MailCatcherError(ServiceError):
    """The mail catcher returned an error response."""


class MailCatcherUnavailableError(MailCatcherError):
    """The mail catcher could not be reached or timed out."""


class MailCatcherClient:
    """Client of the catcher's HTTP API at `base_url`."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"Invalid mail catcher URL {base_url!r}: use an http:// or https:// URL"
                f" such as {DEFAULT_BASE_URL}."
            )
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def list_messages(self, limit: int = 50) -> list[dict[str, Any]]:
        """Return up to `limit` messages, newest first, as MailHog JSON objects."""
        page = self._request("GET", "/api/v2/messages", {"start": 0, "limit": limit})
        return list(page["items"])

    def search(self, kind: str, query: str, limit: int = 50) -> list[dict[str, Any]]:
        """Return up to `limit` messages, newest first, that match `query`.

        `kind` is `to`, `from` or `containing`, as in MailHog's search API.
        """
        if kind not in SEARCH_KINDS:
            raise ConfigError(f"Invalid search kind {kind!r}: use one of {', '.join(SEARCH_KINDS)}.")
        if not query:
            raise ConfigError("Missing search query: pass the text to search for.")
        page = self._request(
            "GET", "/api/v2/search", {"kind": kind, "query": query, "start": 0, "limit": limit}
        )
        return list(page["items"])

    def delete_all(self) -> None:
        """Delete every stored message."""
        self._request("DELETE", "/api/v1/messages")

    def delete(self, message_id: str) -> None:
        """Delete one message by its ID."""
        self._request("DELETE", f"/api/v1/messages/{quote(message_id, safe='@')}")

    def latest_code(self, to_address: str) -> str | None:
        """Return the 6-digit code in the newest message sent to `to_address`.

        Returns None when no message was sent to that address or the newest one
        contains no code. Only the newest message is read, so an older code is
        never returned by mistake.
        """
        address = to_address.strip().lower()
        for message in self.search("to", address, limit=CODE_SEARCH_LIMIT):
            if address in _recipients(message):
                return find_code(message["Raw"]["Data"].encode("utf-8"))
        return None

    def _request(self, method: str, path: str, parameters: dict[str, Any] | None = None) -> Any:
        url = self.base_url + path
        if parameters:
            url += "?" + urlencode(parameters)
        request = urllib.request.Request(url, method=method)  # noqa: S310 - scheme checked in __init__
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = response.read()
        except urllib.error.HTTPError as error:
            detail = _error_detail(error)
            raise MailCatcherError(
                f"Mail catcher request {method} {url} failed with HTTP {error.code}: {detail}"
            ) from error
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise MailCatcherUnavailableError(
                f"Mail catcher at {url} is not reachable: {reason}. Start the stack with"
                " `invoke stack.up`, or check that MAIL_HTTP_PORT matches the catcher's port"
                f" ({self.base_url})."
            ) from error
        if not body:
            return None
        try:
            return json.loads(body)
        except ValueError as error:
            raise MailCatcherError(
                f"Mail catcher request {method} {url} returned a body that is not JSON."
                f" Check that {self.base_url} is the mail catcher's HTTP port."
            ) from error


def find_code(raw: bytes) -> str | None:
    """Find the first 6-digit code in a message's decoded bodies.

    A code inside `<strong>` in an HTML body wins over any other. Then the
    text/plain bodies are searched, then the visible text of the HTML bodies.
    """
    decoded = decode_message(raw)
    for body in decoded.html_bodies:
        for fragment in _STRONG.findall(body):
            match = _CODE.search(_visible_text(fragment))
            if match:
                return match.group()
    for text in [*decoded.text_bodies, *map(_visible_text, decoded.html_bodies)]:
        match = _CODE.search(text)
        if match:
            return match.group()
    return None


def _visible_text(markup: str) -> str:
    """Reduce HTML to its visible text, so attribute values such as `#123456` never match."""
    text = _INVISIBLE_ELEMENT.sub(" ", markup)
    text = _COMMENT.sub(" ", text)
    text = _TAG.sub(" ", text)
    return html.unescape(text)


def _recipients(message: dict[str, Any]) -> set[str]:
    addresses = {address.lower() for address in message["Raw"]["To"]}
    headers: dict[str, list[str]] = message["Content"]["Headers"]
    header_values = [
        value for name, values in headers.items() if name.lower() in ("to", "cc") for value in values
    ]
    addresses.update(address.lower() for _, address in getaddresses(header_values))
    return addresses


def _error_detail(error: urllib.error.HTTPError) -> str:
    try:
        body = error.read()
        message = json.loads(body).get("error")
    except (OSError, ValueError, AttributeError):
        message = None
    return str(message) if message else str(error.reason)
