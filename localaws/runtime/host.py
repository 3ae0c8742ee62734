"""The host runtime: services as processes under supervisord."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from localaws.database.admin import require_server
from localaws.errors import ConfigError, ServiceError
from localaws.runtime.health import probe_postgres
from localaws.runtime.ports import check_ports, find_listener, find_orphans, process_tree, terminate
from localaws.runtime.services import Service, private_dir, stack_services
from localaws.runtime.supervisor import Supervisor, paths, write_config
from localaws.settings import Settings

Report = Callable[[str], None]

# supervisord states from which a program does not start again by itself.
_GAVE_UP = ("FATAL", "EXITED", "STOPPED")
# State shown for a service the stack uses but does not run: the system PostgreSQL server.
EXTERNAL = "EXTERNAL"


@dataclass(frozen=True)
class ServiceStatus:
    """State of one service as `stack.status` shows it."""

    name: str
    title: str
    state: str
    pid: int | None
    ports: list[int]
    healthy: bool
    health: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def stop_orphans(settings: Settings, report: Report) -> bool:
    """Stop services of this state folder that outlived their supervisord; return whether any ran."""
    orphans = find_orphans(str(settings.state_dir))
    for process in orphans:
        report(f"stopping pid {process.pid} ({process.name}), left running by a supervisord that exited")
    terminate(orphans)
    return bool(orphans)


def _records(supervisor: Supervisor) -> dict[str, dict[str, Any]]:
    return {record["name"]: record for record in supervisor.processes()}


def up(settings: Settings, report: Report, timeout: float = 60.0) -> None:
    """Start every service that is not running or whose configuration changed, then wait until all are ready.

    Ports are checked for every service to be started before anything starts,
    so a port in use leaves the machine as it was.
    """
    services = stack_services(settings)
    supervisor = Supervisor(settings)
    private_dir(settings.state_dir, 0o711)
    check_distinct_ports(services)

    with stack_lock(settings, report):
        if not supervisor.is_running():
            stop_orphans(settings, report)

        write_config(settings, services)
        records = _records(supervisor)
        changed = supervisor.changed_programs() if records else set()
        running = {name for name, record in records.items() if record["statename"] in ("RUNNING", "STARTING")}
        to_start = [service for service in services if service.name not in running or service.name in changed]
        own_pids = process_tree(record["pid"] for record in records.values() if record["pid"])

        if settings.postgres_server == "system":
            require_server(settings)
        check_ports([claim for service in to_start for claim in service.ports], own_pids)

        for service in services:
            if service not in to_start:
                report(f"{service.title}: already running (pid {records[service.name]['pid']})")
        for service in to_start:
            if service.prepare is not None:
                service.prepare(report)

        if not supervisor.is_running():
            supervisor.start_daemon()
        else:
            supervisor.update()
            for service in to_start:
                supervisor.start(service.name)

        for service in to_start:
            report(f"{service.title}: " + ("restarted, its configuration changed"
                                          if service.name in changed else "started"))
        wait(settings, timeout, report)
        rotate_due_secrets(settings, report)


def rotate_due_secrets(settings: Settings, report: Report) -> None:
    """Run the secret rotations that fell due while the stack was down, reporting a failure without raising.

    Secrets without a rotation policy, or not created yet, are skipped, so this does nothing
    before `invoke resources.setup` has run.
    """
    import botocore.exceptions

    from localaws.errors import ToolkitError
    from localaws.rotation.service import rotate_due

    try:
        rotate_due(settings, report)
    except (ToolkitError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        report(f"secret rotation failed: {error}")


def check_distinct_ports(services: list[Service]) -> None:
    """Raise `ConfigError` when two services are configured on the same port."""
    seen: dict[int, str] = {}
    for claim in (claim for service in services for claim in service.ports):
        if claim.port in seen:
            raise ConfigError(
                f"port {claim.port} is set for both {seen[claim.port]} and {claim.setting}. "
                "Give each service its own port."
            )
        seen[claim.port] = claim.setting


@contextlib.contextmanager
def stack_lock(settings: Settings, report: Report) -> Iterator[None]:
    """Hold the state folder's lock, so two `stack.up` or `stack.down` runs take turns."""
    path = private_dir(settings.state_dir / "run") / "stack.lock"
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report("waiting for another stack command on this state folder to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def wait(settings: Settings, timeout: float, report: Report | None = None) -> list[ServiceStatus]:
    """Wait until every service passes its probe; raise `ServiceError` naming those that do not."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = status(settings)
        pending = [item for item in statuses if not item.healthy]
        if not pending:
            if report is not None:
                for item in statuses:
                    report(f"{item.title}: ready ({item.health})")
            return statuses
        if any(item.state in _GAVE_UP for item in pending):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)

    lines = []
    for item in pending:
        log = paths(settings).log_dir / f"{item.name}.log"
        excerpt = f"\n{tail(log, 15)}" if item.state != EXTERNAL else ""
        lines.append(f"{item.title}: {item.state}, {item.health}{excerpt}")
    gave_up = any(item.state in _GAVE_UP for item in pending)
    headline = "failed to start" if gave_up else f"not ready within {timeout:.0f} s"
    raise ServiceError(
        f"{headline}:\n" + "\n".join(lines) + "\nSee the logs with `invoke stack.logs --service NAME`."
    )


def status(settings: Settings) -> list[ServiceStatus]:
    """Report every service of the stack: supervisor state, pid, ports and probe result."""
    records = _records(Supervisor(settings))
    statuses = []
    for service in stack_services(settings):
        record = records.get(service.name)
        state = record["statename"] if record else "NOT STARTED"
        pid = record["pid"] if record and record["pid"] else None
        # A program stays STARTING for supervisord's startsecs even when it already responds.
        health = service.probe() if state in ("RUNNING", "STARTING") else None
        statuses.append(ServiceStatus(
            name=service.name,
            title=service.title,
            state=state,
            pid=pid,
            ports=[claim.port for claim in service.ports],
            healthy=bool(health and health.healthy),
            health=health.detail if health else "not running",
        ))
    if settings.postgres_server == "system":
        statuses.append(_system_postgres_status(settings))
    return statuses


def _system_postgres_status(settings: Settings) -> ServiceStatus:
    health = probe_postgres(settings)
    holder = find_listener(settings.db_port)
    return ServiceStatus(
        name="postgres",
        title="PostgreSQL (system server)",
        state=EXTERNAL,
        pid=holder.pid,
        ports=[settings.db_port],
        healthy=health.healthy,
        health=health.detail,
    )


def down(settings: Settings, report: Report) -> None:
    """Stop every service and supervisord; data in the state folder stays."""
    supervisor = Supervisor(settings)
    with stack_lock(settings, report):
        stopped = supervisor.shutdown()
        stopped = stop_orphans(settings, report) or stopped
    if stopped:
        report("stack stopped; its data stays in " + str(settings.state_dir))
    else:
        report("stack was not running")


def services_by_name(settings: Settings) -> dict[str, Service]:
    return {service.name: service for service in stack_services(settings)}


def log_file(settings: Settings, name: str) -> Path:
    return paths(settings).log_dir / f"{name}.log"


def follow(path: Path, lines: int) -> Iterator[str]:
    """Yield the last `lines` lines of `path`, then new lines as they are written."""
    yield from tail(path, lines).splitlines(keepends=True)
    position = path.stat().st_size if path.exists() else 0
    while True:
        if path.exists():
            size = path.stat().st_size
            if size < position:
                position = 0
            if size > position:
                with path.open("r", encoding="utf-8", errors="replace") as handle:
                    handle.seek(position)
                    chunk = handle.read()
                    position = handle.tell()
                yield from chunk.splitlines(keepends=True)
        time.sleep(0.25)


def tail(path: Path, lines: int) -> str:
    if not path.exists():
        return f"(no log at {path})"
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        return "".join(handle.readlines()[-lines:])
