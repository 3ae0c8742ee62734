"""The AWS modules run their create, repeat, change and remove cycle against a real MiniStack."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localaws.checks.readiness import aws_client
from localaws.playbook.modules.base import MASK, Module, ModuleContext, Target
from localaws.playbook.modules.iam import IamRole
from localaws.playbook.modules.kms import KmsKey
from localaws.playbook.modules.logs import LogGroup
from localaws.playbook.modules.rds import RdsInstance
from localaws.playbook.modules.s3 import S3Bucket
from localaws.playbook.modules.secrets import Secret
from localaws.playbook.modules.ses import SesIdentity
from localaws.playbook.results import ModuleResult, Status
from localaws.settings import Settings

pytestmark = pytest.mark.integration

# A test value that must never appear in results.
PASSWORD = "emulator-password-3b7d"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}
READ_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}],
}
LAMBDA_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Runner:
    """Module runner bound to the emulator of one stack."""

    settings: Settings
    tmp_path: Path

    def client(self, service: str) -> Any:
        return aws_client(self.settings, service)

    def context(self, check_mode: bool = False) -> ModuleContext:
        target = Target("local", self.settings.aws_region, self.settings.aws_endpoint_url,
                        self.settings.aws_access_key_id, self.settings.aws_secret_access_key)
        return ModuleContext(target=target, check_mode=check_mode, project_dir=self.tmp_path,
                             build_dir=self.tmp_path / "build", client=self.client)

    def run(self, module: type[Module], arguments: dict[str, Any], check_mode: bool = False) -> ModuleResult:
        return module().run(arguments, self.context(check_mode))


@pytest.fixture
def runner(stack: Settings, tmp_path: Path) -> Runner:
    return Runner(stack, tmp_path)


def assert_cycle(runner: Runner, module: type[Module], arguments: dict[str, Any],
                 change: dict[str, Any], changed_property: str) -> ModuleResult:
    """Check mode creates nothing, then create, repeat, change one property and repeat again."""
    checked = runner.run(module, arguments, check_mode=True)
    assert checked.status is Status.CHANGED, checked.message
    again_checked = runner.run(module, arguments, check_mode=True)
    assert again_checked.status is Status.CHANGED, "check mode created the resource"

    created = runner.run(module, arguments)
    assert created.status is Status.CHANGED, created.message
    repeated = runner.run(module, arguments)
    assert repeated.status is Status.OK, repeated.diff

    changed = runner.run(module, {**arguments, **change})
    assert changed.status is Status.CHANGED, changed.message
    assert changed_property in changed.diff["after"]
    settled = runner.run(module, {**arguments, **change})
    assert settled.status is Status.OK, settled.diff
    return created


def assert_removed(runner: Runner, module: type[Module], arguments: dict[str, Any]) -> None:
    removed = runner.run(module, {**arguments, "state": "absent"})
    assert removed.status is Status.CHANGED, removed.message
    again = runner.run(module, {**arguments, "state": "absent"})
    assert again.status is Status.OK, again.message


@pytest.fixture
def cleanup(runner: Runner) -> Iterator[list[tuple[type[Module], dict[str, Any]]]]:
    """Resources to remove after the test, whatever its outcome, as (module, absent arguments)."""
    resources: list[tuple[type[Module], dict[str, Any]]] = []
    yield resources
    for module, arguments in reversed(resources):
        runner.run(module, {**arguments, "state": "absent"})


def test_s3_bucket_cycle(runner: Runner, cleanup: list[Any]) -> None:
    name = unique("emulator-uploads")
    cleanup.append((S3Bucket, {"name": name, "force": True}))
    arguments = {"name": name, "versioning": True, "encryption": "AES256", "tags": {"team": "tutor"},
                 "cors": [{"AllowedMethods": ["GET", "PUT"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"],
                           "MaxAgeSeconds": 3000}]}
    created = assert_cycle(runner, S3Bucket, arguments, {"versioning": False}, "versioning")
    assert created.facts == {"name": name, "arn": f"arn:aws:s3:::{name}"}

    updated = runner.run(S3Bucket, {**arguments, "cors": [], "tags": {}})
    assert set(updated.diff["after"]) == {"versioning", "cors", "tags"}
    assert runner.run(S3Bucket, {**arguments, "cors": [], "tags": {}}).status is Status.OK

    runner.client("s3").put_object(Bucket=name, Key="a.txt", Body=b"one")
    assert_removed(runner, S3Bucket, {"name": name, "force": True})


def test_s3_bucket_kms_encryption(runner: Runner, cleanup: list[Any]) -> None:
    alias = f"alias/{unique('emulator-s3')}"
    bucket = unique("emulator-assets")
    cleanup.extend([(KmsKey, {"alias": alias}), (S3Bucket, {"name": bucket})])
    key = runner.run(KmsKey, {"alias": alias}).facts
    arguments = {"name": bucket, "encryption": "aws:kms", "kms_key": alias}
    assert runner.run(S3Bucket, arguments).status is Status.CHANGED
    assert runner.run(S3Bucket, arguments).status is Status.OK
    assert runner.run(S3Bucket, {**arguments, "kms_key": key["arn"]}).status is Status.OK
    back = runner.run(S3Bucket, {"name": bucket, "encryption": "AES256"})
    assert back.status is Status.CHANGED
    assert back.diff["after"] == {"encryption": {"algorithm": "AES256", "kms_key": None}}


def test_kms_key_cycle(runner: Runner, cleanup: list[Any]) -> None:
    alias = f"alias/{unique('emulator-secrets')}"
    cleanup.append((KmsKey, {"alias": alias}))
    arguments = {"alias": alias, "description": "Encrypts secrets", "rotation": True,
                 "rotation_period_days": 365, "tags": {"team": "tutor"}}
    created = assert_cycle(runner, KmsKey, arguments, {"rotation_period_days": 180}, "rotation")
    assert set(created.facts) == {"key_id", "arn", "alias"}
    kms = runner.client("kms")
    status = kms.get_key_rotation_status(KeyId=created.facts["key_id"])
    assert status["RotationPeriodInDays"] == 180

    update = {**arguments, "description": "Encrypts the secrets", "rotation": False, "tags": {"owner": "ops"}}
    result = runner.run(KmsKey, update)
    assert set(result.diff["after"]) == {"description", "rotation", "tags"}
    assert runner.run(KmsKey, update).status is Status.OK

    assert_removed(runner, KmsKey, arguments)
    metadata = kms.describe_key(KeyId=created.facts["key_id"])["KeyMetadata"]
    assert metadata["KeyState"] == "PendingDeletion"


def test_secret_cycle(runner: Runner, cleanup: list[Any]) -> None:
    alias = f"alias/{unique('emulator-secrets')}"
    name = f"emulator/{unique('database')}"
    cleanup.extend([(KmsKey, {"alias": alias}), (Secret, {"name": name, "recovery_window_days": 0})])
    runner.run(KmsKey, {"alias": alias})
    arguments = {"name": name, "description": "Database credentials", "kms_key": alias,
                 "tags": {"team": "tutor"}, "value": {"username": "tutor", "password": PASSWORD}}
    created = assert_cycle(runner, Secret, arguments,
                           {"value": {"username": "tutor_admin", "password": PASSWORD}}, "value")
    assert set(created.facts) == {"name", "arn", "version_id", "kms_key_id"}
    assert PASSWORD not in repr(created)

    changed = runner.run(Secret, {**arguments, "value": {"username": "tutor", "password": PASSWORD}})
    assert changed.diff["after"]["value"] == {"username": MASK, "password": MASK}
    assert PASSWORD not in repr(changed)
    stored = runner.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    assert json.loads(stored) == {"username": "tutor", "password": PASSWORD}

    assert_removed(runner, Secret, {"name": name, "recovery_window_days": 0})


def test_secret_generated_password_kept(runner: Runner, cleanup: list[Any]) -> None:
    name = f"emulator/{unique('jwt')}"
    cleanup.append((Secret, {"name": name, "recovery_window_days": 0}))
    arguments = {"name": name, "value": {"algorithm": "HS256", "expiration_hours": 24},
                 "generate_password": {"key": "secret_key", "length": 64, "exclude_characters": "\"'\\/@"}}
    created = runner.run(Secret, arguments)
    assert created.status is Status.CHANGED
    sm = runner.client("secretsmanager")
    password = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])["secret_key"]
    assert len(password) == 64
    assert password not in repr(created)

    assert runner.run(Secret, arguments).status is Status.OK
    changed = runner.run(Secret, {**arguments, "value": {"algorithm": "HS512", "expiration_hours": 24}})
    assert changed.status is Status.CHANGED
    stored = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
    assert stored == {"algorithm": "HS512", "expiration_hours": 24, "secret_key": password}


def test_secret_restored_after_scheduled_deletion(runner: Runner, cleanup: list[Any]) -> None:
    name = f"emulator/{unique('restore')}"
    cleanup.append((Secret, {"name": name, "recovery_window_days": 0}))
    arguments = {"name": name, "value": {"username": "tutor"}}
    runner.run(Secret, arguments)
    removed = runner.run(Secret, {**arguments, "state": "absent", "recovery_window_days": 7})
    assert removed.status is Status.CHANGED
    restored = runner.run(Secret, arguments)
    assert restored.status is Status.CHANGED, restored.message
    assert runner.run(Secret, arguments).status is Status.OK


def test_iam_role_cycle(runner: Runner, cleanup: list[Any]) -> None:
    name = unique("emulator-lambda-execution")
    cleanup.append((IamRole, {"name": name}))
    arguments = {"name": name, "description": "Runs functions", "trust_policy": TRUST,
                 "inline_policies": {"read": READ_POLICY}, "managed_policy_arns": [LAMBDA_BASIC],
                 "tags": {"team": "tutor"}}
    created = assert_cycle(runner, IamRole, arguments, {"managed_policy_arns": []}, "managed_policy_arns")
    assert created.facts["arn"].endswith(f":role/{name}")

    single = {"Version": "2012-10-17",
              "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["*"]}}
    same = runner.run(IamRole, {**arguments, "managed_policy_arns": [], "inline_policies": {"read": single}})
    assert same.status is Status.OK, same.diff

    update = {**arguments, "managed_policy_arns": [], "inline_policies": {}, "description": "Runs it",
              "tags": {"owner": "ops"}}
    result = runner.run(IamRole, update)
    assert set(result.diff["after"]) == {"inline_policies", "description", "tags"}
    assert runner.run(IamRole, update).status is Status.OK

    runner.run(IamRole, arguments)
    assert_removed(runner, IamRole, arguments)


def test_log_group_cycle(runner: Runner, cleanup: list[Any]) -> None:
    name = f"/aws/lambda/{unique('emulator-health')}"
    cleanup.append((LogGroup, {"name": name}))
    arguments = {"name": name, "retention_days": 7, "tags": {"team": "tutor"}}
    created = assert_cycle(runner, LogGroup, arguments, {"retention_days": 14}, "retention_days")
    assert created.facts["arn"].endswith(f":log-group:{name}")

    update = {**arguments, "retention_days": 0, "tags": {"owner": "ops"}}
    result = runner.run(LogGroup, update)
    assert set(result.diff["after"]) == {"retention_days", "tags"}
    assert runner.run(LogGroup, update).status is Status.OK
    assert_removed(runner, LogGroup, arguments)


@pytest.mark.parametrize("identity", ["noreply-{}@example.com", "mail-{}.example.com"])
def test_ses_identity_cycle(runner: Runner, cleanup: list[Any], identity: str) -> None:
    identity = identity.format(uuid.uuid4().hex[:8])
    cleanup.append((SesIdentity, {"identity": identity}))
    checked = runner.run(SesIdentity, {"identity": identity}, check_mode=True)
    assert checked.status is Status.CHANGED
    created = runner.run(SesIdentity, {"identity": identity})
    assert created.status is Status.CHANGED
    assert created.facts["verification_status"] in ("Pending", "Success")
    assert runner.run(SesIdentity, {"identity": identity}).status is Status.OK
    assert_removed(runner, SesIdentity, {"identity": identity})


def rds_arguments(identifier: str) -> dict[str, Any]:
    return {"identifier": identifier, "engine": "postgres", "instance_class": "db.t3.micro", "port": 5432,
            "db_name": "tutor", "master_username": "tutor", "master_password": PASSWORD,
            "allocated_storage": 20}


def test_rds_instance_cycle(runner: Runner, cleanup: list[Any]) -> None:
    identifier = unique("emulator-db")
    cleanup.append((RdsInstance, {"identifier": identifier}))
    arguments = rds_arguments(identifier)
    created = assert_cycle(runner, RdsInstance, arguments, {"instance_class": "db.t3.small"},
                           "instance_class")
    assert {"identifier", "arn", "endpoint_address", "endpoint_port"} <= set(created.facts)
    assert created.facts["endpoint_port"] == 5432
    assert PASSWORD not in repr(created)

    grown = runner.run(RdsInstance, {**arguments, "instance_class": "db.t3.small", "allocated_storage": 30})
    assert grown.diff["after"] == {"allocated_storage": 30}
    assert_removed(runner, RdsInstance, arguments)


def test_rds_instance_port_change(runner: Runner, cleanup: list[Any]) -> None:
    identifier = unique("emulator-db")
    cleanup.append((RdsInstance, {"identifier": identifier}))
    arguments = rds_arguments(identifier)
    runner.run(RdsInstance, arguments)
    changed = runner.run(RdsInstance, {**arguments, "port": 5439})
    assert changed.facts["endpoint_port"] == 5439
    assert runner.run(RdsInstance, {**arguments, "port": 5439}).status is Status.OK


@pytest.mark.xfail(reason="MiniStack 1.5.33 returns no MasterUserSecret for a managed master password",
                   strict=True)
def test_rds_instance_managed_password(runner: Runner, cleanup: list[Any]) -> None:
    identifier = unique("emulator-db")
    cleanup.append((RdsInstance, {"identifier": identifier}))
    arguments = {**rds_arguments(identifier), "master_password": None, "manage_master_user_password": True}
    assert runner.run(RdsInstance, arguments).status is Status.CHANGED
    again = runner.run(RdsInstance, arguments)
    assert again.status is Status.OK, again.diff
