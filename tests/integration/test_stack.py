"""The host runtime starts, stops and restarts the stack without losing data."""

from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import psutil
import pytest

from localaws.checks.readiness import aws_client, run_checks
from localaws.errors import PortInUseError
from localaws.runtime import host
from localaws.runtime.health import probe_emulator
from localaws.runtime.supervisor import Supervisor
from localaws.settings import Settings, resolve_settings
from tests.integration.conftest import (
    PROJECT,
    free_port,
    make_state_dir,
    project_settings,
    stack_environment,
    stack_settings,
)

pytestmark = pytest.mark.integration


def send_mail(settings: Settings, to: str, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("persisted body")
    with smtplib.SMTP(settings.bind_host, settings.smtp_port, timeout=5) as client:
        client.send_message(message)


def search_to(settings: Settings, address: str) -> dict[str, object]:
    url = f"{settings.mail_api_url}/api/v2/search?kind=to&query={address}"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback http URL.
        return json.load(response)  # type: ignore[no-any-return]


def test_every_readiness_check_passes(stack: Settings) -> None:
    results = run_checks(stack)
    failed = [f"{result.name}: {result.detail}" for result in results if not result.passed]
    assert failed == []


def test_status_reports_each_service(stack: Settings) -> None:
    statuses = {item.name: item for item in host.status(stack)}
    assert set(statuses) == {"postgres", "mail", "emulator"}
    for item in statuses.values():
        assert item.state in ("RUNNING", "STARTING")
        assert item.pid is not None
        assert item.healthy, item.health


def test_second_up_reports_running_services(stack: Settings) -> None:
    lines: list[str] = []
    host.up(stack, lines.append)
    assert sum("already running" in line for line in lines) == 3
    assert not any(line.endswith(": started") for line in lines)


def test_data_survives_down_and_up(stack: Settings) -> None:
    bucket = f"persist-{uuid.uuid4().hex[:12]}"
    address = f"{uuid.uuid4().hex[:12]}@example.com"
    s3 = aws_client(stack, "s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="kept.txt", Body=b"still here")
    send_mail(stack, address, "kept across restarts")

    host.down(stack, print)
    assert not Supervisor(stack).is_running()
    host.up(stack, print, timeout=120)

    body = aws_client(stack, "s3").get_object(Bucket=bucket, Key="kept.txt")["Body"].read()
    assert body == b"still here"
    found = search_to(stack, address)
    assert found["total"] == 1


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, int]]:
    """A foreign process stand-in: a socket listening on a free loopback port of this test process."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield server, int(server.getsockname()[1])
    finally:
        server.close()


@pytest.fixture
def fresh_state() -> Iterator[Path]:
    path = make_state_dir("localaws-ports-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("setting", ["EMULATOR_PORT", "MAIL_SMTP_PORT"])
def test_port_in_use_stops_before_anything_starts(
    listener: tuple[socket.socket, int], fresh_state: Path, setting: str
) -> None:
    _, port = listener
    settings = stack_settings(fresh_state, **{setting: str(port)})

    with pytest.raises(PortInUseError) as caught:
        host.up(settings, print)

    message = str(caught.value)
    assert f"port {port}" in message
    assert f"pid {os.getpid()}" in message
    assert setting in message
    assert "Nothing was started" in message
    assert not Supervisor(settings).is_running()
    assert not (settings.state_dir / "emulator").exists()


def test_port_held_by_other_program_names_its_command(fresh_state: Path) -> None:
    code = "import socket,sys,time;s=socket.socket();s.bind(('127.0.0.1',0));s.listen();" \
           "print(s.getsockname()[1],flush=True);time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        settings = stack_settings(fresh_state, EMULATOR_PORT=str(port))
        with pytest.raises(PortInUseError) as caught:
            host.up(settings, print)
        assert f"pid {holder.pid}" in str(caught.value)
        assert "time.sleep(60)" in str(caught.value)
    finally:
        holder.terminate()
        holder.wait(timeout=5)


def settings_for(environment: dict[str, str], **overrides: str) -> Settings:
    return resolve_settings(PROJECT, project_settings(), {}, {**os.environ, **environment, **overrides})


def test_changed_port_restarts_only_after_check(fresh_state: Path) -> None:
    environment = stack_environment(fresh_state)
    settings = settings_for(environment)
    host.up(settings, print, timeout=120)
    try:
        moved = settings_for(environment, EMULATOR_PORT=str(free_port()))
        lines: list[str] = []
        host.up(moved, lines.append)
        assert "AWS emulator (MiniStack): restarted, its configuration changed" in lines
        assert probe_emulator(moved).healthy

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            blocked = settings_for(environment, EMULATOR_PORT=str(taken.getsockname()[1]))
            with pytest.raises(PortInUseError):
                host.up(blocked, print)
        assert probe_emulator(moved).healthy
    finally:
        host.down(settings, print)


def test_down_stops_services_of_killed_supervisor(fresh_state: Path) -> None:
    settings = stack_settings(fresh_state)
    host.up(settings, print, timeout=120)
    pids = [item.pid for item in host.status(settings) if item.pid]
    supervisor_pid = Supervisor(settings).daemon_pid()
    assert supervisor_pid is not None

    os.kill(supervisor_pid, signal.SIGKILL)
    lines: list[str] = []
    host.down(settings, lines.append)

    assert any("left running by a supervisord that exited" in line for line in lines)
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
