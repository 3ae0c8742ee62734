"""Decode a raw message into what a person reads: headers, text, HTML and attachments."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage


@dataclass(frozen=True)
class Attachment:
    """An attachment's file name, media type and decoded size in bytes."""

    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class DecodedMessage:
    """A message with decoded headers, text bodies and attachment metadata."""

    subject: str
    sender: str
    recipients: str
    headers: list[tuple[str, str]]
    text_bodies: list[str] = field(default_factory=list)
    html_bodies: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def text(self) -> str | None:
        """First text/plain body, or None."""
        return self.text_bodies[0] if self.text_bodies else None

    @property
    def html(self) -> str | None:
        """First text/html body, or None."""
        return self.html_bodies[0] if self.html_bodies else None


def parse_message(raw: bytes) -> EmailMessage:
    """Parse raw message bytes with the standard library's modern email policy."""
    return email.message_from_bytes(raw, policy=email.policy.default)


def decode_message(raw: bytes) -> DecodedMessage:
    """Decode the headers, text/plain and text/html bodies and attachments of a message.

    Text parts that are attachments are listed as attachments, not bodies.
    A part that cannot be decoded (an unknown charset, a broken encoding) is
    skipped rather than failing the whole message.
    """
    parsed = parse_message(raw)
    headers = [(name, decode_header(parsed, name, value)) for name, value in parsed.raw_items()]
    decoded = DecodedMessage(
        subject=_first_header(parsed, "Subject"),
        sender=_first_header(parsed, "From"),
        recipients=_first_header(parsed, "To"),
        headers=headers,
    )

    for part in parsed.walk():
        if part.is_multipart():
            continue
        if part.is_attachment() or (
            part.get_filename() is not None and part.get_content_maintype() != "text"
        ):
            decoded.attachments.append(_attachment(part))
            continue
        if part.get_content_maintype() != "text":
            continue
        body = _text_content(part)
        if body is None:
            continue
        if part.get_content_subtype() == "html":
            decoded.html_bodies.append(body)
        elif part.get_content_subtype() == "plain":
            decoded.text_bodies.append(body)
    return decoded


def decode_header(parsed: EmailMessage, name: str, value: str) -> str:
    """Decode MIME encoded-words in a header value, or return it unchanged if it is malformed."""
    value = restore_8bit(value)
    try:
        return str(parsed.policy.header_factory(name, value))  # type: ignore[attr-defined]
    except (ValueError, LookupError, IndexError, TypeError):
        return value


def restore_8bit(value: str) -> str:
    """Turn the surrogate escapes the bytes parser leaves for 8-bit header bytes back into UTF-8 text.

    A header sent raw under SMTPUTF8 reaches `message_from_bytes` as UTF-8
    bytes, which it decodes as ASCII with surrogateescape. Bytes that are not
    valid UTF-8 become U+FFFD.
    """
    return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def attachment_bytes(raw: bytes) -> dict[str, bytes]:
    """Return each attachment's decoded content by file name."""
    contents: dict[str, bytes] = {}
    for part in parse_message(raw).walk():
        filename = part.get_filename()
        if part.is_multipart() or filename is None:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            contents[filename] = payload
    return contents


def _first_header(parsed: EmailMessage, name: str) -> str:
    for key, value in parsed.raw_items():
        if key.lower() == name.lower():
            return decode_header(parsed, key, value)
    return ""


def _attachment(part: EmailMessage) -> Attachment:
    payload = part.get_payload(decode=True)
    size = len(payload) if isinstance(payload, bytes) else 0
    return Attachment(
        filename=part.get_filename() or "(no file name)",
        content_type=part.get_content_type(),
        size=size,
    )


def _text_content(part: EmailMessage) -> str | None:
    try:
        content = part.get_content()
    except (LookupError, ValueError, UnicodeError):
        return None
    if not isinstance(content, str):
        return None
    # Bodies arrive with the CRLF line endings of SMTP; readers expect "\n".
    return content.replace("\r\n", "\n")
