"""Render the mail catcher's message list in headless Chromium and check the subjects it shows."""

from __future__ import annotations

import html
import re
import shutil
import smtplib
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from .mailhelpers import HOST, CatcherProcess

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
SUBJECTS = ["Plain subject", "Bienvenue à l\u2019école — ✓", "Tags <b>stay</b> text"]
CHROMIUM_TIMEOUT_SECONDS = 60


def dump_dom(url: str, profile: Path) -> str:
    """Load `url` in headless Chromium and return the DOM after scripts ran."""
    completed = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        timeout=CHROMIUM_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    return completed.stdout.decode("utf-8")


@pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is not installed; install it with `apt-get install -y chromium`",
)
def test_index_lists_sent_subjects(catcher: CatcherProcess, tmp_path: Path) -> None:
    with smtplib.SMTP(HOST, catcher.smtp_port, timeout=10) as smtp:
        for subject in SUBJECTS:
            message = EmailMessage()
            message["From"] = "app@example.com"
            message["To"] = "reader@example.com"
            message["Subject"] = subject
            message.set_content("Body")
            smtp.send_message(message)

    dom = dump_dom(f"{catcher.base_url}/", tmp_path / "chromium-profile")
    listed_subjects = [
        html.unescape(subject) for subject in re.findall(r'<a class="subject" href="[^"]*">([^<]*)</a>', dom)
    ]

    assert listed_subjects == SUBJECTS[::-1]
    assert "<b>stay</b>" not in dom


@pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is not installed; install it with `apt-get install -y chromium`",
)
def test_html_body_scripts_do_not_run(catcher: CatcherProcess, tmp_path: Path) -> None:
    message = EmailMessage()
    message["From"] = "app@example.com"
    message["To"] = "reader@example.com"
    message["Subject"] = "Script"
    message.set_content(
        "<p id='target'>original</p>"
        "<script>document.getElementById('target').textContent = 'executed';</script>",
        subtype="html",
    )
    with smtplib.SMTP(HOST, catcher.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)
    message_id = catcher.get_json("/api/v2/messages")["items"][0]["ID"]

    page = dump_dom(f"{catcher.base_url}/messages/{message_id}", tmp_path / "profile-page")
    body = dump_dom(f"{catcher.base_url}/messages/{message_id}/html", tmp_path / "profile-body")

    assert "<iframe sandbox" in page
    assert ">original</p>" in body
    assert "executed</p>" not in body
