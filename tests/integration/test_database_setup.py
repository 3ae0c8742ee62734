"""The database setup against a real private PostgreSQL cluster.

One cluster serves the module. Each test uses its own role and database, so
the tests do not depend on each other's order.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql

from localaws.database.admin import Change, ensure_database, ensure_role, require_server, run_admin_sql
from localaws.database.cluster import (
    POSTGRES_OS_USER,
    data_dir,
    ensure_cluster,
    running_as_root,
    socket_dir,
)
from localaws.database.migrations import discover, migrate, status
from localaws.database.setup import check_login, setup_database
from localaws.errors import DatabaseError, MigrationError, ServiceError
from localaws.settings import Settings

from .dbhelpers import free_port, make_settings, make_state_dir, start_server, stop_server

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2]
SQL_DIR = PROJECT / "sql"
SPECIAL_PASSWORD = "p@ss#w%rd:/'\"$HOME \\ end"
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Settings, str]]:
    """Settings of a running private cluster, and the path of its log file."""
    state_dir = make_state_dir()
    settings = make_settings(state_dir, free_port())
    server = None
    try:
        assert ensure_cluster(settings) is True
        # log_statement=all puts every statement into the log, which lets tests
        # check that no plain password reached the server.
        server = start_server(settings, ["-c", "log_statement=all"])
        yield settings, str(server.log_path)
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def settings(cluster: tuple[Settings, str]) -> Settings:
    """Cluster settings with a role and database name of their own."""
    number = next(_numbers)
    return cluster[0].replace(
        db_name=f"tutor_{number}", db_user=f"tutor_user_{number}", db_password=f"password-{number}",
    )


@pytest.fixture
def sql_dir(tmp_path: Path) -> Path:
    """A copy of the project's migrations that a test may edit."""
    folder = tmp_path / "sql"
    shutil.copytree(SQL_DIR, folder)
    return folder


def connect_as_app(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=settings.db_host, port=settings.db_port, dbname=settings.db_name,
        user=settings.db_user, password=settings.db_password, autocommit=True,
    )


def test_ensure_cluster_twice(cluster: tuple[Settings, str]) -> None:
    settings = cluster[0]
    data = data_dir(settings)

    assert ensure_cluster(settings) is False
    assert (data / "PG_VERSION").is_file()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    if running_as_root():
        assert pwd.getpwuid(data.stat().st_uid).pw_name == POSTGRES_OS_USER
        assert pwd.getpwuid(socket_dir(settings).stat().st_uid).pw_name == POSTGRES_OS_USER


def test_ensure_cluster_rejects_foreign_folder() -> None:
    state_dir = make_state_dir()
    try:
        settings = make_settings(state_dir, free_port())
        data = data_dir(settings)
        data.mkdir(parents=True)
        (data / "notes.txt").write_text("not a cluster")

        with pytest.raises(ServiceError, match="contains no PG_VERSION"):
            ensure_cluster(settings)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def test_setup_twice_changes_nothing(settings: Settings) -> None:
    first = setup_database(settings, SQL_DIR)
    second = setup_database(settings, SQL_DIR)

    assert first.role == Change.CREATED
    assert first.database == Change.CREATED
    assert [migration.filename for migration in first.applied] == ["001_initial_schema.sql"]
    assert first.changed
    assert second.role == Change.UNCHANGED
    assert second.database == Change.UNCHANGED
    assert second.applied == []
    assert not second.changed
    assert second.lines(settings) == [
        f"role {settings.db_user}: unchanged",
        f"database {settings.db_name}: unchanged",
        "migrations: none pending",
    ]


def test_login_after_setup(settings: Settings) -> None:
    setup_database(settings, SQL_DIR)

    check_login(settings)
    with connect_as_app(settings) as connection:
        owner = connection.execute(
            "select pg_get_userbyid(datdba) from pg_database where datname = current_database()"
        ).fetchone()
    assert owner == (settings.db_user,)


def test_login_with_wrong_password_fails(settings: Settings) -> None:
    setup_database(settings, SQL_DIR)

    with pytest.raises(DatabaseError, match="password authentication failed") as raised:
        check_login(settings.replace(db_password="wrong-password"))
    assert "wrong-password" not in str(raised.value)


@pytest.mark.parametrize("password", [SPECIAL_PASSWORD, "Pässwörd\u00a0ñ-ünïcode"])
def test_special_password_logs_in(
    settings: Settings, cluster: tuple[Settings, str], password: str
) -> None:
    settings = settings.replace(db_password=password)

    setup_database(settings, SQL_DIR)

    check_login(settings)
    with psycopg.connect(settings.database_url) as connection:
        assert connection.execute("select current_user").fetchone() == (settings.db_user,)
    assert ensure_role(settings) == Change.UNCHANGED
    assert password not in Path(cluster[1]).read_text(encoding="utf-8", errors="replace")


def test_changed_password_updates_role(settings: Settings) -> None:
    setup_database(settings, SQL_DIR)
    changed = settings.replace(db_password="second-password")

    assert ensure_role(changed) == Change.UPDATED
    assert ensure_role(changed) == Change.UNCHANGED
    check_login(changed)
    with pytest.raises(DatabaseError):
        check_login(settings)


@pytest.mark.parametrize("password", ["plain-ascii", "Pässwörd\u00a0ñ"])
def test_password_set_by_server_counts_as_unchanged(settings: Settings, password: str) -> None:
    setup_database(settings, SQL_DIR)
    # The server hashes a plain password itself, which checks the client-side SCRAM code against it.
    statement = sql.SQL("alter role {} password {}").format(
        sql.Identifier(settings.db_user), sql.Literal(password),
    )
    run_admin_sql(settings, statement.as_string() + ";\n")

    assert ensure_role(settings.replace(db_password=password)) == Change.UNCHANGED


def test_role_without_login_is_updated(settings: Settings) -> None:
    setup_database(settings, SQL_DIR)
    statement = sql.SQL("alter role {} nologin").format(sql.Identifier(settings.db_user))
    run_admin_sql(settings, statement.as_string() + ";\n")

    assert ensure_role(settings) == Change.UPDATED
    check_login(settings)


def test_database_of_other_owner_is_rejected(settings: Settings) -> None:
    ensure_role(settings)
    statement = sql.SQL("create database {}").format(sql.Identifier(settings.db_name))
    run_admin_sql(settings, statement.as_string() + ";\n")

    with pytest.raises(DatabaseError, match="belongs to role") as raised:
        ensure_database(settings)
    assert settings.db_name in str(raised.value)
    assert "alter database" in str(raised.value)


def test_status_lists_pending_then_applied(settings: Settings, sql_dir: Path) -> None:
    ensure_role(settings)
    ensure_database(settings)

    before = status(settings, sql_dir)
    applied = migrate(settings, sql_dir)
    after = status(settings, sql_dir)

    assert before.applied == []
    assert [migration.version for migration in before.pending] == [1]
    assert [migration.version for migration in applied] == [1]
    assert [row.version for row in after.applied] == [1]
    assert after.pending == []
    assert after.applied[0].checksum == discover(sql_dir)[0].checksum


def test_edited_migration_fails_naming_it(settings: Settings, sql_dir: Path) -> None:
    setup_database(settings, sql_dir)
    schema = sql_dir / "001_initial_schema.sql"
    schema.write_text(schema.read_text() + "\ncreate table extra (id bigint);\n")

    with pytest.raises(MigrationError, match=r"001_initial_schema\.sql") as raised:
        migrate(settings, sql_dir)
    assert "new migration" in str(raised.value)
    assert "002_<name>.sql" in str(raised.value)
    assert status(settings, sql_dir).changed


def test_missing_applied_file_is_reported(settings: Settings, sql_dir: Path) -> None:
    (sql_dir / "002_glossary_notes.sql").write_text("alter table terms add column notes text;\n")
    setup_database(settings, sql_dir)
    (sql_dir / "002_glossary_notes.sql").unlink()

    with pytest.raises(MigrationError, match=r"002_glossary_notes\.sql") as raised:
        migrate(settings, sql_dir)
    assert "missing" in str(raised.value)


def test_sql_error_names_file_and_line(settings: Settings, sql_dir: Path) -> None:
    setup_database(settings, sql_dir)
    broken = sql_dir / "002_broken.sql"
    broken.write_text(
        "create table first_step (id bigint);\n"
        "\n"
        "insert into no_such_table values (1);\n"
    )

    with pytest.raises(MigrationError, match=r"002_broken\.sql:3 failed") as raised:
        migrate(settings, sql_dir)
    assert "no_such_table" in str(raised.value)
    with connect_as_app(settings) as connection:
        leftover = connection.execute("select to_regclass('first_step')").fetchone()
    assert leftover == (None,)
    assert [migration.version for migration in status(settings, sql_dir).pending] == [2]


def test_error_without_position_names_file(settings: Settings, sql_dir: Path) -> None:
    setup_database(settings, sql_dir)
    # PostgreSQL reports no statement position for errors found while executing ALTER TABLE.
    (sql_dir / "002_alter.sql").write_text("alter table no_such_table add column x int;\n")

    with pytest.raises(MigrationError, match=r"002_alter\.sql failed: .*no_such_table"):
        migrate(settings, sql_dir)


def test_syntax_error_names_line(settings: Settings, sql_dir: Path) -> None:
    setup_database(settings, sql_dir)
    (sql_dir / "002_typo.sql").write_text(
        "-- a comment\n"
        "create table second_step (id bigint);\n"
        "crate table third_step (id bigint);\n"
    )

    with pytest.raises(MigrationError, match=r"002_typo\.sql:3 failed: syntax error"):
        migrate(settings, sql_dir)


def test_migration_with_commit_is_rejected(settings: Settings, sql_dir: Path) -> None:
    setup_database(settings, sql_dir)
    (sql_dir / "002_commits.sql").write_text("create table committed (id bigint);\ncommit;\n")

    with pytest.raises(MigrationError, match=r"002_commits\.sql ends the transaction"):
        migrate(settings, sql_dir)
    assert [migration.version for migration in status(settings, sql_dir).pending] == [2]


def test_percent_sign_in_migration_is_kept(settings: Settings, sql_dir: Path) -> None:
    (sql_dir / "002_percent.sql").write_text(
        "create table rates (label text not null default '100%s of %(x)s');\n"
    )

    setup_database(settings, sql_dir)

    with connect_as_app(settings) as connection:
        connection.execute("insert into rates default values")
        assert connection.execute("select label from rates").fetchone() == ("100%s of %(x)s",)


def test_schema_constraints(settings: Settings) -> None:
    setup_database(settings, SQL_DIR)

    with connect_as_app(settings) as connection:
        user_id = connection.execute(
            "insert into users (cognito_sub, email) values ('sub-1', 'Ada@Example.com') returning id"
        ).fetchone()
        assert user_id is not None
        with pytest.raises(errors.UniqueViolation):
            connection.execute(
                "insert into users (cognito_sub, email) values ('sub-2', 'ada@example.COM')"
            )
        with pytest.raises(errors.CheckViolation):
            connection.execute(
                "insert into users (cognito_sub, email, status) values ('sub-3', 'b@x.org', 'gone')"
            )

        domain_id = connection.execute(
            "insert into knowledge_domains (owner_user_id, name) values (%s, 'Networks') returning id",
            user_id,
        ).fetchone()
        assert domain_id is not None
        term_id = connection.execute(
            "insert into terms (domain_id, term, definition) values (%s, 'TCP', 'A protocol') "
            "returning id",
            domain_id,
        ).fetchone()
        assert term_id is not None
        with pytest.raises(errors.UniqueViolation):
            connection.execute(
                "insert into terms (domain_id, term, definition) values (%s, 'tcp', 'Again')",
                domain_id,
            )
        with pytest.raises(errors.CheckViolation):
            connection.execute(
                "insert into learning_progress (user_id, term_id, mastery_level) values (%s, %s, 6)",
                (user_id[0], term_id[0]),
            )
        with pytest.raises(errors.CheckViolation):
            connection.execute(
                "insert into quiz_sessions (user_id, domain_id, status) values (%s, %s, 'completed')",
                (user_id[0], domain_id[0]),
            )

        connection.execute("delete from users where id = %s", user_id)
        remaining = connection.execute("select count(*) from terms").fetchone()
    assert remaining == (0,)


def test_updated_at_follows_updates(settings: Settings) -> None:
    setup_database(settings, SQL_DIR)

    with connect_as_app(settings) as connection:
        connection.execute(
            "insert into users (cognito_sub, email, created_at, updated_at) "
            "values ('sub-1', 'a@example.com', now() - interval '1 day', now() - interval '1 day')"
        )
        connection.execute("update users set status = 'active' where cognito_sub = 'sub-1'")
        row = connection.execute(
            "select updated_at > created_at from users where cognito_sub = 'sub-1'"
        ).fetchone()
    assert row == (True,)


def test_require_server_when_private_cluster_is_down(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, free_port())

    with pytest.raises(ServiceError, match="private cluster does not accept connections") as raised:
        require_server(settings)
    assert "invoke stack.up" in str(raised.value)


def test_require_server_when_system_server_is_down(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, free_port()).replace(
        postgres_server="system",
        postgres_system_port=free_port(),
        postgres_system_socket_dir=str(tmp_path),
    )

    with pytest.raises(ServiceError, match=r"pg_ctlcluster \d+ main start") as raised:
        require_server(settings)
    assert "service postgresql start" in str(raised.value)
    assert "POSTGRES_SERVER=container" in str(raised.value)


def test_require_server_accepts_running_cluster(cluster: tuple[Settings, str]) -> None:
    require_server(cluster[0])


def test_admin_runs_as_server_user(cluster: tuple[Settings, str]) -> None:
    output = run_admin_sql(cluster[0], "select current_user, session_user;\n")

    expected = POSTGRES_OS_USER if running_as_root() else pwd.getpwuid(os.geteuid()).pw_name
    assert output.strip() == f"{expected}|{expected}"
