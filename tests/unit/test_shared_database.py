"""Tests of shared.database with a fake connect function and moto's Secrets Manager; no PostgreSQL runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import psycopg.errors
import pytest
from moto import mock_aws
from psycopg.rows import dict_row

from shared import database
from shared.secrets_client import SecretsClient
from tests.unit.awshelpers import use_fake_aws

REGION = "us-east-1"
DATABASE_SECRET = "tutor-system/local/database"
DATABASE_VALUE = {
    "engine": "postgres",
    "host": "127.0.0.1",
    "port": 5432,
    "dbname": "tutor_system",
    "username": "tutor_user",
    "password": "old-password",
}
AUTHENTICATION_MESSAGE = (
    'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
    'FATAL:  password authentication failed for user "tutor_user"'
)


class FakeCursor:
    """Cursor that records the statements executed on it."""

    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def execute(self, query: str) -> None:
        self.connection.statements.append(query)


class FakeConnection:
    """Connection with psycopg's `closed` and `broken` flags that records commits and rollbacks."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        self.arguments = arguments
        self.closed = False
        self.broken = False
        self.statements: list[str] = []
        self.commits = 0
        self.rollbacks = 0
        self.fail_rollback = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        if self.fail_rollback:
            raise psycopg.OperationalError("the connection is lost")
        self.rollbacks += 1

    def close(self) -> None:
        self.closed = True


class FakeServer:
    """Connect function that accepts only `password` and records every attempt."""

    def __init__(self, password: str, error: psycopg.OperationalError | None = None) -> None:
        self.password = password
        self.error = error
        self.attempts: list[dict[str, Any]] = []
        self.connections: list[FakeConnection] = []

    def __call__(self, **arguments: Any) -> FakeConnection:
        self.attempts.append(arguments)
        if self.error is not None:
            raise self.error
        if arguments["password"] != self.password:
            raise psycopg.OperationalError(AUTHENTICATION_MESSAGE)
        connection = FakeConnection(arguments)
        self.connections.append(connection)
        return connection


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """Give boto3 fake credentials, and start and end each test without a process connection."""
    use_fake_aws(monkeypatch, tmp_path, REGION, ["DB_SECRET_NAME"])
    monkeypatch.setenv("ENVIRONMENT", "local")
    database.close_connection()
    yield
    database.close_connection()


@pytest.fixture
def secrets_manager() -> Iterator[Any]:
    """Start moto with the database secret stored, and return a boto3 client to change it."""
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        client.create_secret(Name=DATABASE_SECRET, SecretString=json.dumps(DATABASE_VALUE))
        yield client


@pytest.fixture
def secrets(secrets_manager: Any) -> SecretsClient:
    """Return a SecretsClient with a long TTL, so only an invalidation makes it read the secret again."""
    return SecretsClient(ttl_seconds=3600)


def fail_inside_cursor(
    secrets: SecretsClient, server: FakeServer, error: Exception, flag: str | None = None
) -> None:
    """Run a statement in get_db_cursor(), set `flag` on the connection, then raise `error` in the block."""
    with database.get_db_cursor(secrets=secrets, connect=server) as cursor:
        cursor.execute("INSERT 1")
        if flag is not None:
            setattr(cursor.connection, flag, True)
        raise error


def rotate_password(secrets_manager: Any, password: str) -> None:
    """Store a new password in the database secret, as rotation does, behind the client's cache."""
    value = {**DATABASE_VALUE, "password": password}
    secrets_manager.put_secret_value(SecretId=DATABASE_SECRET, SecretString=json.dumps(value))


def test_connect_arguments_from_secret(secrets: SecretsClient) -> None:
    server = FakeServer("old-password")

    with database.get_db_cursor(secrets=secrets, connect=server) as cursor:
        cursor.execute("SELECT 1")

    arguments = server.attempts[0]
    assert arguments["host"] == "127.0.0.1"
    assert arguments["port"] == 5432
    assert arguments["dbname"] == "tutor_system"
    assert arguments["user"] == "tutor_user"
    assert arguments["password"] == "old-password"
    assert arguments["row_factory"] is dict_row
    assert arguments["connect_timeout"] == database.DEFAULT_CONNECT_TIMEOUT_SECONDS


def test_rotated_password_reconnects(secrets: SecretsClient, secrets_manager: Any) -> None:
    secrets.get_database_credentials()
    rotate_password(secrets_manager, "new-password")
    server = FakeServer("new-password")

    with database.get_db_cursor(secrets=secrets, connect=server) as cursor:
        cursor.execute("SELECT 1")

    assert [attempt["password"] for attempt in server.attempts] == ["old-password", "new-password"]
    assert server.connections[0].statements == ["SELECT 1"]
    assert server.connections[0].commits == 1


def test_reconnects_only_once(secrets: SecretsClient) -> None:
    server = FakeServer("password-nobody-has")

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        database.get_connection(secrets=secrets, connect=server)

    assert len(server.attempts) == 2


def test_auth_sqlstate_reconnects(secrets: SecretsClient, secrets_manager: Any) -> None:
    secrets.get_database_credentials()
    rotate_password(secrets_manager, "new-password")
    attempts: list[str] = []

    def connect(**arguments: Any) -> FakeConnection:
        attempts.append(arguments["password"])
        if arguments["password"] == "old-password":
            raise psycopg.errors.lookup("28P01")("FATAL: wrong credentials")
        return FakeConnection(arguments)

    database.get_connection(secrets=secrets, connect=connect)

    assert attempts == ["old-password", "new-password"]


def test_other_error_not_retried(secrets: SecretsClient) -> None:
    server = FakeServer("old-password", error=psycopg.OperationalError("connection refused"))

    with pytest.raises(psycopg.OperationalError, match="connection refused"):
        database.get_connection(secrets=secrets, connect=server)

    assert len(server.attempts) == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (psycopg.OperationalError(AUTHENTICATION_MESSAGE), True),
        (psycopg.errors.lookup("28P01")("invalid password"), True),
        (psycopg.errors.lookup("28000")("no pg_hba.conf entry"), True),
        (psycopg.OperationalError("connection refused"), False),
        (psycopg.errors.lookup("57P01")("terminating connection"), False),
    ],
)
def test_is_authentication_failure(error: psycopg.OperationalError, expected: bool) -> None:
    assert database.is_authentication_failure(error) is expected


def test_connection_reused(secrets: SecretsClient) -> None:
    server = FakeServer("old-password")

    with database.get_db_cursor(secrets=secrets, connect=server) as cursor:
        cursor.execute("SELECT 1")
    with database.get_db_cursor(secrets=secrets, connect=server) as cursor:
        cursor.execute("SELECT 2")

    assert len(server.attempts) == 1
    assert server.connections[0].statements == ["SELECT 1", "SELECT 2"]
    assert server.connections[0].commits == 2


@pytest.mark.parametrize("flag", ["closed", "broken"])
def test_reconnects_when_unusable(secrets: SecretsClient, flag: str) -> None:
    server = FakeServer("old-password")
    first = database.get_connection(secrets=secrets, connect=server)
    setattr(first, flag, True)

    second = database.get_connection(secrets=secrets, connect=server)

    assert second is not first
    assert len(server.attempts) == 2
    assert first.closed


def test_rollback_on_exception(secrets: SecretsClient) -> None:
    server = FakeServer("old-password")

    with pytest.raises(RuntimeError, match="handler failed"):
        fail_inside_cursor(secrets, server, RuntimeError("handler failed"))

    connection = server.connections[0]
    assert connection.rollbacks == 1
    assert connection.commits == 0
    assert database.get_connection(secrets=secrets, connect=server) is connection


def test_broken_connection_dropped_after_error(secrets: SecretsClient) -> None:
    server = FakeServer("old-password")

    with pytest.raises(psycopg.OperationalError, match="closed the connection"):
        fail_inside_cursor(
            secrets, server, psycopg.OperationalError("server closed the connection unexpectedly"), "broken"
        )

    assert server.connections[0].closed
    database.get_connection(secrets=secrets, connect=server)
    assert len(server.attempts) == 2


def test_failed_rollback_drops_connection(secrets: SecretsClient) -> None:
    server = FakeServer("old-password")

    with pytest.raises(RuntimeError, match="handler failed"):
        fail_inside_cursor(secrets, server, RuntimeError("handler failed"), "fail_rollback")

    assert server.connections[0].closed
    database.get_connection(secrets=secrets, connect=server)
    assert len(server.attempts) == 2


def test_close_connection(secrets: SecretsClient) -> None:
    server = FakeServer("old-password")
    connection = database.get_connection(secrets=secrets, connect=server)

    database.close_connection()

    assert connection.closed
    database.get_connection(secrets=secrets, connect=server)
    assert len(server.attempts) == 2


@pytest.mark.parametrize("raw", ["soon", "0"])
def test_connect_timeout_invalid(secrets: SecretsClient, monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("DB_CONNECT_TIMEOUT_SECONDS", raw)

    with pytest.raises(ValueError, match="DB_CONNECT_TIMEOUT_SECONDS"):
        database.get_connection(secrets=secrets, connect=FakeServer("old-password"))
