"""Run and control supervisord for the host runtime.

The configuration is rendered from `templates/supervisord.conf.j2` into the
state folder. The toolkit calls supervisord over its private Unix socket with
the XML-RPC interface that `supervisorctl` uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from localaws.errors import ServiceError
from localaws.runtime.ports import STATE_MARKER
from localaws.runtime.services import Service, private_dir
from localaws.settings import Settings
from localaws.templating import render_template

TEMPLATE = "supervisord.conf.j2"
# The kernel limits a Unix socket path to 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class Paths:
    """Files of one supervisord instance inside the state folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def socket(self) -> Path:
        return self.root / "run" / "supervisor.sock"

    @property
    def pid_file(self) -> Path:
        return self.root / "run" / "supervisord.pid"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"


def paths(settings: Settings) -> Paths:
    return Paths(settings.state_dir)


def _supervisor_command(command: list[str]) -> str:
    # supervisord expands %(name)s in every value, so a literal % is doubled.
    return shlex.join(command).replace("%", "%%")


def _supervisor_environment(environment: Mapping[str, str]) -> str:
    # supervisord splits this value with a non-POSIX shlex: quotes have no escapes and are
    # stripped from both ends, so a value may contain one kind of quote but not start or end with one.
    pairs = []
    for key, value in environment.items():
        quote = '"' if '"' not in value else "'"
        quoted_at_an_end = bool(value) and (value[0] in "'\"" or value[-1] in "'\"")
        if quote in value or quoted_at_an_end:
            raise ServiceError(
                f"environment variable {key} has a value supervisord cannot represent "
                "(both quote kinds, or a quote at either end). Change the setting it comes from."
            )
        pairs.append(f"{key}={quote}{value.replace('%', '%%')}{quote}")
    return ",".join(pairs)


def render_config(settings: Settings, services: list[Service]) -> str:
    where = paths(settings)
    if len(str(where.socket)) > _MAX_SOCKET_PATH:
        raise ServiceError(
            f"the supervisor socket path {where.socket} is longer than {_MAX_SOCKET_PATH} bytes. "
            "Set TOOLKIT_STATE_DIR to a shorter folder."
        )
    marker = {STATE_MARKER: str(settings.state_dir)}
    services = [dataclasses.replace(service, environment={**service.environment, **marker})
                for service in services]
    context: dict[str, Any] = {
        "services": services,
        "socket": where.socket,
        "pid_file": where.pid_file,
        "log_dir": where.log_dir,
        "state_dir": settings.state_dir,
    }
    return render_template(
        settings.project_dir / "templates", TEMPLATE, context,
        filters={
            "supervisor_command": _supervisor_command,
            "supervisor_environment": _supervisor_environment,
        },
    )


def write_config(settings: Settings, services: list[Service]) -> bool:
    """Render the configuration into the state folder; return whether it changed."""
    where = paths(settings)
    text = render_config(settings, services)
    private_dir(where.socket.parent)
    private_dir(where.log_dir)
    if where.config.exists() and where.config.read_text(encoding="utf-8") == text:
        return False
    where.config.write_text(text, encoding="utf-8")
    os.chmod(where.config, 0o600)
    return True


class Supervisor:
    """Client of one supervisord instance."""

    def __init__(self, settings: Settings) -> None:
        self.paths = paths(settings)

    def _proxy(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.paths.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def daemon_pid(self) -> int | None:
        """Return the pid of our supervisord if it is running, else None."""
        try:
            pid = int(self.paths.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def is_running(self) -> bool:
        if self.daemon_pid() is None or not self.paths.socket.exists():
            return False
        try:
            return bool(self._proxy().getState()["statename"] == "RUNNING")
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            return False

    def start_daemon(self, timeout: float = 10.0) -> None:
        """Start supervisord in the background and wait until it responds on its socket."""
        result = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.paths.config)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"supervisord failed to start (exit code {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}\n"
                f"See {self.paths.log_dir / 'supervisord.log'}."
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_running():
                return
            time.sleep(0.05)
        raise ServiceError(
            f"supervisord did not respond on {self.paths.socket} within {timeout:.0f} s. "
            f"See {self.paths.log_dir / 'supervisord.log'}."
        )

    def processes(self) -> list[dict[str, Any]]:
        """Return supervisord's process records (name, statename, pid, ...)."""
        if not self.is_running():
            return []
        return list(self._proxy().getAllProcessInfo())

    def start(self, name: str) -> None:
        try:
            self._proxy().startProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" in fault.faultString:
                return
            raise ServiceError(
                f"{name} failed to start: {fault.faultString}. "
                f"See `invoke stack.logs --service {name}`."
            ) from None

    def changed_programs(self) -> set[str]:
        """Return the programs whose configuration on disk differs from what supervisord runs.

        supervisord only reads the file here; nothing is applied until `update`.
        """
        [[_, changed, _]] = self._proxy().reloadConfig()
        return set(changed)

    def update(self) -> None:
        """Apply a changed configuration: add new programs, remove and re-add changed ones."""
        proxy = self._proxy()
        [[added, changed, removed]] = proxy.reloadConfig()
        for name in [*removed, *changed]:
            with contextlib.suppress(xmlrpc.client.Fault):
                proxy.stopProcessGroup(name, True)
            proxy.removeProcessGroup(name)
        for name in [*changed, *added]:
            proxy.addProcessGroup(name)

    def shutdown(self, timeout: float = 60.0) -> bool:
        """Stop every program and supervisord itself; return whether it was running."""
        pid = self.daemon_pid()
        if pid is None:
            return False
        try:
            self._proxy().shutdown()
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            os.kill(pid, 15)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.05)
        raise ServiceError(
            f"supervisord (pid {pid}) did not stop within {timeout:.0f} s. "
            f"See {self.paths.log_dir / 'supervisord.log'}; stop it with `kill {pid}`."
        )
