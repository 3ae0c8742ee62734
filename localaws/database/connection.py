"""Connections to the application database as the application role."""

from __future__ import annotations

import psycopg

from localaws.errors import DatabaseError
from localaws.settings import Settings

CONNECT_TIMEOUT_SECONDS = 10
APPLICATION_NAME = "localaws"


def connect(
    settings: Settings, *, autocommit: bool = False
) -> psycopg.Connection[tuple[object, ...]]:
    """Connect to `db_name` as `db_user` over TCP, the way the application does.

    The password goes to libpq as a keyword argument, so no connection string
    that contains it is built. Raises DatabaseError when the connection fails.
    """
    try:
        return psycopg.connect(
            host=settings.db_host,
            port=settings.db_port,
            dbname=settings.db_name,
            user=settings.db_user,
            password=settings.db_password,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=APPLICATION_NAME,
            autocommit=autocommit,
        )
    except psycopg.OperationalError as error:
        raise DatabaseError(
            f"cannot connect to database {settings.db_name!r} as role {settings.db_user!r} "
            f"at {settings.db_host}:{settings.db_port}: {str(error).strip().rstrip('?.')}. "
            "Check that the server runs (`invoke stack.up` starts the private cluster), that "
            "`invoke db.setup` has created the role and the database, and that DB_USER and "
            f"DB_PASSWORD in {settings.env_file} are current."
        ) from error
