"""The aws target's read-only rotation audit and the secret_rotation module, on moto."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from localaws.playbook.modules.base import ModuleContext, Target
from localaws.playbook.modules.rotation import SecretRotation
from localaws.playbook.results import Status
from localaws.rotation.checks import run_aws_audit
from localaws.rotation.policy import DAYS_TAG, LAMBDA_TAG

REGION = "us-east-1"
SECRETS = ["tutor-system/prod/database", "tutor-system/prod/jwt"]


@pytest.fixture
def aws() -> Iterator[Any]:
    # moto's RotateSecret invokes the rotation function, which needs Docker; the audit only reads.
    with mock_aws(), mock.patch("moto.awslambda.models.LambdaBackend.invoke", return_value=b"{}"):
        session = boto3.session.Session(region_name=REGION)
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            if service not in clients:
                clients[service] = session.client(service)
            return clients[service]

        for name in SECRETS:
            client("secretsmanager").create_secret(Name=name, SecretString=json.dumps({"k": "v"}))
        yield client


def create_function(client: Any) -> str:
    role = client("iam").create_role(RoleName="rotation", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("handler.py", "def lambda_handler(event, context):\n    return {}\n")
    function = client("lambda").create_function(
        FunctionName="secret-rotation", Runtime="python3.11", Role=role["Role"]["Arn"],
        Handler="handler.lambda_handler", Code={"ZipFile": archive.getvalue()})
    return str(function["FunctionArn"])


def create_key(client: Any, rotation_days: int | None) -> None:
    key_id = client("kms").create_key()["KeyMetadata"]["KeyId"]
    client("kms").create_alias(AliasName="alias/tutor-system-secrets", TargetKeyId=key_id)
    if rotation_days is not None:
        client("kms").enable_key_rotation(KeyId=key_id, RotationPeriodInDays=rotation_days)


def context(client: Any, target: str, check_mode: bool = False) -> ModuleContext:
    endpoint = "http://127.0.0.1:1" if target == "local" else None
    return ModuleContext(target=Target(target, REGION, endpoint), check_mode=check_mode,
                         project_dir=Path("."), build_dir=Path("."), client=client)


def configure(client: Any, target: str, days: int = 180, check_mode: bool = False) -> list[Status]:
    module = SecretRotation()
    return [module.run({"secret": name, "lambda_function": "secret-rotation", "days": days,
                        "state": "present"}, context(client, target, check_mode)).status
            for name in SECRETS]


def failed_names(results: list[Any]) -> list[str]:
    return [result.name for result in results if not result.passed]


def test_audit_passes_when_configured(aws: Any) -> None:
    create_function(aws)
    create_key(aws, 365)
    configure(aws, "aws")

    results = run_aws_audit(aws, SECRETS, 180, 365)

    assert failed_names(results) == []
    assert len(results) == 7


def test_audit_reports_missing_rotation(aws: Any) -> None:
    create_key(aws, None)

    results = run_aws_audit(aws, SECRETS, 180, 365)

    assert failed_names(results) == [
        f"{SECRETS[0]}: rotation enabled", f"{SECRETS[0]}: rotation Lambda", f"{SECRETS[0]}: interval",
        f"{SECRETS[1]}: rotation enabled", f"{SECRETS[1]}: rotation Lambda", f"{SECRETS[1]}: interval",
        "alias/tutor-system-secrets: key rotation",
    ]


def test_audit_reports_wrong_interval(aws: Any) -> None:
    create_function(aws)
    create_key(aws, 365)
    configure(aws, "aws", days=30)

    results = run_aws_audit(aws, SECRETS, 180, 365)

    assert failed_names(results) == [f"{SECRETS[0]}: interval", f"{SECRETS[1]}: interval"]


def test_audit_changes_nothing(aws: Any) -> None:
    create_function(aws)
    create_key(aws, 365)
    fields = ("RotationEnabled", "RotationRules", "VersionIdsToStages", "Tags")
    before = [{field: aws("secretsmanager").describe_secret(SecretId=name).get(field) for field in fields}
              for name in SECRETS]

    run_aws_audit(aws, SECRETS, 180, 365)

    after = [{field: aws("secretsmanager").describe_secret(SecretId=name).get(field) for field in fields}
             for name in SECRETS]
    assert after == before


def test_module_aws_idempotent(aws: Any) -> None:
    arn = create_function(aws)

    assert configure(aws, "aws") == [Status.CHANGED, Status.CHANGED]
    assert configure(aws, "aws") == [Status.OK, Status.OK]
    description = aws("secretsmanager").describe_secret(SecretId=SECRETS[0])
    assert description["RotationEnabled"] is True
    assert description["RotationLambdaARN"] == arn
    assert description["RotationRules"]["AutomaticallyAfterDays"] == 180
    policy = json.loads(aws("lambda").get_policy(FunctionName=arn)["Policy"])
    assert {statement["Principal"]["Service"] for statement in policy["Statement"]} == {
        "secretsmanager.amazonaws.com"}


def test_module_local_uses_tags(aws: Any) -> None:
    arn = create_function(aws)

    assert configure(aws, "local", days=2) == [Status.CHANGED, Status.CHANGED]
    assert configure(aws, "local", days=2) == [Status.OK, Status.OK]
    description = aws("secretsmanager").describe_secret(SecretId=SECRETS[0])
    tags = {tag["Key"]: tag["Value"] for tag in description["Tags"]}
    assert tags == {LAMBDA_TAG: arn, DAYS_TAG: "2"}
    assert not description.get("RotationEnabled")


def test_module_check_mode_changes_nothing(aws: Any) -> None:
    create_function(aws)

    assert configure(aws, "aws", check_mode=True) == [Status.CHANGED, Status.CHANGED]
    assert not aws("secretsmanager").describe_secret(SecretId=SECRETS[0]).get("RotationEnabled")


def test_module_absent_cancels(aws: Any) -> None:
    create_function(aws)
    configure(aws, "aws")
    module = SecretRotation()

    result = module.run({"secret": SECRETS[0], "state": "absent"}, context(aws, "aws"))

    assert result.status is Status.CHANGED
    assert not aws("secretsmanager").describe_secret(SecretId=SECRETS[0]).get("RotationEnabled")
