"""Database tasks."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from localaws.collections._base import SET_HELP, load_settings, print_json, reports_errors, say
from localaws.database import maintenance, migrations
from localaws.database.admin import require_server
from localaws.database.setup import setup_database
from localaws.database.switch import SwitchHooks, SwitchOptions, describe_server
from localaws.database.switch import switch as switch_database
from localaws.errors import ToolkitError
from localaws.settings import Settings


@task(iterable=["set_"], help={"set_": SET_HELP})
@reports_errors
def setup(c: Context, set_: list[str] | None = None) -> None:
    """Create the application role and database, and apply pending migrations from sql/."""
    settings = load_settings(c, set_ or ())
    result = setup_database(settings, settings.project_dir / "sql")
    for line in result.lines(settings):
        say(line)


def _ask(question: str) -> bool:
    from localaws.collections.resources import ask

    return ask(question)


def apply_playbook_lines(settings: Settings, playbook: str) -> list[str]:
    """Apply a playbook to the emulator and return one line per task; raise on a failed task."""
    from localaws.playbook import CollectingReporter, RunOptions
    from localaws.provisioning import apply_playbook

    collector = CollectingReporter()
    result = apply_playbook(settings, "local", RunOptions(), confirm=lambda _: True, playbook=playbook,
                            reporter=collector)
    failed = result.failed_task
    if failed is not None:
        raise ToolkitError(f"playbooks/{playbook} failed at {failed.task}: {failed.message}. "
                           "Run `invoke resources.setup` to see every task's result.")
    return [f"{playbook}: {item.task}: {item.status}" for item in collector.results
            if playbook != "site.yml" or item.status != "ok"]


def emulator_problem(settings: Settings) -> str | None:
    from localaws.runtime.health import probe_emulator

    health = probe_emulator(settings)
    return None if health.healthy else f"the emulator does not respond: {health.detail}"


@task(help={
    "to": "Server to move the database to: container (the private cluster) or system.",
    "no_data": "Start the target with an empty, migrated database instead of copying the data.",
    "yes": "Replace data the target database already contains without asking.",
    "timeout": "Seconds to wait for the services to start; default 120.",
})
@reports_errors
def switch(c: Context, to: str, no_data: bool = False, yes: bool = False, timeout: float = 120.0) -> None:
    """Move the database between the system server and the private cluster, data included."""
    from localaws.runtime import host

    settings = load_settings(c)

    def resolve(flags: Mapping[str, str]) -> Settings:
        return load_settings(c, (), **flags)

    hooks = SwitchHooks(
        report=say,
        confirm=_ask,
        resolve=resolve,
        start_services=lambda target: host.up(target, say, timeout),
        apply_playbook=apply_playbook_lines,
        emulator_problem=emulator_problem,
    )
    switched = switch_database(settings, SwitchOptions(to, copy_data=not no_data, assume_yes=yes), hooks)
    say(f"the database now runs on the {describe_server(switched)}")


def _status_data(settings: Settings) -> dict[str, Any]:
    state = migrations.status(settings, settings.project_dir / "sql")
    return {
        "server": settings.postgres_server,
        "host": settings.db_host,
        "port": settings.db_port,
        "database": settings.db_name,
        "user": settings.db_user,
        "mode": settings.db_mode,
        "applied": [{"version": item.version, "name": item.name, "applied_at": item.applied_at}
                    for item in state.applied],
        "pending": [migration.filename for migration in state.pending],
        "problems": state.problems(),
        "tables": [{"name": item.name, "rows": item.rows, "bytes": item.bytes}
                   for item in maintenance.table_sizes(settings)],
    }


@task(help={"json": "Print the status as JSON."})
@reports_errors
def status(c: Context, json: bool = False) -> None:
    """Show the server, port, connection mode, migrations and the size of each table."""
    data = _status_data(load_settings(c))
    if json:
        print_json(data)
        return
    say(f"server:   {data['server']} on {data['host']}:{data['port']}, database {data['database']}, "
        f"role {data['user']}")
    say(f"mode:     {data['mode']}")
    say(f"applied:  {len(data['applied'])} migrations"
        + (f", last {data['applied'][-1]['version']:03d}_{data['applied'][-1]['name']}"
           if data["applied"] else ""))
    say(f"pending:  {', '.join(data['pending']) or 'none'}")
    for problem in data["problems"]:
        say(f"problem:  {problem}")
    for table in data["tables"]:
        say(f"  {table['name']:<32} {table['rows']:>10} rows {table['bytes'] / 1024:>10.0f} KiB")


@task(help={"status": "Only show the applied and pending migrations; apply nothing."})
@reports_errors
def migrate(c: Context, status: bool = False) -> None:
    """Apply the pending migrations from sql/."""
    settings = load_settings(c)
    sql_dir = settings.project_dir / "sql"
    if status:
        state = migrations.status(settings, sql_dir)
        for applied in state.applied:
            when = f"{applied.applied_at:%Y-%m-%d %H:%M:%S %Z}"
            say(f"applied  {applied.version:03d}_{applied.name}.sql  {when}")
        for pending in state.pending:
            say(f"pending  {pending.filename}")
        for problem in state.problems():
            say(f"problem  {problem}")
        return
    newly_applied = migrations.migrate(settings, sql_dir)
    for migration in newly_applied:
        say(f"migration {migration.filename}: applied")
    if not newly_applied:
        say("migrations: none pending")


@task(help={"yes": "Drop the database without asking."})
@reports_errors
def reset(c: Context, yes: bool = False) -> None:
    """Drop and recreate the application database, then apply every migration."""
    settings = load_settings(c)
    require_server(settings)
    where = f"database {settings.db_name!r} on the {describe_server(settings)}"
    if not yes:
        if not sys.stdin.isatty():
            raise Exit(f"error: no terminal to confirm dropping {where}. Pass --yes to drop it.", code=1)
        if not _ask(f"Drop {where} with all its data?\n"):
            raise Exit("not confirmed; nothing was dropped.", code=1)
    existed = maintenance.drop_database(settings)
    say(f"{where}: {'dropped' if existed else 'did not exist'}")
    for line in setup_database(settings, settings.project_dir / "sql").lines(settings):
        say(line)


@task(help={"command": "Run this SQL (psql -c) and exit instead of opening an interactive session."})
@reports_errors
def shell(c: Context, command: str | None = None) -> None:
    """Open psql as the application role on the database the settings select."""
    code = maintenance.run_psql(load_settings(c), command)
    if code != 0:
        raise Exit(code=code)


collection = Collection("db", setup, switch, status, migrate, reset, shell)
