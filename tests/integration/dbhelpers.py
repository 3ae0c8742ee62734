"""Helpers that run a private PostgreSQL cluster for the database integration tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localaws.database.admin import server_answers
from localaws.database.cluster import POSTGRES_OS_USER, running_as_root, server_command, socket_dir
from localaws.settings import Settings

READY_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 30


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_state_dir() -> Path:
    """Create a state folder under /tmp that the postgres OS user can enter.

    pytest's tmp_path sits below a folder with mode 0700, which the postgres
    user cannot enter when the tests run as root.
    """
    path = Path(tempfile.mkdtemp(prefix="localaws-db-", dir="/tmp"))
    path.chmod(0o755)
    return path


def make_settings(state_dir: Path, port: int, **changes: Any) -> Settings:
    """Build settings for the private cluster in `state_dir` on `port`."""
    settings = Settings(
        project_dir=state_dir,
        state_dir=state_dir,
        env_file=state_dir / ".env.localstack",
        environment="local",
        runtime="host",
        bind_host="127.0.0.1",
        aws_region="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        postgres_server="container",
        postgres_private_port=port,
        db_name="tutor",
        db_user="tutor_app",
        db_password="first-password",
    )
    return settings.replace(**changes)


@dataclass
class RunningServer:
    """A postgres process started by `start_server`, with its log file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_server(settings: Settings, extra_options: list[str] | None = None) -> RunningServer:
    """Start the private cluster in the background and wait until it accepts connections."""
    log_path = settings.state_dir / "postgres-server.log"
    command = server_command(settings) + (extra_options or [])
    user_options: dict[str, Any] = {}
    if running_as_root():
        user_options = {"user": POSTGRES_OS_USER, "group": POSTGRES_OS_USER, "extra_groups": []}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd="/", **user_options,
        )
    server = RunningServer(process, log_path)

    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"postgres exited with status {process.returncode} while starting:\n"
                f"{server.log_text()}"
            )
        on_socket = server_answers(str(socket_dir(settings)), settings.db_port)
        if on_socket and server_answers(settings.db_host, settings.db_port):
            return server
        time.sleep(0.2)

    stop_server(server)
    raise RuntimeError(
        f"postgres did not accept connections within {READY_TIMEOUT_SECONDS} s:\n"
        f"{server.log_text()}"
    )


def stop_server(server: RunningServer) -> None:
    """Stop the server by its pid with SIGTERM and wait for it to exit.

    SIGKILL follows if it has not exited after STOP_TIMEOUT_SECONDS.
    """
    if server.process.poll() is not None:
        return
    os.kill(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=STOP_TIMEOUT_SECONDS)
