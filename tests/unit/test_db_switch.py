"""The pure parts of `db.switch`: step plans, comparisons, checksum SQL, messages and the env rewrite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from localaws.database.maintenance import (
    TableFingerprint,
    application_rows,
    checksum_query,
    pgpass_line,
    psql_command,
)
from localaws.database.switch import (
    ALL_STEPS,
    COPY,
    SWITCH_SETTINGS,
    VERIFY,
    compare_sequences,
    compare_tables,
    failure_message,
    plan_steps,
)
from localaws.errors import DatabaseError
from localaws.settings import Settings, resolve_settings

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(PROJECT / "templates", tmp_path / "templates")
    return tmp_path


def settings_of(project: Path, flags: dict[str, object] | None = None) -> Settings:
    project_layer = {"postgres_server": "system", "db_name": "tutor", "db_user": "tutor_user"}
    return resolve_settings(project, project_layer, flags or {}, {})


def fingerprint(name: str, rows: int, checksum: str = "c") -> TableFingerprint:
    schema, table = name.split(".")
    return TableFingerprint(schema, table, rows, checksum)


def test_plan_has_every_step_in_order() -> None:
    assert plan_steps("system", "container", copy_data=True) == list(ALL_STEPS)


def test_plan_without_data_skips_copy_and_verify() -> None:
    steps = plan_steps("system", "container", copy_data=False)
    assert COPY not in steps
    assert VERIFY not in steps
    assert steps[0] == "preflight"
    assert steps[-1] == "restart services"


def test_plan_when_already_switched_finishes() -> None:
    assert plan_steps("container", "container", copy_data=True) == [
        "preflight", "update secret and RDS record", "restart services"]


def test_checksum_query_quotes_names() -> None:
    text = checksum_query("public", 'odd"name').as_string()
    assert 'from "public"."odd""name" as t' in text
    assert "md5(string_agg(t::text, ',' order by t::text collate \"C\"))" in text
    assert text.startswith("select count(*), ")


def test_compare_tables_equal() -> None:
    tables = {"public.users": fingerprint("public.users", 3)}
    assert compare_tables(tables, dict(tables)) == []


def test_compare_tables_lists_each_difference() -> None:
    source = {
        "public.users": fingerprint("public.users", 3),
        "public.terms": fingerprint("public.terms", 2, "a"),
        "public.gone": fingerprint("public.gone", 0),
    }
    target = {
        "public.users": fingerprint("public.users", 4),
        "public.terms": fingerprint("public.terms", 2, "b"),
        "public.extra": fingerprint("public.extra", 1),
    }
    differences = compare_tables(source, target)
    assert "public.extra exists only in the target" in differences
    assert "public.gone is missing in the target" in differences
    assert "public.terms has the same row count but other contents" in differences
    assert "public.users has 3 rows in the source, 4 in the target" in differences
    assert len(differences) == 4


def test_compare_sequences() -> None:
    assert compare_sequences({"public.s": 5}, {"public.s": 5}) == []
    assert compare_sequences({"public.s": 5}, {"public.s": None}) == [
        "sequence public.s is at 5 in the source, None in the target"]


def test_application_rows_skip_migrations() -> None:
    tables = {
        "public.schema_migrations": fingerprint("public.schema_migrations", 4),
        "public.users": fingerprint("public.users", 2),
    }
    assert application_rows(tables) == 2


def test_failure_before_switch_keeps_old_setup(project: Path) -> None:
    source = settings_of(project)
    message = failure_message(COPY, 3, 7, DatabaseError("pg_restore failed"), source, "container")
    assert message.startswith("step 3/7 (copy data) failed: pg_restore failed")
    assert "still select POSTGRES_SERVER=system" in message
    assert "invoke db.switch --to container" in message


def test_failure_after_switch_says_finish(project: Path) -> None:
    source = settings_of(project)
    message = failure_message("restart services", 7, 7, DatabaseError("x"), source, "container")
    assert "already select POSTGRES_SERVER=container" in message
    assert "finish the remaining steps" in message


def test_switch_settings_step_counts_as_before(project: Path) -> None:
    source = settings_of(project)
    message = failure_message(SWITCH_SETTINGS, 5, 7, DatabaseError("x"), source, "container")
    assert "still select POSTGRES_SERVER=system" in message


def test_env_rewrite_changes_server_and_port(project: Path) -> None:
    settings_of(project)
    path = project / ".env.localstack"
    path.write_text(path.read_text() + "# my note\nMY_OWN=1\n")

    switched = settings_of(project, {"POSTGRES_SERVER": "container", "POSTGRES_PRIVATE_PORT": "5544"})

    text = path.read_text()
    assert switched.db_port == 5544
    assert "POSTGRES_SERVER='container'" in text
    assert "DB_PORT='5544'" in text
    assert "@127.0.0.1:5544/tutor" in text
    assert "# my note\nMY_OWN=1\n" in text
    assert path.stat().st_mode & 0o777 == 0o600


def test_rds_mode_empties_database_url(project: Path) -> None:
    settings = settings_of(project, {"DB_MODE": "rds"})
    text = (project / ".env.localstack").read_text()
    assert settings.db_mode == "rds"
    assert "DB_MODE='rds'" in text
    assert "DATABASE_URL=''" in text
    assert "DB_INSTANCE_IDENTIFIER='tutor-system-local-db'" in text


def test_direct_mode_is_default(project: Path) -> None:
    settings = settings_of(project)
    assert settings.db_mode == "direct"
    assert settings.derived_values()["DATABASE_URL"].startswith("postgresql://tutor_user:")


def test_pgpass_line_escapes_separators(project: Path) -> None:
    settings = settings_of(project).replace(db_password="a:b\\c")
    assert pgpass_line(settings) == "127.0.0.1:5432:tutor:tutor_user:a\\:b\\\\c\n"


def test_psql_command_has_no_password(project: Path) -> None:
    settings = settings_of(project).replace(db_password="very-secret-value")
    command = psql_command(settings, "select 1")
    assert "very-secret-value" not in " ".join(command)
    assert command[-2:] == ["-c", "select 1"]
    assert command[command.index("-U"):command.index("-U") + 2] == ["-U", "tutor_user"]
