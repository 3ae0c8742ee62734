"""Serialise stored messages as MailHog's JSON message objects.

Field names, nesting and the header and MIME splitting follow the `Message`,
`Content` and `MIMEBody` types of MailHog's data package
(github.com/mailhog/data, message.go), so tests written against MailHog's
API read the same fields here. Differences from MailHog:

- A header that occurs several times keeps every value, in order; MailHog
  keeps only the last one.
- A header line may use `:` without a following space.
- A message with bare LF line endings is split at its first empty line too.
"""

from __future__ import annotations

import re
from email.utils import format_datetime
from typing import Any

from localaws.mail.store import ID_DOMAIN, StoredMessage

JSONObject = dict[str, Any]

_HEADER_BODY_SEPARATOR = re.compile(r"\r\n\r\n|\n\n")
_LINE_BREAK = re.compile(r"\r?\n")
_HEADER_FIELD = re.compile(r"^([!-9;-~]+):[ \t]?(.*)$", re.DOTALL)
_BOUNDARY_PARAMETER = re.compile(r';\s*boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))', re.IGNORECASE)


def message_to_json(message: StoredMessage) -> JSONObject:
    """Build MailHog's JSON object for a stored message."""
    data = message.raw.decode("utf-8", errors="replace")
    content = parse_content(data)
    content["Size"] = len(message.raw)
    _add_trace_headers(content["Headers"], message)
    return {
        "ID": message.id,
        "From": parse_path(message.mail_from),
        "To": [parse_path(recipient) for recipient in message.rcpt_tos],
        "Content": content,
        "Created": format_created(message),
        # MailHog parses the MIME tree of the top level into Message.MIME and
        # leaves Content.MIME null, but fills Content.MIME of nested parts.
        "MIME": parse_mime_body(content) if is_multipart(content) else None,
        "Raw": {
            "From": message.mail_from,
            "To": list(message.rcpt_tos),
            "Data": data,
            "Helo": message.helo,
        },
    }


def format_created(message: StoredMessage) -> str:
    """Format the receipt time as RFC 3339 in UTC, with a `Z` suffix as Go writes it."""
    return message.created.isoformat().replace("+00:00", "Z")


def parse_path(address: str) -> JSONObject:
    """Split an SMTP forward-path or reverse-path into MailHog's `Path` object."""
    relays: list[str] | None = None
    mailbox_and_domain = address
    # A source route such as "@relay1,@relay2:user@example.com" lists relays.
    if ":" in address:
        route, mailbox_and_domain = address.split(":", 1)
        relays = route.split(",")
    mailbox, _, domain = mailbox_and_domain.partition("@")
    return {"Relays": relays, "Mailbox": mailbox, "Domain": domain, "Params": ""}


def parse_content(data: str) -> JSONObject:
    """Split message text into MailHog's `Content`: headers, body and size in bytes."""
    headers: dict[str, list[str]] = {}
    separator = _HEADER_BODY_SEPARATOR.search(data)
    if separator is None:
        body = data
    else:
        body = data[separator.end() :]
        _parse_header_block(data[: separator.start()], headers)
    return {"Headers": headers, "Body": body, "Size": len(data.encode("utf-8")), "MIME": None}


def is_multipart(content: JSONObject) -> bool:
    """Return whether the content's Content-Type is `multipart/*`."""
    content_type = header_value(content["Headers"], "Content-Type")
    return content_type is not None and content_type.strip().lower().startswith("multipart/")


def header_value(headers: dict[str, list[str]], name: str) -> str | None:
    """Return the first value of header `name`, matched case-insensitively."""
    for key, values in headers.items():
        if key.lower() == name.lower() and values:
            return values[0]
    return None


def parse_mime_body(content: JSONObject) -> JSONObject:
    """Split a multipart body at its boundary into MailHog's `MIMEBody`.

    As in MailHog, every non-empty piece between boundary lines becomes a part,
    so a preamble and the `--` that ends the closing delimiter appear as parts.
    """
    content_type = header_value(content["Headers"], "Content-Type") or ""
    boundary = _boundary(content_type)
    parts: list[JSONObject] = []
    if boundary:
        for piece in content["Body"].split("--" + boundary):
            if not piece:
                continue
            part = parse_content(piece.strip("\r\n"))
            if is_multipart(part):
                part["MIME"] = parse_mime_body(part)
            parts.append(part)
    return {"Parts": parts}


def _boundary(content_type: str) -> str | None:
    match = _BOUNDARY_PARAMETER.search(content_type)
    if match is None:
        return None
    return match.group(1) or match.group(2)


def _parse_header_block(block: str, headers: dict[str, list[str]]) -> None:
    last_name: str | None = None
    for line in _LINE_BREAK.split(block):
        if last_name is not None and line.startswith((" ", "\t")):
            # MailHog joins a folded line to the value without the line break.
            headers[last_name][-1] += line
            continue
        match = _HEADER_FIELD.match(line)
        if match is None:
            continue
        name, value = match.groups()
        headers.setdefault(name, []).append(value)
        last_name = name


def _add_trace_headers(headers: dict[str, list[str]], message: StoredMessage) -> None:
    """Add the Message-ID, Received and Return-Path headers MailHog adds on receipt."""
    names = {name.lower(): name for name in headers}
    if "message-id" not in names:
        headers["Message-ID"] = [message.id]
    received = (
        f"from {message.helo} by {ID_DOMAIN} (localaws mail catcher) id {message.id};"
        f" {format_datetime(message.created)}"
    )
    headers.setdefault(names.get("received", "Received"), []).append(received)
    headers.setdefault(names.get("return-path", "Return-Path"), []).append(f"<{message.mail_from}>")
