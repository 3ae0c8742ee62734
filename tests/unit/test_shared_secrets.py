"""Tests of shared.secrets_client against moto's Secrets Manager, a stubbed client and a closed port."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from shared import secrets_client
from shared.secrets_client import (
    DatabaseCredentials,
    DatabaseCredentialsError,
    InvalidSecretNameError,
    InvalidSecretValueError,
    JwtConfig,
    SecretDecryptionError,
    SecretNotFoundError,
    SecretsClient,
    SecretsUnavailableError,
)
from tests.unit.awshelpers import use_fake_aws

REGION = "us-east-1"
DATABASE_SECRET = "tutor-system/local/database"
JWT_SECRET = "tutor-system/local/jwt"
DATABASE_VALUE = {
    "engine": "postgres",
    "host": "127.0.0.1",
    "port": "5432",
    "dbname": "tutor_system",
    "username": "tutor_user",
    "password": "p4ss-from-secret",
}
JWT_VALUE = {"algorithm": "HS256", "expiration_hours": 24, "secret_key": "k" * 64}
FALLBACK_VARIABLES = {
    "DB_HOST": "db.internal",
    "DB_PORT": "5433",
    "DB_NAME": "tutor_env",
    "DB_USER": "env_user",
    "DB_PASSWORD": "p4ss-from-env",
}
# Variables that would send requests elsewhere or change what the client reads.
CLEARED_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "ENVIRONMENT",
    "DB_SECRET_NAME",
    "JWT_SECRET_NAME",
    "SECRETS_CACHE_TTL_SECONDS",
    *FALLBACK_VARIABLES,
)


class FakeClock:
    """Clock that moves only when a test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """Give boto3 fake credentials and a region, and hide any endpoint or profile of the machine."""
    use_fake_aws(monkeypatch, tmp_path, REGION, CLEARED_VARIABLES)
    secrets_client.reset_client()
    yield
    secrets_client.reset_client()


@pytest.fixture
def mocked_aws() -> Iterator[Any]:
    """Start moto's mock and return a boto3 Secrets Manager client for arranging secrets."""
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def stored_secrets(mocked_aws: Any) -> Any:
    """Store the database and JWT secrets in the shape the playbooks create them."""
    mocked_aws.create_secret(Name=DATABASE_SECRET, SecretString=json.dumps(DATABASE_VALUE))
    mocked_aws.create_secret(Name=JWT_SECRET, SecretString=json.dumps(JWT_VALUE))
    return mocked_aws


def closed_port() -> int:
    """Return a loopback port that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def count_get_secret_value(client: SecretsClient) -> list[str]:
    """Record the SecretId of every GetSecretValue call that `client` makes."""
    calls: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["SecretId"])

    client.boto_client.meta.events.register("provide-client-params.secrets-manager.GetSecretValue", record)
    return calls


def unreachable_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point Secrets Manager at a closed loopback port, with one attempt and short timeouts."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("SECRETS_CONNECT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("SECRETS_READ_TIMEOUT_SECONDS", "1")


@pytest.mark.usefixtures("stored_secrets")
def test_database_credentials_from_secret() -> None:
    credentials = SecretsClient().get_database_credentials()

    assert credentials.host == "127.0.0.1"
    assert credentials.port == 5432
    assert credentials.dbname == "tutor_system"
    assert credentials.username == "tutor_user"
    assert credentials.password == "p4ss-from-secret"
    assert credentials.source == "secretsmanager"


@pytest.mark.usefixtures("stored_secrets")
def test_jwt_config_from_secret() -> None:
    config = SecretsClient().get_jwt_config()

    assert config.secret_key == "k" * 64
    assert config.algorithm == "HS256"
    assert config.expiration_hours == 24
    assert config.previous_secret_keys == ()
    assert config.verification_keys == ("k" * 64,)


def test_jwt_config_previous_keys(mocked_aws: Any) -> None:
    value = {**JWT_VALUE, "secret_key": "new", "previous_secret_keys": ["old-1", "old-2"]}
    mocked_aws.create_secret(Name=JWT_SECRET, SecretString=json.dumps(value))

    config = SecretsClient().get_jwt_config()

    assert config.previous_secret_keys == ("old-1", "old-2")
    assert config.verification_keys == ("new", "old-1", "old-2")


def test_secret_names_follow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SecretsClient().database_secret_name == "tutor-system/local/database"
    assert SecretsClient().jwt_secret_name == "tutor-system/local/jwt"

    monkeypatch.setenv("ENVIRONMENT", "staging")
    assert SecretsClient().database_secret_name == "tutor-system/staging/database"
    assert SecretsClient().jwt_secret_name == "tutor-system/staging/jwt"

    monkeypatch.setenv("DB_SECRET_NAME", "custom/db")
    monkeypatch.setenv("JWT_SECRET_NAME", "custom/jwt")
    assert SecretsClient().database_secret_name == "custom/db"
    assert SecretsClient().jwt_secret_name == "custom/jwt"


def test_secret_name_override_is_read(mocked_aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    mocked_aws.create_secret(Name="custom/db", SecretString=json.dumps({**DATABASE_VALUE, "host": "custom"}))
    monkeypatch.setenv("DB_SECRET_NAME", "custom/db")

    assert SecretsClient().get_database_credentials().host == "custom"


@pytest.mark.usefixtures("stored_secrets")
def test_cache_hit_within_ttl() -> None:
    clock = FakeClock()
    client = SecretsClient(ttl_seconds=300, clock=clock)
    calls = count_get_secret_value(client)

    first = client.get_database_credentials()
    clock.now += 299
    second = client.get_database_credentials()

    assert first == second
    assert calls == [DATABASE_SECRET]


def test_cache_expires_after_ttl(stored_secrets: Any) -> None:
    clock = FakeClock()
    client = SecretsClient(ttl_seconds=300, clock=clock)
    calls = count_get_secret_value(client)
    client.get_database_credentials()
    stored_secrets.put_secret_value(
        SecretId=DATABASE_SECRET, SecretString=json.dumps({**DATABASE_VALUE, "password": "rotated"})
    )

    clock.now += 299
    assert client.get_database_credentials().password == "p4ss-from-secret"
    clock.now += 2
    assert client.get_database_credentials().password == "rotated"
    assert calls == [DATABASE_SECRET, DATABASE_SECRET]


@pytest.mark.usefixtures("stored_secrets")
def test_cache_ttl_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETS_CACHE_TTL_SECONDS", "10")
    clock = FakeClock()
    client = SecretsClient(clock=clock)
    calls = count_get_secret_value(client)

    client.get_jwt_config()
    clock.now += 9
    client.get_jwt_config()
    assert calls == [JWT_SECRET]

    clock.now += 2
    client.get_jwt_config()
    assert calls == [JWT_SECRET, JWT_SECRET]


@pytest.mark.parametrize("raw", ["soon", "-1"])
def test_cache_ttl_invalid_value(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("SECRETS_CACHE_TTL_SECONDS", raw)

    with pytest.raises(ValueError, match="SECRETS_CACHE_TTL_SECONDS"):
        SecretsClient()


@pytest.mark.usefixtures("stored_secrets")
def test_zero_ttl_disables_cache() -> None:
    client = SecretsClient(ttl_seconds=0, clock=FakeClock())
    calls = count_get_secret_value(client)

    client.get_jwt_config()
    client.get_jwt_config()

    assert calls == [JWT_SECRET, JWT_SECRET]


@pytest.mark.usefixtures("stored_secrets")
def test_invalidate_one_secret() -> None:
    client = SecretsClient(clock=FakeClock())
    calls = count_get_secret_value(client)
    client.get_database_credentials()
    client.get_jwt_config()

    client.invalidate(DATABASE_SECRET)
    client.get_database_credentials()
    client.get_jwt_config()

    assert calls == [DATABASE_SECRET, JWT_SECRET, DATABASE_SECRET]


@pytest.mark.usefixtures("stored_secrets")
def test_invalidate_all_secrets() -> None:
    client = SecretsClient(clock=FakeClock())
    calls = count_get_secret_value(client)
    client.get_database_credentials()
    client.get_jwt_config()

    client.invalidate()
    client.get_database_credentials()
    client.get_jwt_config()

    assert calls == [DATABASE_SECRET, JWT_SECRET, DATABASE_SECRET, JWT_SECRET]


@pytest.mark.usefixtures("stored_secrets")
def test_cached_value_is_a_copy() -> None:
    client = SecretsClient(clock=FakeClock())

    client.get_secret(DATABASE_SECRET)["password"] = "changed by caller"

    assert client.get_secret(DATABASE_SECRET)["password"] == "p4ss-from-secret"


@pytest.mark.usefixtures("mocked_aws")
def test_put_secret_creates_then_updates() -> None:
    client = SecretsClient(clock=FakeClock())

    client.put_secret("tests/value", {"a": 1})
    assert client.get_secret("tests/value") == {"a": 1}

    client.put_secret("tests/value", {"a": 2, "b": [True, None]})
    assert client.get_secret("tests/value") == {"a": 2, "b": [True, None]}


@pytest.mark.usefixtures("mocked_aws")
def test_put_secret_rejects_oversized_value() -> None:
    with pytest.raises(InvalidSecretValueError, match="at most 65536"):
        SecretsClient().put_secret("tests/large", {"blob": "x" * 70000})


def test_secret_binary_is_decoded(mocked_aws: Any) -> None:
    mocked_aws.create_secret(Name=JWT_SECRET, SecretBinary=json.dumps(JWT_VALUE).encode())

    assert SecretsClient().get_jwt_config().secret_key == "k" * 64


def test_fallback_when_endpoint_unreachable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable_environment(monkeypatch)
    for variable, value in FALLBACK_VARIABLES.items():
        monkeypatch.setenv(variable, value)
    client = SecretsClient()

    with caplog.at_level(logging.WARNING, logger="shared.secrets_client"):
        first = client.get_database_credentials()
        second = client.get_database_credentials()

    assert first.source == "environment"
    assert first.host == "db.internal"
    assert first.port == 5433
    assert first.dbname == "tutor_env"
    assert first.username == "env_user"
    assert first.password == "p4ss-from-env"
    assert second == first
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0].getMessage()
    assert "p4ss-from-env" not in caplog.text


def test_fallback_port_defaults_to_5432(monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable_environment(monkeypatch)
    for variable, value in FALLBACK_VARIABLES.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("DB_PORT")

    assert SecretsClient().get_database_credentials().port == 5432


def test_fallback_variables_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable_environment(monkeypatch)
    monkeypatch.setenv("DB_HOST", "db.internal")
    monkeypatch.setenv("DB_NAME", "tutor_env")

    with pytest.raises(DatabaseCredentialsError) as raised:
        SecretsClient().get_database_credentials()

    message = str(raised.value)
    assert "DB_USER" in message
    assert "DB_PASSWORD" in message
    assert "DB_HOST" not in message
    assert DATABASE_SECRET in message
    assert "unreachable" in message


def test_unreachable_jwt_secret_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable_environment(monkeypatch)

    with pytest.raises(SecretsUnavailableError, match="Cannot read secret 'tutor-system/local/jwt'"):
        SecretsClient().get_jwt_config()


def test_decryption_failure_names_secret() -> None:
    boto_client = boto3.client("secretsmanager", region_name=REGION)
    stubber = Stubber(boto_client)
    stubber.add_client_error(
        "get_secret_value",
        service_error_code="DecryptionFailureException",
        service_message="KMS key is disabled",
        expected_params={"SecretId": DATABASE_SECRET},
    )

    with stubber, pytest.raises(SecretDecryptionError) as raised:
        SecretsClient(boto_client).get_database_credentials()

    message = str(raised.value)
    assert message.startswith("Cannot decrypt secret")
    assert DATABASE_SECRET in message
    assert "kms:Decrypt" in message
    stubber.assert_no_pending_responses()


@pytest.mark.usefixtures("mocked_aws")
def test_not_found_does_not_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in FALLBACK_VARIABLES.items():
        monkeypatch.setenv(variable, value)

    with pytest.raises(SecretNotFoundError) as raised:
        SecretsClient().get_database_credentials()

    message = str(raised.value)
    assert DATABASE_SECRET in message
    assert "invoke resources.setup" in message


def test_secret_missing_keys(mocked_aws: Any) -> None:
    value = {key: item for key, item in DATABASE_VALUE.items() if key not in ("dbname", "password")}
    mocked_aws.create_secret(Name=DATABASE_SECRET, SecretString=json.dumps(value))

    with pytest.raises(InvalidSecretValueError) as raised:
        SecretsClient().get_database_credentials()

    message = str(raised.value)
    assert "dbname" in message
    assert "password" in message
    assert DATABASE_SECRET in message


@pytest.mark.parametrize("stored", ["not json at all p4ss", '["p4ss"]'])
def test_secret_not_json_object(mocked_aws: Any, stored: str) -> None:
    mocked_aws.create_secret(Name=JWT_SECRET, SecretString=stored)

    with pytest.raises(InvalidSecretValueError) as raised:
        SecretsClient().get_jwt_config()

    assert JWT_SECRET in str(raised.value)
    assert "p4ss" not in str(raised.value)
    assert raised.value.__cause__ is None


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"secret_key": ""}, "secret_key"),
        ({"algorithm": 5}, "algorithm"),
        ({"expiration_hours": 0}, "expiration_hours"),
        ({"expiration_hours": True}, "expiration_hours"),
        ({"previous_secret_keys": "old"}, "previous_secret_keys"),
    ],
)
def test_jwt_secret_invalid_field(mocked_aws: Any, changes: dict[str, Any], key: str) -> None:
    mocked_aws.create_secret(Name=JWT_SECRET, SecretString=json.dumps({**JWT_VALUE, **changes}))

    with pytest.raises(InvalidSecretValueError, match=key):
        SecretsClient().get_jwt_config()


def test_database_secret_invalid_port(mocked_aws: Any) -> None:
    mocked_aws.create_secret(Name=DATABASE_SECRET, SecretString=json.dumps({**DATABASE_VALUE, "port": 70000}))

    with pytest.raises(InvalidSecretValueError, match="1 to 65535"):
        SecretsClient().get_database_credentials()


@pytest.mark.parametrize("name", ["", "has space", "a" * 513, "tutor:system"])
def test_invalid_name_rejected(name: str) -> None:
    with pytest.raises(InvalidSecretNameError, match="1 to 512 characters"):
        SecretsClient(object()).get_secret(name)


def test_credentials_repr_hides_password() -> None:
    credentials = DatabaseCredentials(
        host="h", port=5432, dbname="d", username="u", password="p4ss-hidden", source="environment"
    )

    assert "p4ss-hidden" not in repr(credentials)
    assert "username='u'" in repr(credentials)


def test_jwt_repr_hides_keys() -> None:
    config = JwtConfig(secret_key="current-key", previous_secret_keys=("old-key",))

    assert "current-key" not in repr(config)
    assert "old-key" not in repr(config)


@pytest.mark.usefixtures("stored_secrets")
def test_module_functions_share_client() -> None:
    assert secrets_client.get_client() is secrets_client.get_client()
    assert secrets_client.get_database_credentials().username == "tutor_user"
    assert secrets_client.get_jwt_config().algorithm == "HS256"
