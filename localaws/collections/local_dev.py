"""The `local-dev` task: everything, in order, for the first day or a rebuild."""

from __future__ import annotations

import time

from invoke.context import Context
from invoke.tasks import task

from localaws.checks.readiness import run_checks
from localaws.collections._base import SET_HELP, load_settings, reports_errors, say
from localaws.collections.verify import print_results
from localaws.database.setup import setup_database
from localaws.playbook import RunOptions
from localaws.provisioning import apply_playbook
from localaws.runtime import host


@task(iterable=["set_"], help={
    "set_": SET_HELP,
    "postgres": "PostgreSQL to use: system, container or auto; kept in the env file.",
    "timeout": "Seconds to wait for the services; default 120.",
    "mode": "Connection mode of the application: direct or rds; kept in the env file as DB_MODE.",
})
@reports_errors
def local_dev(c: Context, set_: list[str] | None = None, postgres: str | None = None,
              timeout: float = 120.0, mode: str | None = None) -> None:
    """Set up and start the whole local environment, then verify it."""
    started = time.perf_counter()

    def step(title: str) -> None:
        say(f"==> {title} [{time.perf_counter() - started:.1f} s]")

    step("settings")
    settings = load_settings(c, set_ or (), POSTGRES_SERVER=postgres, DB_MODE=mode)
    say(f"env file: {settings.env_file}; state folder: {settings.state_dir}")
    say(f"PostgreSQL: {settings.postgres_server} server on port {settings.db_port}, "
        f"connection mode {settings.db_mode}")

    step("services")
    host.up(settings, say, timeout)

    step("database")
    for line in setup_database(settings, settings.project_dir / "sql").lines(settings):
        say(line)

    step("resources")
    result = apply_playbook(settings, "local", RunOptions(), confirm=lambda _: True)
    if result.failed_task is not None:
        raise SystemExit(1)

    step("verify")
    results = run_checks(settings)
    print_results(results)
    if not all(result.passed for result in results):
        raise SystemExit(1)
    say(f"ready in {time.perf_counter() - started:.1f} s")
