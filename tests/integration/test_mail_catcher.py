"""End-to-end tests of the mail catcher: SMTP in, MailHog's HTTP API out, across a restart."""

from __future__ import annotations

import smtplib
import socket
import time
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

import pytest

from localaws.mail.client import MailCatcherClient, find_code
from localaws.mail.mime import attachment_bytes, decode_message

from .mailhelpers import HOST, CatcherProcess

pytestmark = pytest.mark.integration

UTF8_SUBJECT = "Bienvenue à l\u2019école — ✓"
ATTACHMENT = bytes(range(256)) * 64 + b"\r\n.\r\n\x00end"
MESSAGE_FIELDS = {"ID", "From", "To", "Content", "Created", "MIME", "Raw"}


def send(catcher: CatcherProcess, message: EmailMessage) -> None:
    with smtplib.SMTP(HOST, catcher.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)


def html_mail() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "App <no-reply@app.example>"
    message["To"] = "html.user@example.com"
    message["Subject"] = "Your sign-in code"
    message.set_content("Your code is in the HTML part.")
    message.add_alternative("<p>Your code is <strong>482913</strong>.</p><p>Order 100200</p>", subtype="html")
    return message


def plain_mail() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "no-reply@app.example"
    message["To"] = "plain.user@example.com"
    message["Subject"] = "Plain text"
    message.set_content("Hello,\n\nyour code is 730154.\n")
    return message


def utf8_mail() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "École <ecole@app.example>"
    message["To"] = "eleve@example.com"
    message["Subject"] = UTF8_SUBJECT
    message.set_content("Voilà votre relevé, élève.")
    message.add_attachment(ATTACHMENT, maintype="application", subtype="octet-stream", filename="relevé.bin")
    return message


def search_to(catcher: CatcherProcess, address: str) -> dict[str, object]:
    page: dict[str, object] = catcher.get_json(f"/api/v2/search?kind=to&query={quote(address)}")
    return page


def only_item(page: dict[str, object]) -> dict[str, object]:
    items = page["items"]
    assert isinstance(items, list)
    assert page["total"] == 1
    assert len(items) == 1
    item: dict[str, object] = items[0]
    return item


def raw_bytes(item: dict[str, object]) -> bytes:
    raw = item["Raw"]
    assert isinstance(raw, dict)
    data: str = raw["Data"]
    return data.encode("utf-8")


def test_html_mail_round_trip(catcher: CatcherProcess) -> None:
    send(catcher, html_mail())

    item = only_item(search_to(catcher, "html.user@example.com"))

    assert set(item) == MESSAGE_FIELDS
    assert item["To"] == [{"Relays": None, "Mailbox": "html.user", "Domain": "example.com", "Params": ""}]
    assert isinstance(item["MIME"], dict)
    assert len(item["MIME"]["Parts"]) >= 2
    assert find_code(raw_bytes(item)) == "482913"
    assert MailCatcherClient(catcher.base_url).latest_code("html.user@example.com") == "482913"


def test_plain_mail_round_trip(catcher: CatcherProcess) -> None:
    send(catcher, plain_mail())

    item = only_item(search_to(catcher, "PLAIN.USER@example.com"))
    content = item["Content"]

    assert isinstance(content, dict)
    assert content["Headers"]["Subject"] == ["Plain text"]
    assert "your code is 730154." in content["Body"]
    assert content["MIME"] is None
    assert item["MIME"] is None
    assert item["Raw"]["From"] == "no-reply@app.example"  # type: ignore[index]
    assert MailCatcherClient(catcher.base_url).latest_code("plain.user@example.com") == "730154"


def test_utf8_subject_and_attachment(catcher: CatcherProcess) -> None:
    send(catcher, utf8_mail())

    item = only_item(search_to(catcher, "eleve@example.com"))
    raw = raw_bytes(item)
    decoded = decode_message(raw)

    assert decoded.subject == UTF8_SUBJECT
    assert decoded.text == "Voilà votre relevé, élève.\n"
    assert attachment_bytes(raw) == {"relevé.bin": ATTACHMENT}
    assert [a.filename for a in decoded.attachments] == ["relevé.bin"]


def test_smtputf8_envelope_and_8bit_body(catcher: CatcherProcess) -> None:
    message = EmailMessage()
    message["From"] = "zoë@app.example"
    message["To"] = "ünïcode@example.com"
    message["Subject"] = UTF8_SUBJECT
    message.set_content("Größe: 8bit body ✓", cte="8bit")

    with smtplib.SMTP(HOST, catcher.smtp_port, timeout=10) as smtp:
        smtp.send_message(message, mail_options=["SMTPUTF8"])

    item = only_item(search_to(catcher, "ünïcode@example.com"))
    assert item["Raw"]["From"] == "zoë@app.example"  # type: ignore[index]
    assert decode_message(raw_bytes(item)).text == "Größe: 8bit body ✓\n"


def test_messages_survive_restart(catcher: CatcherProcess) -> None:
    send(catcher, html_mail())
    send(catcher, plain_mail())
    send(catcher, utf8_mail())
    before = catcher.get_json("/api/v2/messages")

    assert catcher.stop() == 0
    catcher.start()
    after = catcher.get_json("/api/v2/messages")

    assert after["total"] == 3
    assert after == before
    assert decode_message(raw_bytes(only_item(search_to(catcher, "eleve@")))).subject == UTF8_SUBJECT


def test_delete_all_through_api(catcher: CatcherProcess) -> None:
    send(catcher, plain_mail())
    client = MailCatcherClient(catcher.base_url)

    client.delete_all()

    assert catcher.get_json("/api/v2/messages")["total"] == 0


def test_stops_within_a_second_with_open_smtp_connection(catcher: CatcherProcess) -> None:
    with smtplib.SMTP(HOST, catcher.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        started = time.monotonic()

        status = catcher.stop()

        elapsed = time.monotonic() - started
    assert status == 0
    assert elapsed < 1.0
    assert "Mail catcher stopped" in catcher.log()


def test_port_in_use_exits_1_with_message(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((HOST, 0))
        holder.listen()
        busy_port = holder.getsockname()[1]
        process = CatcherProcess(store_dir=tmp_path / "store", log_path=tmp_path / "catcher.log")
        process.smtp_port = busy_port

        with pytest.raises(RuntimeError, match="exited with 1"):
            process.start()

    assert f"port {busy_port} on {HOST} is in use" in process.log()
    assert "--smtp-port" in process.log()
