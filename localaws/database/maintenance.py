"""Whole-database operations: existence, drop, per-table fingerprints and sizes, psql sessions."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from localaws.database.admin import run_admin_sql
from localaws.database.cluster import find_program
from localaws.database.connection import connect
from localaws.settings import Settings

# Session settings that fix the text form of dates, numbers and bytes, so that two
# servers with different defaults produce the same checksum for the same rows.
CANONICAL_SESSION = (
    "set timezone = 'UTC'",
    "set datestyle = 'ISO, YMD'",
    "set intervalstyle = 'postgres'",
    "set extra_float_digits = 3",
    "set bytea_output = 'hex'",
)
LIST_TABLES = sql.SQL(
    "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
    "where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') "
    "and n.nspname not like 'pg\\_toast%' order by 1, 2"
)
LIST_SEQUENCES = sql.SQL(
    "select schemaname, sequencename, last_value from pg_sequences order by 1, 2"
)
MIGRATIONS_TABLE = ("public", "schema_migrations")


@dataclass(frozen=True)
class TableFingerprint:
    """Row count and checksum of one table's contents."""

    schema: str
    table: str
    rows: int
    checksum: str

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


def checksum_query(schema: str, table: str) -> sql.Composed:
    """Build the query that returns a table's row count and the MD5 of its rows in a fixed order.

    Rows are sorted by their text with the "C" collation, because the two
    servers may have different default collations.
    """
    return sql.SQL(
        "select count(*), coalesce(md5(string_agg(t::text, ',' order by t::text collate \"C\")), '') "
        "from {} as t"
    ).format(sql.Identifier(schema, table))


def database_exists(settings: Settings) -> bool:
    statement = sql.SQL("select 1 from pg_database where datname = {}").format(
        sql.Literal(settings.db_name))
    return run_admin_sql(settings, statement.as_string() + ";\n").strip() == "1"


def drop_database(settings: Settings) -> bool:
    """Drop the application database, ending its open sessions; return whether it existed."""
    if not database_exists(settings):
        return False
    statement = sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(settings.db_name))
    run_admin_sql(settings, statement.as_string() + ";\n")
    return True


def _canonical(connection: psycopg.Connection[tuple[object, ...]]) -> None:
    for statement in CANONICAL_SESSION:
        connection.execute(statement)


def fingerprints(settings: Settings) -> dict[str, TableFingerprint]:
    """Return the fingerprint of every table of the database, keyed by `schema.table`."""
    with connect(settings, autocommit=True) as connection:
        _canonical(connection)
        tables = [(str(schema), str(table)) for schema, table in connection.execute(LIST_TABLES).fetchall()]
        result = {}
        for schema, table in tables:
            row = connection.execute(checksum_query(schema, table)).fetchone()
            rows, checksum = (0, "") if row is None else (int(str(row[0])), str(row[1]))
            fingerprint = TableFingerprint(schema, table, rows, checksum)
            result[fingerprint.name] = fingerprint
    return result


def sequence_values(settings: Settings) -> dict[str, int | None]:
    """Return the last value of every sequence the application role may read, keyed by `schema.name`."""
    with connect(settings, autocommit=True) as connection:
        rows = connection.execute(LIST_SEQUENCES).fetchall()
    return {f"{schema}.{name}": None if value is None else int(str(value)) for schema, name, value in rows}


def application_rows(tables: dict[str, TableFingerprint]) -> int:
    """Count the rows of every table except the migrations' bookkeeping table."""
    skipped = ".".join(MIGRATIONS_TABLE)
    return sum(item.rows for name, item in tables.items() if name != skipped)


@dataclass(frozen=True)
class TableSize:
    """Disk size of one table with its indexes and TOAST data, and its exact row count."""

    name: str
    rows: int
    bytes: int


def table_sizes(settings: Settings) -> list[TableSize]:
    with connect(settings, autocommit=True) as connection:
        tables = connection.execute(LIST_TABLES).fetchall()
        sizes = []
        for schema, table in tables:
            identifier = sql.Identifier(str(schema), str(table))
            query = sql.SQL("select count(*), pg_total_relation_size({}::regclass) from {}").format(
                sql.Literal(identifier.as_string()), identifier,
            )
            row = connection.execute(query).fetchone()
            rows, size = (0, 0) if row is None else (int(str(row[0])), int(str(row[1])))
            sizes.append(TableSize(f"{schema}.{table}", rows, size))
    return sizes


def pgpass_line(settings: Settings) -> str:
    """Return the `.pgpass` line for the application role, with `:` and `\\` escaped as libpq expects."""
    fields = [settings.db_host, str(settings.db_port), settings.db_name, settings.db_user,
              settings.db_password]
    return ":".join(field.replace("\\", "\\\\").replace(":", "\\:") for field in fields) + "\n"


@contextlib.contextmanager
def password_file(settings: Settings) -> Iterator[Path]:
    """Yield a temporary password file (mode 0600) for psql, removed afterwards."""
    descriptor, name = tempfile.mkstemp(prefix="localaws-pgpass-")
    path = Path(name)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(pgpass_line(settings))
        yield path
    finally:
        path.unlink(missing_ok=True)


def psql_command(settings: Settings, command: str | None = None) -> list[str]:
    """Build the psql command line for the application role; it contains no password."""
    arguments = [
        str(find_program("psql", settings.postgres_bin_dir)), "-X",
        "-h", settings.db_host, "-p", str(settings.db_port),
        "-U", settings.db_user, "-d", settings.db_name,
    ]
    if command is not None:
        arguments += ["-v", "ON_ERROR_STOP=1", "-c", command]
    return arguments


def run_psql(settings: Settings, command: str | None = None) -> int:
    """Run psql as the application role with the password in a temporary PGPASSFILE; return its status."""
    with password_file(settings) as path:
        environment = {**os.environ, "PGPASSFILE": str(path)}
        environment.pop("PGPASSWORD", None)
        return subprocess.run(psql_command(settings, command), env=environment, check=False).returncode
