"""Tasks that start, stop and inspect the stack's services."""

from __future__ import annotations

import sys

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from localaws.collections._base import SET_HELP, load_settings, print_json, reports_errors, say
from localaws.errors import ConfigError
from localaws.runtime import host


@task(iterable=["set_"], help={"set_": SET_HELP, "timeout": "Seconds to wait for readiness; default 60."})
@reports_errors
def up(c: Context, set_: list[str] | None = None, timeout: float = 60.0) -> None:
    """Start the emulator, the mail catcher and the private PostgreSQL, and wait until they are ready."""
    settings = load_settings(c, set_ or ())
    host.up(settings, say, timeout)


@task
@reports_errors
def down(c: Context) -> None:
    """Stop every service of the stack; its data stays in the state folder."""
    host.down(load_settings(c), say)


@task(help={"json": "Print the status as JSON."})
@reports_errors
def status(c: Context, json: bool = False) -> None:
    """Show each service's state, pid, ports and health."""
    statuses = host.status(load_settings(c))
    if json:
        print_json([item.as_dict() for item in statuses])
        return
    for item in statuses:
        pid = item.pid if item.pid is not None else "-"
        ports = ",".join(str(port) for port in item.ports)
        mark = "healthy" if item.healthy else "unhealthy"
        say(f"{item.name:<10} {item.state:<12} pid {pid!s:<8} port {ports:<10} {mark}: {item.health}")
    if not all(item.healthy for item in statuses):
        raise SystemExit(1)


@task(help={
    "service": "Show only this service's log (emulator, mail, postgres, supervisord).",
    "follow": "Keep printing new lines until interrupted.",
    "lines": "Number of lines to show first; default 50.",
})
@reports_errors
def logs(c: Context, service: str | None = None, follow: bool = False, lines: int = 50) -> None:
    """Print the services' logs."""
    settings = load_settings(c)
    known = [*host.services_by_name(settings), "supervisord"]
    if service == "postgres" and settings.postgres_server == "system":
        raise ConfigError("PostgreSQL is the system server here (POSTGRES_SERVER=system), so its log "
                          "is the server's own, usually in /var/log/postgresql/.")
    if service is not None and service not in known:
        raise ConfigError(f"unknown service {service!r}: expected one of {', '.join(known)}.")
    names = [service] if service else known

    if follow:
        if len(names) != 1:
            raise ConfigError("--follow needs one service: add --service NAME.")
        for line in host.follow(host.log_file(settings, names[0]), lines):
            sys.stdout.write(line)
            sys.stdout.flush()
        return
    for name in names:
        say(f"==> {host.log_file(settings, name)} <==")
        text = host.tail(host.log_file(settings, name), lines)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@task(help={"timeout": "Seconds to wait; default 60."})
@reports_errors
def wait(c: Context, timeout: float = 60.0) -> None:
    """Wait until every service passes its health probe."""
    host.wait(load_settings(c), timeout, say)


@task(help={"to": "Connection mode: direct (DATABASE_URL) or rds (the emulator's RDS instance and the "
                  "database secret)."})
@reports_errors
def mode(c: Context, to: str) -> None:
    """Set how the application and the Lambda functions find the database, and redeploy the functions."""
    from localaws.collections.db import apply_playbook_lines, emulator_problem

    settings = load_settings(c, (), DB_MODE=to)
    say(f"{settings.env_file}: DB_MODE={settings.db_mode}")
    problem = emulator_problem(settings)
    if problem is not None:
        say(f"{problem}; run `invoke resources.setup` after `invoke stack.up` to give the Lambda "
            "functions the new mode")
        return
    for line in apply_playbook_lines(settings, "site.yml"):
        say(line)


collection = Collection("stack", up, down, status, logs, wait, mode)
