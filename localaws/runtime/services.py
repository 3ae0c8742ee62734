"""The long-running services of the stack, described as data for a runtime to run."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from localaws.database import cluster
from localaws.runtime import emulator
from localaws.runtime.health import Health, probe_emulator, probe_mail, probe_postgres
from localaws.runtime.ports import PortClaim
from localaws.settings import Settings


@dataclass(frozen=True)
class Service:
    """One supervised program: how to prepare, run and probe it."""

    name: str
    title: str
    command: list[str]
    directory: Path
    ports: list[PortClaim]
    probe: Callable[[], Health]
    environment: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    # Creates what the service needs before its first start; reports slow steps through its argument.
    prepare: Callable[[Callable[[str], None]], None] | None = None
    stop_signal: str = "TERM"
    stop_wait: int = 10


def private_dir(path: Path, mode: int = 0o700) -> Path:
    """Create `path` if needed and restrict it to `mode`, since state may hold secrets in clear."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path


def _discard(_: object) -> None:
    return None


def emulator_service(settings: Settings) -> Service:
    root = settings.state_dir / "emulator"
    environment = {
        "BIND_HOST": settings.bind_host,
        "GATEWAY_PORT": str(settings.emulator_port),
        "MINISTACK_REGION": settings.aws_region,
        "PERSIST_STATE": "1",
        "S3_PERSIST": "1",
        "STATE_DIR": str(root / "state"),
        "S3_DATA_DIR": str(root / "s3"),
        "TMPDIR": str(root / "tmp"),
        "SMTP_HOST": f"{settings.bind_host}:{settings.smtp_port}",
        "AUTH": "true" if settings.emulator_code_checking else "false",
        "LOG_LEVEL": "INFO",
    }

    def prepare(report: Callable[[str], None]) -> None:
        private_dir(root)
        for name in ("state", "s3", "tmp"):
            private_dir(root / name)
        if emulator.installed_version(settings) != settings.emulator_version:
            report(f"installing MiniStack {settings.emulator_version} into {settings.emulator_venv_path} "
                   "(first use only)")
            emulator.ensure_installed(settings)

    return Service(
        name="emulator",
        title="AWS emulator (MiniStack)",
        command=[str(emulator.executable(settings))],
        directory=root,
        ports=[PortClaim("AWS emulator", settings.bind_host, settings.emulator_port, "EMULATOR_PORT")],
        probe=lambda: probe_emulator(settings),
        environment=environment,
        prepare=prepare,
    )


def mail_service(settings: Settings) -> Service:
    store = settings.state_dir / "mail"
    command = [
        sys.executable, "-m", "localaws.mail",
        "--bind", settings.bind_host,
        "--smtp-port", str(settings.smtp_port),
        "--http-port", str(settings.mail_http_port),
        "--store-dir", str(store),
    ]
    return Service(
        name="mail",
        title="mail catcher",
        command=command,
        directory=store,
        ports=[
            PortClaim("mail catcher (SMTP)", settings.bind_host, settings.smtp_port, "MAIL_SMTP_PORT"),
            PortClaim("mail catcher (web and API)", settings.bind_host, settings.mail_http_port,
                      "MAIL_HTTP_PORT"),
        ],
        probe=lambda: probe_mail(settings),
        environment={"PYTHONUNBUFFERED": "1"},
        prepare=lambda report: _discard(private_dir(store)),
    )


def postgres_service(settings: Settings) -> Service:
    return Service(
        name="postgres",
        title="PostgreSQL (private cluster)",
        command=cluster.server_command(settings),
        directory=settings.state_dir / "postgres",
        ports=[PortClaim("private PostgreSQL", settings.bind_host, settings.postgres_private_port,
                         "POSTGRES_PRIVATE_PORT")],
        probe=lambda: probe_postgres(settings),
        # PostgreSQL refuses to run as root.
        user="postgres" if os.geteuid() == 0 else None,
        prepare=lambda report: _discard(cluster.ensure_cluster(settings)),
        # SIGINT is PostgreSQL's fast shutdown: it rolls back open transactions and stops at once.
        stop_signal="INT",
        stop_wait=30,
    )


def stack_services(settings: Settings) -> list[Service]:
    """Return the services the settings call for, in start order."""
    services = [mail_service(settings), emulator_service(settings)]
    if settings.postgres_server == "container":
        services.insert(0, postgres_service(settings))
    return services
