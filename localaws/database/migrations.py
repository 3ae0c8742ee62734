"""Schema migrations: `NNN_name.sql` files applied in version order, each once.

Each migration runs in its own transaction as the application role, together
with the row that records it in `schema_migrations`. The recorded SHA-256
checksum detects a migration file edited after it was applied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import class_row

from localaws.database.connection import connect
from localaws.errors import MigrationError
from localaws.settings import Settings

FILE_PATTERN = re.compile(r"(?P<version>\d{3,})_(?P<name>[A-Za-z0-9_]+)\.sql", re.ASCII)
TABLE_NAME = "public.schema_migrations"
TABLE = sql.Identifier("public", "schema_migrations")
# The value is arbitrary. Concurrent `migrate` calls on one database wait for each other
# on this advisory lock key.
ADVISORY_LOCK_KEY = 0x6C6F63616C617773

CREATE_TABLE = sql.SQL("""
create table if not exists {} (
    version integer primary key,
    name text not null,
    checksum char(64) not null,
    applied_at timestamptz not null default now()
)
""").format(TABLE)
SELECT_APPLIED = sql.SQL(
    "select version, name, checksum, applied_at from {} order by version"
).format(TABLE)
INSERT_APPLIED = sql.SQL(
    "insert into {} (version, name, checksum) values (%s, %s, %s)"
).format(TABLE)


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    path: Path
    checksum: str = field(repr=False)

    @property
    def filename(self) -> str:
        return self.path.name

    def read_sql(self) -> str:
        """Read the file's SQL, with a leading UTF-8 byte order mark removed."""
        try:
            return self.path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as error:
            raise MigrationError(
                f"{self.path} is not valid UTF-8 ({error.reason} at byte {error.start}). "
                "Save the file as UTF-8."
            ) from None


@dataclass(frozen=True)
class AppliedMigration:
    """One row of `schema_migrations`."""

    version: int
    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True)
class MigrationStatus:
    """Migrations compared with the files: applied, pending, changed since applied and missing."""

    applied: list[AppliedMigration]
    pending: list[Migration]
    changed: list[tuple[Migration, AppliedMigration]]
    missing: list[AppliedMigration]
    next_version: int

    def problems(self) -> list[str]:
        """Describe each changed or missing migration, with what to do about it."""
        messages = []
        for migration, applied in self.changed:
            messages.append(
                f"{migration.path} was changed after it was applied on "
                f"{applied.applied_at:%Y-%m-%d %H:%M:%S %Z} (the file's checksum is "
                f"{migration.checksum[:12]}, the recorded one {applied.checksum[:12]}). "
                "Restore the applied content of the file and put the change in a new migration, "
                f"{self.next_version:03d}_<name>.sql."
            )
        for applied in self.missing:
            messages.append(
                f"migration {applied.version:03d}_{applied.name}.sql was applied on "
                f"{applied.applied_at:%Y-%m-%d %H:%M:%S %Z} but its file is missing. "
                "Restore the file from version control. To undo its changes, add a new "
                "migration instead of deleting the file."
            )
        return messages


def checksum(path: Path) -> str:
    """Return the SHA-256 hex digest of a file with CRLF line ends read as LF.

    Line ends are normalised so that a checkout with Windows line ends keeps
    the checksum recorded from a Unix checkout.
    """
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def discover(sql_dir: Path) -> list[Migration]:
    """List the migration files in `sql_dir` in version order.

    Files not ending in `.sql` and hidden files are skipped. Raises
    MigrationError for a missing folder, a `.sql` file named other than
    `NNN_name.sql`, and two files with the same version.
    """
    if not sql_dir.is_dir():
        raise MigrationError(
            f"the migrations folder {sql_dir} does not exist. "
            "Create it, or pass the folder that contains the NNN_name.sql files."
        )

    by_version: dict[int, Migration] = {}
    for path in sorted(sql_dir.iterdir()):
        if path.name.startswith(".") or path.suffix != ".sql" or not path.is_file():
            continue
        match = FILE_PATTERN.fullmatch(path.name)
        if match is None:
            raise MigrationError(
                f"invalid migration file name {path}: expected NNN_name.sql, that is at least "
                "three digits, an underscore, then letters, digits or underscores "
                "(for example 002_add_term_tags.sql). Rename the file."
            )
        version = int(match["version"])
        if version < 1:
            raise MigrationError(
                f"invalid migration version 0 in {path}: versions start at 001. Rename the file."
            )
        if version in by_version:
            raise MigrationError(
                f"migrations {by_version[version].path.name} and {path.name} in {sql_dir} "
                f"both have version {version}. Renumber one of them to an unused version."
            )
        by_version[version] = Migration(version, match["name"], path, checksum(path))

    return [by_version[version] for version in sorted(by_version)]


def _read_applied(connection: psycopg.Connection[tuple[object, ...]]) -> list[AppliedMigration]:
    exists = connection.execute("select to_regclass(%s) is not null", (TABLE_NAME,)).fetchone()
    if not exists or not exists[0]:
        return []
    with connection.cursor(row_factory=class_row(AppliedMigration)) as cursor:
        cursor.execute(SELECT_APPLIED)
        return cursor.fetchall()


def compare(migrations: list[Migration], applied: list[AppliedMigration]) -> MigrationStatus:
    """Sort the migration files and the applied rows into pending, changed and missing."""
    files = {migration.version: migration for migration in migrations}
    recorded = {row.version: row for row in applied}
    changed = [
        (files[row.version], row) for row in applied
        if row.version in files and files[row.version].checksum != row.checksum
    ]
    missing = [row for row in applied if row.version not in files]
    pending = [migration for migration in migrations if migration.version not in recorded]
    next_version = max([*files, *recorded], default=0) + 1
    return MigrationStatus(applied, pending, changed, missing, next_version)


def status(settings: Settings, sql_dir: Path) -> MigrationStatus:
    """Compare the migration files with `schema_migrations` without changing anything."""
    migrations = discover(sql_dir)
    with connect(settings, autocommit=True) as connection:
        applied = _read_applied(connection)
    return compare(migrations, applied)


def migrate(settings: Settings, sql_dir: Path) -> list[Migration]:
    """Apply the pending migrations in version order and return them.

    Raises MigrationError, before applying anything, when an applied
    migration's file changed or is missing. A migration that fails is rolled
    back entirely, and the error names its file and, when PostgreSQL reports
    a position, the line.
    """
    migrations = discover(sql_dir)
    with connect(settings, autocommit=True) as connection:
        connection.execute("select pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        with connection.transaction():
            connection.execute(CREATE_TABLE)

        current = compare(migrations, _read_applied(connection))
        problems = current.problems()
        if problems:
            raise MigrationError(" ".join(problems))

        for migration in current.pending:
            _apply(connection, migration)
        return current.pending


def _apply(connection: psycopg.Connection[tuple[object, ...]], migration: Migration) -> None:
    text = migration.read_sql()
    connection.autocommit = False
    try:
        # Bytes bypass psycopg's placeholder parsing, so a % in the SQL stays as written.
        # Without parameters psycopg uses the simple query protocol, which accepts many statements.
        connection.execute(text.encode("utf-8"))
        if connection.info.transaction_status != TransactionStatus.INTRANS:
            raise MigrationError(
                f"{migration.path} ends the transaction it runs in (it contains COMMIT, ROLLBACK "
                "or END), so statements before that point may be committed while the migration "
                "is not recorded. Remove the transaction statements: each migration already runs "
                "in its own transaction."
            )
        connection.execute(
            INSERT_APPLIED, (migration.version, migration.name, migration.checksum)
        )
        connection.commit()
    except psycopg.Error as error:
        connection.rollback()
        raise _failure(migration, text, error) from error
    except MigrationError:
        connection.rollback()
        raise
    finally:
        connection.autocommit = True


def _failure(migration: Migration, text: str, error: psycopg.Error) -> MigrationError:
    diagnostic = error.diag
    location = str(migration.path)
    position = diagnostic.statement_position
    if position and position.isdigit():
        # The position counts characters from 1 in the text sent, which is the whole file.
        line = text[: int(position) - 1].count("\n") + 1
        location = f"{location}:{line}"
    message = diagnostic.message_primary or str(error).strip()
    code = f" [{diagnostic.sqlstate}]" if diagnostic.sqlstate else ""
    detail = f" {diagnostic.message_detail}" if diagnostic.message_detail else ""
    return MigrationError(
        f"migration {location} failed: {message}{code}.{detail} Nothing from this migration "
        "was applied. Fix the file and run the migrations again."
    )
