"""Probe whether each service responds, without changing anything."""

from __future__ import annotations

import json
import shutil
import smtplib
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass

from localaws.settings import Settings

TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Health:
    """Outcome of one probe: whether the service responded, with its response or the failure."""

    healthy: bool
    detail: str


def http_get(url: str, timeout: float = TIMEOUT_SECONDS) -> tuple[int, bytes]:
    """GET `url` and return the status and body; HTTP error statuses are returned, not raised."""
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - URLs are built from settings.
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def probe_emulator(settings: Settings) -> Health:
    url = f"{settings.aws_endpoint_url}/_ministack/ready"
    try:
        status, _body = http_get(url)
    except OSError as error:
        return Health(False, f"{url} did not answer: {error}")
    if status != 200:
        return Health(False, f"{url} returned HTTP {status}")
    return Health(True, f"{url} returned HTTP 200")


def probe_smtp(settings: Settings) -> Health:
    try:
        with smtplib.SMTP(settings.bind_host, settings.smtp_port, timeout=TIMEOUT_SECONDS) as client:
            code, _ = client.ehlo()
            if code != 250:
                return Health(False, f"SMTP EHLO returned {code}")
            code, _ = client.noop()
            if code != 250:
                return Health(False, f"SMTP NOOP returned {code}")
    except (OSError, smtplib.SMTPException) as error:
        return Health(False, f"SMTP on {settings.bind_host}:{settings.smtp_port} failed: {error}")
    return Health(True, f"SMTP on {settings.bind_host}:{settings.smtp_port} accepted EHLO")


def probe_mail_api(settings: Settings) -> Health:
    url = f"{settings.mail_api_url}/api/v2/messages?limit=1"
    try:
        status, body = http_get(url)
        total = json.loads(body)["total"] if status == 200 else None
    except (OSError, ValueError, KeyError) as error:
        return Health(False, f"{url} did not answer: {error}")
    if status != 200:
        return Health(False, f"{url} returned HTTP {status}")
    return Health(True, f"API responded ({total} {'message' if total == 1 else 'messages'} stored)")


def probe_mail(settings: Settings) -> Health:
    smtp = probe_smtp(settings)
    if not smtp.healthy:
        return smtp
    return probe_mail_api(settings)


def probe_postgres(settings: Settings) -> Health:
    """Ask the server on the configured port whether it accepts connections (pg_isready)."""
    from localaws.database import cluster

    port = settings.db_port
    tool = cluster.bin_dir(settings) / "pg_isready"
    if not tool.exists():
        found = shutil.which("pg_isready")
        if found is None:
            return _probe_tcp(settings.db_host, port)
        tool = type(tool)(found)
    result = subprocess.run([str(tool), "-q", "-h", settings.db_host, "-p", str(port), "-t", "2"],
                            check=False, capture_output=True)
    if result.returncode == 0:
        return Health(True, f"PostgreSQL on {settings.db_host}:{port} accepts connections")
    states = {1: "rejects connections (starting up?)", 2: "does not answer", 3: "was not probed"}
    return Health(False, f"PostgreSQL on {settings.db_host}:{port} {states.get(result.returncode, 'failed')}")


def _probe_tcp(host: str, port: int) -> Health:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS):
            return Health(True, f"{host}:{port} accepts TCP connections")
    except OSError as error:
        return Health(False, f"{host}:{port} refused: {error}")
