"""The database setup: role, database and migrations, in that order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg

from localaws.database.admin import Change, ensure_database, ensure_role, require_server
from localaws.database.connection import connect
from localaws.database.marker import write_marker
from localaws.database.migrations import Migration, discover, migrate
from localaws.errors import DatabaseError
from localaws.settings import Settings


@dataclass(frozen=True)
class SetupResult:
    """Outcome of each step of `setup_database`."""

    role: Change
    database: Change
    applied: list[Migration]

    @property
    def changed(self) -> bool:
        return (
            self.role != Change.UNCHANGED
            or self.database != Change.UNCHANGED
            or bool(self.applied)
        )

    def lines(self, settings: Settings) -> list[str]:
        """Describe each step's outcome in one line, for progress output."""
        lines = [
            f"role {settings.db_user}: {self.role}",
            f"database {settings.db_name}: {self.database}",
        ]
        if self.applied:
            lines.extend(f"migration {migration.filename}: applied" for migration in self.applied)
        else:
            lines.append("migrations: none pending")
        return lines


def setup_database(settings: Settings, sql_dir: Path) -> SetupResult:
    """Create or update the role, create and mark the database, then apply pending migrations.

    Every step is idempotent, so a second run changes nothing. The migration
    files are checked first, so a misnamed file fails before the server is
    touched.
    """
    discover(sql_dir)
    require_server(settings)
    role = ensure_role(settings)
    database = ensure_database(settings)
    write_marker(settings)
    applied = migrate(settings, sql_dir)
    return SetupResult(role, database, applied)


def check_login(settings: Settings) -> None:
    """Log in as `db_user` over TCP and run `select 1`; raise DatabaseError if that fails."""
    with connect(settings, autocommit=True) as connection:
        try:
            row = connection.execute("select 1").fetchone()
        except psycopg.Error as error:
            raise DatabaseError(
                f"role {settings.db_user!r} logged in to database {settings.db_name!r} "
                f"but `select 1` failed: {str(error).strip()}. Check the server's log."
            ) from error
    if row != (1,):
        raise DatabaseError(
            f"`select 1` as role {settings.db_user!r} returned {row!r} instead of (1,)."
        )
