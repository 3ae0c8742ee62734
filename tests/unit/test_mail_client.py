"""Tests of the mail catcher's synchronous client and its code extraction."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from aiohttp import web

from localaws.errors import ConfigError
from localaws.mail.api import create_app
from localaws.mail.client import (
    MailCatcherClient,
    MailCatcherError,
    MailCatcherUnavailableError,
    find_code,
)
from localaws.mail.store import MessageStore


def mail(
    text: str | None = None,
    html: str | None = None,
    charset: str = "utf-8",
    cte: str | None = None,
    to: str = "bob@example.com",
) -> bytes:
    message = EmailMessage()
    message["From"] = "app@example.com"
    message["To"] = to
    message["Subject"] = "Your code"
    if text is not None:
        message.set_content(text, charset=charset, cte=cte)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html", charset=charset, cte=cte)
        else:
            message.add_alternative(html, subtype="html", charset=charset, cte=cte)
    return message.as_bytes(policy=SMTP)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (mail(text="Your code is 123456."), "123456"),
        (mail(text="Votre code : 654321 — à bientôt", cte="quoted-printable"), "654321"),
        (mail(text="Código 112233 ✓", cte="base64"), "112233"),
        (mail(html="<p>Use <strong>987654</strong> to sign in</p>", cte="base64"), "987654"),
        (
            mail(html="<p>Use <strong class='c'>\n 246810 </strong> now</p>", cte="quoted-printable"),
            "246810",
        ),
        (mail(html="<p>Order 111111</p><p>Code <STRONG>222222</STRONG></p>"), "222222"),
        (mail(text="Order 333333", html="<p>Code <strong>444444</strong></p>"), "444444"),
        (mail(text="Code 555555", html="<p>Code 666666</p>"), "555555"),
        (mail(html='<p style="color:#123456">Code&nbsp;777777</p>'), "777777"),
        (mail(html="<style>.a{color:#121212}</style><!-- 999999 --><p>Code 808080</p>"), "808080"),
        (mail(text="No code here, only 12345 and 1234567."), None),
        (mail(html="<p>Nothing <strong>here</strong></p>"), None),
    ],
)
def test_find_code(raw: bytes, expected: str | None) -> None:
    assert find_code(raw) == expected


def test_find_code_quoted_printable_soft_breaks() -> None:
    raw = (
        b"Content-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b'<p style=3D"x">Code <strong>13=\r\n5790</strong></p>\r\n'
    )

    assert find_code(raw) == "135790"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[tuple[MailCatcherClient, MessageStore]]:
    """Serve the API on a loopback port from a background thread."""
    store = MessageStore(tmp_path / "mail")
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(store), shutdown_timeout=0.1)
    loop.run_until_complete(runner.setup())
    port = free_port()
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    yield MailCatcherClient(f"http://127.0.0.1:{port}"), store

    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.run_until_complete(runner.cleanup())
    loop.close()
    store.close()


def test_latest_code_reads_newest_message(catcher: tuple[MailCatcherClient, MessageStore]) -> None:
    client, store = catcher
    store.add("app@example.com", ["bob@example.com"], "h", mail(text="Old code 111111"))
    store.add("app@example.com", ["bob@example.com"], "h", mail(html="<strong>222222</strong>"))
    store.add("app@example.com", ["eve@example.com"], "h", mail(text="Other 333333", to="eve@example.com"))

    assert client.latest_code("Bob@Example.com") == "222222"


def test_latest_code_ignores_longer_addresses(
    catcher: tuple[MailCatcherClient, MessageStore],
) -> None:
    client, store = catcher
    store.add("app@example.com", ["bob@example.com"], "h", mail(text="Code 111111"))
    store.add(
        "app@example.com",
        ["alice.bob@example.com"],
        "h",
        mail(text="Code 999999", to="alice.bob@example.com"),
    )

    assert client.latest_code("bob@example.com") == "111111"


def test_latest_code_none_without_code_or_message(
    catcher: tuple[MailCatcherClient, MessageStore],
) -> None:
    client, store = catcher
    store.add("app@example.com", ["bob@example.com"], "h", mail(text="Code 111111"))
    store.add("app@example.com", ["bob@example.com"], "h", mail(text="Welcome, no code"))

    assert client.latest_code("bob@example.com") is None
    assert client.latest_code("nobody@example.com") is None


def test_list_search_and_delete_all(catcher: tuple[MailCatcherClient, MessageStore]) -> None:
    client, store = catcher
    store.add("app@example.com", ["bob@example.com"], "h", mail(text="one"))
    store.add("app@example.com", ["eve@example.com"], "h", mail(text="two", to="eve@example.com"))

    assert len(client.list_messages(limit=1)) == 1
    assert len(client.list_messages()) == 2
    assert [m["Raw"]["To"] for m in client.search("to", "eve@")] == [["eve@example.com"]]
    assert len(client.search("containing", "one")) == 1

    client.delete_all()

    assert store.count() == 0
    assert client.list_messages() == []


def test_search_rejects_invalid_kind(catcher: tuple[MailCatcherClient, MessageStore]) -> None:
    client, _ = catcher

    with pytest.raises(ConfigError, match="Invalid search kind 'subject'"):
        client.search("subject", "x")


def test_delete_unknown_message_reports_http_error(
    catcher: tuple[MailCatcherClient, MessageStore],
) -> None:
    client, _ = catcher

    with pytest.raises(MailCatcherError, match=r"HTTP 404: Message missing@localaws not found"):
        client.delete("missing@localaws")


def test_unreachable_catcher_names_url_and_next_step() -> None:
    port = free_port()
    client = MailCatcherClient(f"http://127.0.0.1:{port}", timeout=2)

    with pytest.raises(MailCatcherUnavailableError) as raised:
        client.list_messages()

    message = str(raised.value)
    assert f"http://127.0.0.1:{port}/api/v2/messages" in message
    assert "invoke stack.up" in message
    assert "MAIL_HTTP_PORT" in message


def test_client_rejects_non_http_url() -> None:
    with pytest.raises(ConfigError, match="Invalid mail catcher URL 'file:///etc'"):
        MailCatcherClient("file:///etc")
