"""The Invoke tasks, run as a user runs them: a real `invoke` process against a private stack."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.integration.clihelpers import Cli, local_dev_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    with local_dev_stack("localaws-cli-") as runner:
        yield runner


def test_local_dev_leaves_verify_passing(cli: Cli) -> None:
    report = json.loads(cli.run("verify", "--json").stdout)
    failed = [check["name"] for check in report["checks"] if not check["passed"]]
    assert failed == []
    assert report["passed"] is True


def test_up_twice_says_what_runs(cli: Cli) -> None:
    output = cli.run("stack.up").stdout
    assert output.count("already running") == 3


def test_status_json_lists_services(cli: Cli) -> None:
    statuses = json.loads(cli.run("stack.status", "--json").stdout)
    assert {item["name"] for item in statuses} == {"postgres", "mail", "emulator"}
    assert all(item["healthy"] for item in statuses)


def test_db_setup_twice_changes_nothing(cli: Cli) -> None:
    output = cli.run("db.setup").stdout
    assert "migrations: none pending" in output
    assert "created" not in output
    assert "updated" not in output


def test_email_code_reads_latest_code(cli: Cli) -> None:
    message = EmailMessage()
    message["From"] = "no-reply@verificationemail.com"
    message["To"] = "cli-user@example.com"
    message["Subject"] = "Your verification code"
    message.set_content("Your code is 111111")
    message.add_alternative("<p>Your verification code is <strong>482913</strong></p>", subtype="html")
    port = int(cli.environment["MAIL_SMTP_PORT"])
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.send_message(message)

    assert cli.run("email.code", "--to", "cli-user@example.com").stdout.strip() == "482913"
    assert "Your verification code" in cli.run("email.search", "--to", "cli-user@example.com").stdout


def test_password_never_printed(cli: Cli) -> None:
    env_file = Path(cli.environment["TOOLKIT_ENV_FILE"])
    password = next(line.split("=", 1)[1].strip("'") for line in env_file.read_text().splitlines()
                    if line.startswith("DB_PASSWORD="))
    for arguments in (["stack.status"], ["verify"], ["db.setup"], ["stack.logs"]):
        result = cli.run(*arguments, check=False)
        assert password not in result.stdout + result.stderr, arguments


def test_broken_env_file_is_reported_without_traceback(cli: Cli) -> None:
    env_file = Path(cli.environment["TOOLKIT_ENV_FILE"])
    original = env_file.read_text()
    try:
        env_file.write_text(original + "this is not valid\n")
        result = cli.run("stack.status", check=False)
        assert result.returncode == 1
        line_number = len(original.splitlines()) + 1
        assert f"{env_file}:{line_number}" in result.stderr
        assert "Traceback" not in result.stderr
        assert env_file.read_text() == original + "this is not valid\n"
    finally:
        env_file.write_text(original)


def test_unknown_service_in_logs_is_rejected(cli: Cli) -> None:
    result = cli.run("stack.logs", "--service", "emulater", check=False)
    assert result.returncode == 1
    assert "unknown service 'emulater'" in result.stderr
