"""rds mode of shared.secrets_client: host and port from the RDS instance, the rest from the secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.secrets_client import DatabaseInstanceError, SecretsClient
from tests.unit.awshelpers import use_fake_aws

REGION = "us-east-1"
SECRET = "tutor-system/local/database"
IDENTIFIER = "tutor-system-local-db"
SECRET_VALUE = {"engine": "postgres", "host": "127.0.0.1", "port": "5432", "dbname": "tutor_system",
                "username": "tutor_user", "password": "p4ss-from-secret"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """Fake credentials and moto's mock, with the database secret stored."""
    use_fake_aws(monkeypatch, tmp_path, REGION)
    with mock_aws():
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=SECRET, SecretString=json.dumps(SECRET_VALUE))
        yield


def create_instance(port: int) -> str:
    rds = boto3.client("rds", region_name=REGION)
    created = rds.create_db_instance(
        DBInstanceIdentifier=IDENTIFIER, Engine="postgres", DBInstanceClass="db.t3.micro",
        MasterUsername="tutor_user", MasterUserPassword="ignored-password", AllocatedStorage=20, Port=port,
    )
    return str(created["DBInstance"]["Endpoint"]["Address"])


@pytest.mark.usefixtures("aws")
def test_rds_mode_takes_endpoint_from_instance() -> None:
    address = create_instance(5544)
    environ = {"DB_MODE": "rds", "DB_INSTANCE_IDENTIFIER": IDENTIFIER}
    credentials = SecretsClient(environ=environ).get_database_credentials()
    assert credentials.host == address
    assert credentials.port == 5544
    assert credentials.dbname == "tutor_system"
    assert credentials.username == "tutor_user"
    assert credentials.password == "p4ss-from-secret"


@pytest.mark.usefixtures("aws")
def test_rds_mode_keeps_localhost_address() -> None:
    class LocalRds:
        """An RDS client that reports the endpoint the way MiniStack does."""

        def describe_db_instances(self, DBInstanceIdentifier: str) -> dict[str, Any]:
            assert DBInstanceIdentifier == IDENTIFIER
            return {"DBInstances": [{"Endpoint": {"Address": "localhost", "Port": 39021}}]}

    environ = {"DB_MODE": "rds", "DB_INSTANCE_IDENTIFIER": IDENTIFIER}
    credentials = SecretsClient(environ=environ, rds_client=LocalRds()).get_database_credentials()
    assert credentials.host == "localhost"
    assert credentials.port == 39021


@pytest.mark.usefixtures("aws")
def test_direct_mode_ignores_instance() -> None:
    create_instance(5544)
    credentials = SecretsClient(environ={"DB_INSTANCE_IDENTIFIER": IDENTIFIER}).get_database_credentials()
    assert credentials.host == "127.0.0.1"
    assert credentials.port == 5432


@pytest.mark.usefixtures("aws")
def test_rds_mode_without_identifier_fails() -> None:
    with pytest.raises(DatabaseInstanceError, match="DB_INSTANCE_IDENTIFIER is not set"):
        SecretsClient(environ={"DB_MODE": "rds"}).get_database_credentials()


@pytest.mark.usefixtures("aws")
def test_rds_mode_missing_instance_fails() -> None:
    environ = {"DB_MODE": "rds", "DB_INSTANCE_IDENTIFIER": "missing-db"}
    with pytest.raises(DatabaseInstanceError, match="missing-db"):
        SecretsClient(environ=environ).get_database_credentials()
