"""Tests of the mail catcher's MailHog-compatible HTTP API and HTML pages."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDictProxy

from localaws.mail.api import create_app
from localaws.mail.store import MessageStore, StoredMessage

PATH_FIELDS = {"Relays", "Mailbox", "Domain", "Params"}
CONTENT_FIELDS = {"Headers", "Body", "Size", "MIME"}
MESSAGE_FIELDS = {"ID", "From", "To", "Content", "Created", "MIME", "Raw"}


@dataclass
class Reply:
    status: int
    body: bytes
    headers: CIMultiDictProxy[str]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def request(store: MessageStore, method: str, path: str) -> Reply:
    """Send one request to the app through aiohttp's test server on loopback."""

    async def send() -> Reply:
        async with TestClient(TestServer(create_app(store), host="127.0.0.1")) as client:
            response = await client.request(method, path)
            return Reply(response.status, await response.read(), response.headers)

    return asyncio.run(send())


def plain_raw(subject: str = "Plain", to: str = "bob@example.com", body: str = "Hi") -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@example.com>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message.as_bytes(policy=SMTP)


def multipart_raw() -> bytes:
    message = EmailMessage()
    message["From"] = "ann@example.com"
    message["To"] = "bob@example.com"
    message["Subject"] = "Bienvenue à l\u2019école — ✓"
    message.set_content("Text part")
    message.add_alternative("<p>HTML <strong>part</strong><script>alert(1)</script></p>", subtype="html")
    message.add_attachment(
        b"\x00\x01binary", maintype="application", subtype="octet-stream", filename="report.bin"
    )
    return message.as_bytes(policy=SMTP)


@pytest.fixture
def store(tmp_path: Path) -> MessageStore:
    return MessageStore(tmp_path / "mail")


def add(store: MessageStore, raw: bytes, to: str = "bob@example.com") -> StoredMessage:
    return store.add("ann@example.com", [to], "client.example", raw)


def test_v2_messages_shape_and_order(store: MessageStore) -> None:
    older = add(store, plain_raw("first"))
    newer = add(store, plain_raw("second"))

    reply = request(store, "GET", "/api/v2/messages?start=0&limit=50")
    page = reply.json()

    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert set(page) == {"total", "count", "start", "items"}
    assert page["total"] == 2
    assert page["count"] == 2
    assert page["start"] == 0
    assert [item["ID"] for item in page["items"]] == [newer.id, older.id]


def test_v2_messages_start_and_limit(store: MessageStore) -> None:
    ids = [add(store, plain_raw(f"n{i}")).id for i in range(4)]

    page = request(store, "GET", "/api/v2/messages?start=1&limit=2").json()

    assert page["total"] == 4
    assert page["count"] == 2
    assert page["start"] == 1
    assert [item["ID"] for item in page["items"]] == [ids[2], ids[1]]


def test_v2_messages_rejects_non_integer_limit(store: MessageStore) -> None:
    reply = request(store, "GET", "/api/v2/messages?limit=ten")

    assert reply.status == 400
    assert "Invalid limit 'ten'" in reply.json()["error"]


def test_message_item_has_mailhog_fields(store: MessageStore) -> None:
    raw = plain_raw("Hello", body="Body line")
    stored = add(store, raw)

    item = request(store, "GET", "/api/v2/messages").json()["items"][0]

    assert set(item) == MESSAGE_FIELDS
    assert item["ID"] == stored.id
    assert item["From"] == {"Relays": None, "Mailbox": "ann", "Domain": "example.com", "Params": ""}
    assert item["To"] == [{"Relays": None, "Mailbox": "bob", "Domain": "example.com", "Params": ""}]
    assert set(item["Content"]) == CONTENT_FIELDS
    assert item["Content"]["Headers"]["Subject"] == ["Hello"]
    assert item["Content"]["Headers"]["To"] == ["bob@example.com"]
    assert item["Content"]["Headers"]["Return-Path"] == ["<ann@example.com>"]
    assert item["Content"]["Body"] == "Body line\r\n"
    assert item["Content"]["Size"] == len(raw)
    assert item["Content"]["MIME"] is None
    assert item["MIME"] is None
    assert datetime.fromisoformat(item["Created"]) == stored.created
    assert item["Raw"] == {
        "From": "ann@example.com",
        "To": ["bob@example.com"],
        "Data": raw.decode("utf-8"),
        "Helo": "client.example",
    }


def test_multipart_message_has_mime_parts(store: MessageStore) -> None:
    add(store, multipart_raw())

    item = request(store, "GET", "/api/v2/messages").json()["items"][0]
    parts = item["MIME"]["Parts"]
    alternative = parts[0]
    attachment = parts[1]

    assert item["Content"]["MIME"] is None
    assert set(alternative) == CONTENT_FIELDS
    assert alternative["Headers"]["Content-Type"][0].startswith("multipart/alternative")
    assert [p["Body"] for p in alternative["MIME"]["Parts"][:2]] == [
        "Text part",
        "<p>HTML <strong>part</strong><script>alert(1)</script></p>",
    ]
    assert attachment["Headers"]["Content-Disposition"] == ['attachment; filename="report.bin"']
    assert attachment["MIME"] is None
    # MailHog keeps the "--" that ends the closing delimiter as a last part.
    assert parts[-1]["Body"] == "--"


@pytest.mark.parametrize(
    ("kind", "query", "subjects"),
    [
        ("to", "BOB@", ["to bob"]),
        ("to", "carol@example.com", ["to carol"]),
        ("from", "ann@example.com", ["to carol", "to bob"]),
        ("containing", "needle", ["to carol"]),
    ],
)
def test_v2_search_kinds(store: MessageStore, kind: str, query: str, subjects: list[str]) -> None:
    add(store, plain_raw("to bob", to="bob@example.com"), to="bob@example.com")
    add(store, plain_raw("to carol", to="carol@example.com", body="a NEEDLE"), to="carol@example.com")

    reply = request(store, "GET", f"/api/v2/search?kind={kind}&query={quote(query)}")
    page = reply.json()

    assert reply.status == 200
    assert [item["Content"]["Headers"]["Subject"][0] for item in page["items"]] == subjects
    assert page["total"] == len(subjects)
    assert page["count"] == len(subjects)


def test_v2_search_rejects_invalid_kind(store: MessageStore) -> None:
    reply = request(store, "GET", "/api/v2/search?kind=subject&query=x")

    assert reply.status == 400
    assert reply.json()["error"] == (
        "Invalid search kind 'subject': pass kind=to, kind=from or kind=containing."
    )


def test_v2_search_rejects_missing_query(store: MessageStore) -> None:
    reply = request(store, "GET", "/api/v2/search?kind=to")

    assert reply.status == 400
    assert "Missing search query" in reply.json()["error"]


def test_v1_messages_is_array(store: MessageStore) -> None:
    older = add(store, plain_raw("first"))
    newer = add(store, plain_raw("second"))

    listing = request(store, "GET", "/api/v1/messages").json()

    assert isinstance(listing, list)
    assert [item["ID"] for item in listing] == [newer.id, older.id]


def test_v1_get_message(store: MessageStore) -> None:
    stored = add(store, plain_raw())

    reply = request(store, "GET", f"/api/v1/messages/{stored.id}")

    assert reply.status == 200
    assert reply.json()["ID"] == stored.id


def test_v1_get_unknown_message_is_404(store: MessageStore) -> None:
    reply = request(store, "GET", "/api/v1/messages/missing@localaws")

    assert reply.status == 404
    assert "missing@localaws not found" in reply.json()["error"]


def test_v1_delete_one(store: MessageStore) -> None:
    remaining = add(store, plain_raw())
    deleted = add(store, plain_raw())

    first = request(store, "DELETE", f"/api/v1/messages/{deleted.id}")
    second = request(store, "DELETE", f"/api/v1/messages/{deleted.id}")

    assert first.status == 200
    assert second.status == 404
    assert store.get(deleted.id) is None
    assert store.get(remaining.id) is not None


def test_v1_delete_all(store: MessageStore) -> None:
    add(store, plain_raw())
    add(store, plain_raw())

    reply = request(store, "DELETE", "/api/v1/messages")

    assert reply.status == 200
    assert store.count() == 0


def test_v1_download_returns_raw_bytes(store: MessageStore) -> None:
    raw = multipart_raw()
    stored = add(store, raw)

    reply = request(store, "GET", f"/api/v1/messages/{stored.id}/download")

    assert reply.status == 200
    assert reply.headers["Content-Type"] == "message/rfc822"
    assert reply.body == raw


def test_index_page_lists_decoded_subjects(store: MessageStore) -> None:
    add(store, multipart_raw())
    add(store, plain_raw("<script>alert('x')</script>"))

    reply = request(store, "GET", "/")

    assert reply.status == 200
    assert "Bienvenue à l\u2019école — ✓" in reply.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in reply.text
    assert "<script>" not in reply.text
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]


def test_message_page_shows_headers_body_and_attachments(store: MessageStore) -> None:
    stored = add(store, multipart_raw())

    reply = request(store, "GET", f"/messages/{stored.id}")

    assert reply.status == 200
    assert "report.bin" in reply.text
    assert "Text part" in reply.text
    assert re.search(r'<iframe sandbox src="/messages/[^"]+/html"', reply.text)
    assert "<script>alert(1)" not in reply.text


def test_html_body_is_served_sandboxed(store: MessageStore) -> None:
    stored = add(store, multipart_raw())

    reply = request(store, "GET", f"/messages/{stored.id}/html")

    assert reply.status == 200
    assert reply.headers["Content-Security-Policy"].startswith("sandbox;")
    assert "<strong>part</strong>" in reply.text


def test_message_page_unknown_id_is_404(store: MessageStore) -> None:
    reply = request(store, "GET", "/messages/missing@localaws")

    assert reply.status == 404
