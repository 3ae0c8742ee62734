"""The database tasks through `invoke`: db.status, db.migrate, db.reset and db.shell on a private stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from localaws.settings import read_env_file
from tests.integration.clihelpers import INVOKE, Cli
from tests.integration.conftest import PROJECT, make_state_dir, stack_environment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    root = make_state_dir("localaws-dbtasks-")
    runner = Cli({**os.environ, **stack_environment(root)})
    try:
        runner.run("stack.up")
        runner.run("db.setup")
        yield runner
    finally:
        runner.run("stack.down", check=False)
        shutil.rmtree(root, ignore_errors=True)


INSERT_USERS = {
    name: f"insert into users (cognito_sub, email) values ('{name}', '{name}@example.com')"  # noqa: S608
    for name in ("keep", "gone")
}


def password(cli: Cli) -> str:
    return read_env_file(Path(cli.environment["TOOLKIT_ENV_FILE"]), {})["DB_PASSWORD"][0]


def test_status_shows_server_and_tables(cli: Cli) -> None:
    output = cli.run("db.status").stdout
    assert f"container on 127.0.0.1:{cli.environment['POSTGRES_PRIVATE_PORT']}" in output
    assert "mode:     direct" in output
    assert "pending:  none" in output
    assert "public.users" in output


def test_status_json(cli: Cli) -> None:
    data = json.loads(cli.run("db.status", "--json").stdout)
    assert data["server"] == "container"
    assert data["port"] == int(cli.environment["POSTGRES_PRIVATE_PORT"])
    assert data["mode"] == "direct"
    assert data["pending"] == []
    assert [item["version"] for item in data["applied"]] == [1]
    tables = {item["name"]: item for item in data["tables"]}
    assert tables["public.schema_migrations"]["rows"] == 1
    assert tables["public.users"]["bytes"] > 0


def test_migrate_status_changes_nothing(cli: Cli) -> None:
    output = cli.run("db.migrate", "--status").stdout
    assert "applied  001_initial_schema.sql" in output
    assert "pending" not in output
    assert "migrations: none pending" in cli.run("db.migrate").stdout


def test_shell_command_passthrough(cli: Cli) -> None:
    result = cli.run("db.shell", "--command", "select 40 + 2 as answer")
    assert "42" in result.stdout
    assert password(cli) not in result.stdout + result.stderr


def test_shell_failure_exits_nonzero(cli: Cli) -> None:
    result = cli.run("db.shell", "--command", "select * from no_such_table", check=False)
    assert result.returncode != 0
    assert "no_such_table" in result.stderr


def test_shell_password_not_on_command_line(cli: Cli) -> None:
    process = subprocess.Popen([INVOKE, "db.shell", "--command", "select pg_sleep(3)"], cwd=PROJECT,
                               env=cli.environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    psql = None
    deadline = time.monotonic() + 30
    while psql is None and time.monotonic() < deadline:
        psql = next((child for child in psutil.Process(process.pid).children(recursive=True)
                     if child.name() == "psql"), None)
        time.sleep(0.02)
    assert psql is not None, "psql did not start"
    command_line = " ".join(psql.cmdline())
    passfile = Path(psql.environ()["PGPASSFILE"])
    assert password(cli) not in command_line
    assert "PGPASSWORD" not in psql.environ()
    assert passfile.stat().st_mode & 0o777 == 0o600
    process.communicate(timeout=60)
    assert process.returncode == 0
    assert not passfile.exists()


def test_reset_without_terminal_is_rejected(cli: Cli) -> None:
    cli.run("db.shell", "--command", INSERT_USERS["keep"])
    result = cli.run("db.reset", check=False)
    assert result.returncode == 1
    assert "--yes" in result.stderr
    assert "1" in cli.run("db.shell", "--command", "select count(*) from users").stdout


def test_reset_yes_recreates_database(cli: Cli) -> None:
    cli.run("db.shell", "--command", INSERT_USERS["gone"])
    output = cli.run("db.reset", "--yes").stdout
    assert "dropped" in output
    assert "migration 001_initial_schema.sql: applied" in output
    count = cli.run("db.shell", "--command", "select count(*) as n from users").stdout
    assert " 0\n" in count
    verify = cli.run("verify", check=False).stdout
    assert "PASS  database identity" in verify
