"""`invoke db.switch` between the system server and a private cluster, with data, kills and a foreign port.

The stack's database and role names are unique per test run, so the shared
system server's other databases are never touched. The system server must
run: the session fixture starts it when it is down and this process is
root, and stops it again at the end only in that case.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg import sql

from localaws.database.admin import run_admin_sql, server_answers
from localaws.settings import read_env_file
from tests.integration.clihelpers import INVOKE, Cli
from tests.integration.conftest import PROJECT, free_port, make_state_dir, stack_environment
from tests.integration.dbhelpers import make_settings

pytestmark = pytest.mark.integration

SYSTEM_PORT = 5432
TABLES = ("users", "knowledge_domains", "terms", "schema_migrations")
# Enough terms that pg_restore runs long enough to be caught while it runs.
TERM_ROWS = 100_000


def system_cluster_online() -> bool:
    return server_answers("127.0.0.1", SYSTEM_PORT)


@pytest.fixture(scope="session")
def system_server() -> Iterator[None]:
    """Make sure the system server runs; stop it afterwards only if this fixture started it."""
    started = False
    if not system_cluster_online():
        if os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None:
            pytest.skip("the system PostgreSQL server on port 5432 is down and cannot be started "
                        "without root and pg_ctlcluster")
        result = subprocess.run(["pg_ctlcluster", "15", "main", "start"], capture_output=True, text=True,
                                check=False, timeout=120)
        if result.returncode != 0 or not system_cluster_online():
            pytest.skip(f"starting the system server failed: {result.stderr.strip()}")
        started = True
    yield
    if started:
        subprocess.run(["pg_ctlcluster", "15", "main", "stop"], capture_output=True, check=False, timeout=120)


class SwitchStack:
    """A stack run through `invoke`, whose env file selects the server (no POSTGRES_SERVER override)."""

    def __init__(self, root: Path) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.db_name = f"switch_{suffix}"
        self.db_user = f"switch_{suffix}_user"
        environment = {**os.environ, **stack_environment(root)}
        environment.pop("POSTGRES_SERVER")
        environment.pop("POSTGRES_PRIVATE_PORT")
        self.cli = Cli(environment)
        self.env_file = Path(environment["TOOLKIT_ENV_FILE"])

    def setting(self, key: str) -> str:
        return read_env_file(self.env_file, {})[key][0]

    def connect(self, port: int | None = None) -> psycopg.Connection[tuple[object, ...]]:
        """Log in as the application role on `port`, the settings' port by default."""
        return psycopg.connect(host="127.0.0.1", port=port or int(self.setting("DB_PORT")),
                               dbname=self.db_name, user=self.db_user, password=self.setting("DB_PASSWORD"),
                               connect_timeout=10, autocommit=True)

    def counts(self, port: int | None = None) -> dict[str, int]:
        counts = {}
        with self.connect(port) as connection:
            for table in TABLES:
                query = sql.SQL("select count(*) from {}").format(sql.Identifier(table))
                row = connection.execute(query).fetchone()
                assert row is not None
                counts[table] = int(str(row[0]))
        return counts

    def switch(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cli.run("db.switch", *arguments, check=check)

    def start_switch(self, target: str) -> subprocess.Popen[str]:
        return subprocess.Popen([INVOKE, "db.switch", "--to", target, "--yes"], cwd=PROJECT,
                                env=self.cli.environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)


def seed(stack: SwitchStack, terms: int = 20) -> None:
    """Write users, domains and terms, with the identity sequences advanced past deleted rows."""
    with stack.connect() as connection:
        connection.execute("insert into users (cognito_sub, email) select 'sub-' || g, 'user' || g || "
                           "'@example.com' from generate_series(1, 30) g")
        connection.execute("delete from users where id % 7 = 0")
        connection.execute("insert into knowledge_domains (owner_user_id, name) select id, 'domain ' || id "
                           "from users")
        connection.execute("insert into terms (domain_id, term, definition) select d.id, 'term ' || g, "
                           "'definition ' || g from knowledge_domains d, generate_series(1, %s) g "
                           "where d.id = (select min(id) from knowledge_domains)", (terms,))


def insert_user(stack: SwitchStack, name: str) -> int:
    """Insert a user without giving its id, which fails if the sequence did not move with the data."""
    with stack.connect() as connection:
        row = connection.execute("insert into users (cognito_sub, email) values (%s, %s) returning id",
                                 (name, f"{name}@example.com")).fetchone()
    assert row is not None
    return int(str(row[0]))


def kill_at(process: subprocess.Popen[str], marker: str) -> list[str]:
    """Read the output until a line contains `marker`, then kill the process with SIGKILL."""
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    return lines


def kill_during_restore(process: subprocess.Popen[str]) -> bool:
    """Kill the process with SIGKILL while its pg_restore child runs; return whether one was seen."""
    assert process.stdout is not None
    for line in process.stdout:
        if "pg_dump:" in line:
            break
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            children = parent.children(recursive=True)
            if any(child.name() == "pg_restore" for child in children):
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=60)
                return True
        except psutil.NoSuchProcess:
            break
        time.sleep(0.005)
    process.wait(timeout=60)
    return False


@pytest.fixture(scope="module")
def stack(system_server: None) -> Iterator[SwitchStack]:
    root = make_state_dir("localaws-switch-")
    switch_stack = SwitchStack(root)
    try:
        switch_stack.cli.run(
            "local-dev", "--set", "POSTGRES_SERVER=system", "--set", f"DB_NAME={switch_stack.db_name}",
            "--set", f"DB_USER={switch_stack.db_user}", "--set", f"POSTGRES_PRIVATE_PORT={free_port()}",
            check=False,
        )
        switch_stack.cli.run("db.setup")
        seed(switch_stack, TERM_ROWS)
        yield switch_stack
    finally:
        switch_stack.cli.run("stack.down", check=False)
        settings = make_settings(root, free_port()).replace(
            postgres_server="system", db_name=switch_stack.db_name, db_user=switch_stack.db_user)
        cleanup = sql.SQL("drop database if exists {} with (force); drop role if exists {};").format(
            sql.Identifier(switch_stack.db_name), sql.Identifier(switch_stack.db_user))
        run_admin_sql(settings, cleanup.as_string() + "\n")
        shutil.rmtree(root, ignore_errors=True)


def test_switch_to_container_keeps_rows(stack: SwitchStack) -> None:
    before = stack.counts()
    output = stack.switch("--to", "container").stdout

    assert "==> step 1/7: preflight" in output
    assert "==> step 7/7: restart services" in output
    assert stack.setting("POSTGRES_SERVER") == "container"
    assert stack.setting("DB_PORT") == stack.setting("POSTGRES_PRIVATE_PORT")
    assert stack.counts() == before
    new_id = insert_user(stack, "after-container-switch")
    assert new_id > 30
    verify = stack.cli.run("verify", check=False).stdout
    assert "PASS  database identity" in verify


def test_switch_to_system_keeps_rows(stack: SwitchStack) -> None:
    before = stack.counts()
    refused = stack.switch("--to", "system", check=False)
    assert refused.returncode == 1
    assert "differ from the source" in refused.stderr
    assert stack.setting("POSTGRES_SERVER") == "container"

    stack.switch("--to", "system", "--yes")

    assert stack.setting("POSTGRES_SERVER") == "system"
    assert stack.setting("DB_PORT") == str(SYSTEM_PORT)
    assert stack.counts() == before
    insert_user(stack, "after-system-switch")


def test_second_switch_to_same_server_finishes(stack: SwitchStack) -> None:
    output = stack.switch("--to", "system").stdout
    assert "already select POSTGRES_SERVER=system" in output
    assert "==> step 3/3: restart services" in output


@pytest.mark.parametrize("marker", ["==> step 3/7: copy data", "==> step 5/7: switch settings"])
def test_killed_switch_leaves_old_setup(stack: SwitchStack, marker: str) -> None:
    before = stack.counts()
    lines = kill_at(stack.start_switch("container"), marker)
    assert any(marker in line for line in lines)

    assert stack.setting("POSTGRES_SERVER") == "system"
    assert stack.counts(SYSTEM_PORT) == before

    stack.switch("--to", "container", "--yes")
    assert stack.setting("POSTGRES_SERVER") == "container"
    assert stack.counts() == before
    stack.switch("--to", "system", "--yes")


def test_killed_restore_leaves_old_setup(stack: SwitchStack) -> None:
    # The private cluster still contains the data of the last switch; a new row makes the copy necessary.
    insert_user(stack, "before-restore-kill")
    before = stack.counts()
    caught = kill_during_restore(stack.start_switch("container"))
    assert caught, "pg_restore was not seen running"

    assert stack.setting("POSTGRES_SERVER") == "system"
    assert stack.counts(SYSTEM_PORT) == before

    output = stack.switch("--to", "container", "--yes").stdout
    assert "interrupted" in output
    assert stack.counts() == before
    stack.switch("--to", "system", "--yes")


def test_foreign_listener_stops_switch(stack: SwitchStack) -> None:
    assert stack.setting("POSTGRES_SERVER") == "system"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        environment = {**stack.cli.environment, "POSTGRES_PRIVATE_PORT": str(port)}
        result = Cli(environment).run("db.switch", "--to", "container", check=False)

    assert result.returncode == 1
    assert f"pid {os.getpid()}" in result.stderr
    assert "POSTGRES_PRIVATE_PORT" in result.stderr
    assert "step 1/7 (preflight) failed" in result.stderr
    assert stack.setting("POSTGRES_SERVER") == "system"
