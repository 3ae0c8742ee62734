"""Reuse one PostgreSQL connection per process and run each unit of work in a transaction.

A Lambda container keeps module state between warm invocations, so the connection opened by the first
invocation serves the following ones. Credentials come from the secrets client. When the server rejects
them, the cached database secret is read again and the connection retried once, so a password rotated
in Secrets Manager is picked up without failing the request. When that fails too, a rotation may be
running: between its setSecret and finishSecret steps the role already has the AWSPENDING version's
password, and right after finishSecret another thread may have cached the old value again. So one
last attempt uses the AWSPENDING password if there is one, else the AWSCURRENT one read past the cache.

`DB_CONNECT_TIMEOUT_SECONDS` (default 5) bounds each connection attempt. libpq's own `PG*` variables,
such as `PGSSLMODE`, apply as usual.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg.rows import DictRow, dict_row

from shared.secrets_client import DatabaseCredentials, SecretsClient, get_client

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_SECONDS = 5
# invalid_password and invalid_authorization_specification (PostgreSQL error codes, appendix A).
AUTHENTICATION_SQLSTATES = frozenset({"28P01", "28000"})

ConnectFunction = Callable[..., "psycopg.Connection[DictRow]"]

_connection: psycopg.Connection[DictRow] | None = None
# Reentrant, so a get_db_cursor() nested in another on the same thread shares the connection.
_lock = threading.RLock()


def is_authentication_failure(error: psycopg.OperationalError) -> bool:
    """Tell whether `error` means the server rejected the user name or password."""
    if getattr(error, "sqlstate", None) in AUTHENTICATION_SQLSTATES:
        return True
    # A failed connection attempt often carries no SQLSTATE, only libpq's message.
    return "password authentication failed" in str(error).lower()


def get_connection(
    *, secrets: SecretsClient | None = None, connect: ConnectFunction | None = None
) -> psycopg.Connection[DictRow]:
    """Return the process's connection, opening a new one when there is none or it is closed or broken."""
    global _connection
    with _lock:
        # NOTE: psycopg marks a connection broken only after an operation fails on it, so a connection
        # the server dropped while the container was frozen fails one request before it is replaced.
        if _connection is not None and not _connection.closed and not _connection.broken:
            return _connection

        if _connection is not None:
            _close_quietly(_connection)
            _connection = None
        _connection = _open_connection(secrets or get_client(), connect or psycopg.connect)
        return _connection


def open_connection(
    *, secrets: SecretsClient | None = None, connect: ConnectFunction | None = None
) -> psycopg.Connection[DictRow]:
    """Open a new connection that the caller owns and closes, reading credentials as get_connection does.

    For code that needs a connection per thread, since the process's connection serves one thread at a time.
    """
    return _open_connection(secrets or get_client(), connect or psycopg.connect)


@contextmanager
def get_db_cursor(
    *, secrets: SecretsClient | None = None, connect: ConnectFunction | None = None
) -> Iterator[psycopg.Cursor[DictRow]]:
    """Yield a cursor returning dict rows; commit when the block succeeds and roll back when it raises.

    A nested call on the same thread shares the outer call's transaction, so the inner commit also
    commits the outer block's work so far.
    """
    with _lock:
        connection = get_connection(secrets=secrets, connect=connect)
        try:
            with connection.cursor() as cursor:
                yield cursor
            connection.commit()
        except BaseException:
            _roll_back(connection)
            raise


def close_connection() -> None:
    """Close the process's connection, if any; the next get_db_cursor() opens a new one."""
    global _connection
    with _lock:
        if _connection is not None:
            _close_quietly(_connection)
            _connection = None


def _open_connection(secrets: SecretsClient, connect: ConnectFunction) -> psycopg.Connection[DictRow]:
    credentials = secrets.get_database_credentials()
    try:
        return connect(**_connect_arguments(credentials))
    except psycopg.OperationalError as exc:
        if not is_authentication_failure(exc):
            raise
        logger.warning(
            "Database authentication failed for user %s at %s:%s (SQLSTATE %s); "
            "reading secret %s again and reconnecting once",
            credentials.username,
            credentials.host,
            credentials.port,
            getattr(exc, "sqlstate", None),
            secrets.database_secret_name,
        )

    secrets.invalidate(secrets.database_secret_name)
    credentials = secrets.get_database_credentials()
    try:
        return connect(**_connect_arguments(credentials))
    except psycopg.OperationalError as exc:
        if not is_authentication_failure(exc):
            raise
        latest_password, stage = _latest_password(secrets)
        if latest_password is None or latest_password == credentials.password:
            raise
    logger.warning(
        "Database authentication failed again for user %s; connecting with the %s password of secret %s, "
        "which a rotation has just set",
        credentials.username,
        stage,
        secrets.database_secret_name,
    )
    return connect(**_connect_arguments(dataclasses.replace(credentials, password=latest_password)))


def _latest_password(secrets: SecretsClient) -> tuple[str | None, str]:
    """Return the AWSPENDING password, or the AWSCURRENT one when none is pending, read past the cache.

    The second value names the stage read. The password is None when reading fails.
    """
    name = secrets.database_secret_name
    client = secrets.boto_client
    stage = "AWSCURRENT"
    try:
        stages = client.describe_secret(SecretId=name).get("VersionIdsToStages", {})
        pending = next(
            (version for version, labels in stages.items()
             if "AWSPENDING" in labels and "AWSCURRENT" not in labels),
            None,
        )
        request: dict[str, str] = {"SecretId": name, "VersionStage": stage}
        if pending is not None:
            stage = "AWSPENDING"
            request = {"SecretId": name, "VersionId": pending, "VersionStage": stage}
        value = json.loads(client.get_secret_value(**request).get("SecretString") or "null")
    except (BotoCoreError, ClientError, ValueError) as exc:
        logger.warning("Reading the %s version of secret %s failed: %s", stage, name, exc)
        return None, stage
    password = value.get("password") if isinstance(value, dict) else None
    return (password if isinstance(password, str) else None), stage


def _connect_arguments(credentials: DatabaseCredentials) -> dict[str, Any]:
    return {
        "host": credentials.host,
        "port": credentials.port,
        "dbname": credentials.dbname,
        "user": credentials.username,
        "password": credentials.password,
        "connect_timeout": _connect_timeout(),
        "application_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "tutor-system",
        "row_factory": dict_row,
    }


def _connect_timeout() -> int:
    raw = os.environ.get("DB_CONNECT_TIMEOUT_SECONDS", "").strip()
    if not raw:
        return DEFAULT_CONNECT_TIMEOUT_SECONDS
    try:
        seconds = int(raw)
    except ValueError:
        raise ValueError(f"Invalid DB_CONNECT_TIMEOUT_SECONDS {raw!r}: expected whole seconds.") from None
    if seconds <= 0:
        raise ValueError(f"Invalid DB_CONNECT_TIMEOUT_SECONDS {raw!r}: expected 1 or more seconds.")
    return seconds


def _roll_back(connection: psycopg.Connection[DictRow]) -> None:
    """Roll back the failed transaction, and drop the connection when it is broken or cannot roll back."""
    try:
        connection.rollback()
    except psycopg.Error as exc:
        logger.warning("Rollback failed (%s); closing the connection so the next request reconnects", exc)
        close_connection()
        return
    if connection.broken:
        close_connection()


def _close_quietly(connection: psycopg.Connection[DictRow]) -> None:
    try:
        connection.close()
    except psycopg.Error as exc:
        logger.warning("Closing the database connection failed: %s", exc)
