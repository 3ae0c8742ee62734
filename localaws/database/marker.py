"""The database's identity marker: which state folder's setup created the database.

`db.setup` stores an id, generated once per state folder, as the comment of
the application database. `verify` reads the comment through the
application's connection and compares it with the state folder's id. A
mismatch means the settings name a database that another checkout set up,
for example on the shared system server or on another checkout's private port.
"""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql

from localaws.database.admin import run_admin_sql
from localaws.database.connection import connect
from localaws.settings import Settings
from localaws.settings.envfile import write_private_file

ID_FILE = "database-id"
PREFIX = "localaws state folder id "


def state_id(settings: Settings) -> str:
    """Return the state folder's id, generating and storing it on first use."""
    path = settings.state_dir / ID_FILE
    if path.exists():
        stored = path.read_text(encoding="ascii").strip()
        if stored:
            return stored
    generated = str(uuid.uuid4())
    write_private_file(path, generated + "\n")
    return generated


def marker_text(settings: Settings) -> str:
    return PREFIX + state_id(settings)


def write_marker(settings: Settings) -> None:
    """Store the state folder's id as the comment of the application database, as the superuser."""
    statement = sql.SQL("comment on database {} is {}").format(
        sql.Identifier(settings.db_name), sql.Literal(marker_text(settings)),
    )
    run_admin_sql(settings, statement.as_string() + ";\n")


def read_marker(settings: Settings) -> str | None:
    """Return the comment of the database the application's connection reaches, or None without one."""
    with connect(settings, autocommit=True) as connection:
        try:
            row = connection.execute(
                "select shobj_description(oid, 'pg_database') from pg_database "
                "where datname = current_database()"
            ).fetchone()
        except psycopg.Error:
            return None
    return None if row is None or row[0] is None else str(row[0])
