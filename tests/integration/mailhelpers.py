"""Start `python -m localaws.mail` as a subprocess on free loopback ports, and stop it by its pid."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 5.0


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class CatcherProcess:
    """A mail catcher subprocess with its ports, store directory and log file."""

    store_dir: Path
    log_path: Path
    smtp_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def start(self) -> None:
        """Start the catcher and wait until its HTTP API responds."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "localaws.mail",
                "--bind",
                HOST,
                "--smtp-port",
                str(self.smtp_port),
                "--http-port",
                str(self.http_port),
                "--store-dir",
                str(self.store_dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Mail catcher exited with {self.process.returncode}:\n{self.log()}")
            try:
                self.get_json("/api/v2/messages")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Mail catcher did not answer within {START_TIMEOUT_SECONDS} s:\n{self.log()}")

    def stop(self) -> int | None:
        """Send SIGTERM to the catcher's pid and return its exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.base_url + path, timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")
