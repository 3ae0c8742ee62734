"""The AWS modules create, keep, update and remove resources idempotently, on moto's in-process mock."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from localaws.playbook.modules.base import MASK, Module, ModuleContext, Target
from localaws.playbook.modules.iam import IamRole
from localaws.playbook.modules.kms import KmsKey
from localaws.playbook.modules.logs import LogGroup
from localaws.playbook.modules.rds import RdsInstance
from localaws.playbook.modules.s3 import S3Bucket
from localaws.playbook.modules.secrets import Secret
from localaws.playbook.modules.ses import SesIdentity
from localaws.playbook.results import ModuleResult, Status
from tests.unit.awshelpers import use_fake_aws

REGION = "us-east-1"
# A test value that must never appear in results.
PASSWORD = "db-password-6f1c9e"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}
READ_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}],
}
# moto's account id; the `aws` fixture creates this customer managed policy.
LOGS_POLICY = "arn:aws:iam::123456789012:policy/unit-logs"


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def make_context(tmp_path: Path, check_mode: bool = False,
                 make_client: Callable[[str], Any] = client) -> ModuleContext:
    return ModuleContext(target=Target("aws", REGION, None), check_mode=check_mode,
                         project_dir=tmp_path, build_dir=tmp_path / "build", client=make_client)


class CallRecorder:
    """A client factory that records the name of every API operation its clients call."""

    READ_PREFIXES = ("Describe", "Get", "List", "Head")

    def __init__(self) -> None:
        self.operations: list[str] = []

    def __call__(self, service: str) -> Any:
        recorded = client(service)
        recorded.meta.events.register("before-call", self._record)
        return recorded

    def _record(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)

    def writes(self) -> list[str]:
        return [name for name in self.operations if not name.startswith(self.READ_PREFIXES)]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Fake credentials and moto's mock, so no request can reach AWS."""
    use_fake_aws(monkeypatch, tmp_path, REGION)
    with mock_aws():
        # Loading moto's copy of the AWS managed policies made each test about 2 s slower when measured,
        # so the IAM case attaches this customer managed policy instead.
        client("iam").create_policy(PolicyName="unit-logs", PolicyDocument=json.dumps(READ_POLICY))
        yield


def bucket_exists(name: str) -> bool:
    try:
        client("s3").head_bucket(Bucket=name)
    except botocore.exceptions.ClientError:
        return False
    return True


def kms_alias_exists(alias: str) -> bool:
    aliases = client("kms").list_aliases()["Aliases"]
    return any(item["AliasName"] == alias for item in aliases)


def secret_exists(name: str) -> bool:
    try:
        description = client("secretsmanager").describe_secret(SecretId=name)
    except botocore.exceptions.ClientError:
        return False
    return "DeletedDate" not in description


def role_exists(name: str) -> bool:
    try:
        client("iam").get_role(RoleName=name)
    except botocore.exceptions.ClientError:
        return False
    return True


def log_group_exists(name: str) -> bool:
    groups = client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return any(group["logGroupName"] == name for group in groups)


def identity_exists(identity: str) -> bool:
    return identity in client("ses").list_identities()["Identities"]


def instance_exists(identifier: str) -> bool:
    try:
        client("rds").describe_db_instances(DBInstanceIdentifier=identifier)
    except botocore.exceptions.ClientError:
        return False
    return True


@dataclass(frozen=True)
class Case:
    """One module's cycle: arguments to create, a change of one property, and how to see the resource."""

    module: type[Module]
    arguments: dict[str, Any]
    change: dict[str, Any]
    changed_property: str
    exists: Callable[[str], bool]
    key: str = "name"
    fact_names: tuple[str, ...] = ("name", "arn")
    absent_extra: dict[str, Any] = field(default_factory=dict)

    @property
    def resource_name(self) -> str:
        return str(self.arguments[self.key])


CASES = {
    "s3_bucket": Case(
        S3Bucket,
        {"name": "unit-uploads", "versioning": True, "encryption": "AES256", "tags": {"team": "tutor"},
         "cors": [{"AllowedMethods": ["GET", "PUT"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"],
                   "MaxAgeSeconds": 3000}]},
        {"versioning": False}, "versioning", bucket_exists,
    ),
    "kms_key": Case(
        KmsKey,
        {"alias": "alias/unit-secrets", "description": "Encrypts secrets", "rotation": True,
         "rotation_period_days": 365, "tags": {"team": "tutor"}},
        {"description": "Encrypts the secrets"}, "description", kms_alias_exists,
        key="alias", fact_names=("key_id", "arn", "alias"),
    ),
    "secret": Case(
        Secret,
        {"name": "unit/dev/database", "description": "Database credentials", "tags": {"team": "tutor"},
         "value": {"username": "tutor", "password": PASSWORD, "port": 5432}},
        {"value": {"username": "tutor_admin", "password": PASSWORD, "port": 5432}}, "value", secret_exists,
        fact_names=("name", "arn", "version_id", "kms_key_id"), absent_extra={"recovery_window_days": 0},
    ),
    "iam_role": Case(
        IamRole,
        {"name": "unit-lambda-execution", "description": "Runs functions", "trust_policy": TRUST,
         "inline_policies": {"read": READ_POLICY}, "managed_policy_arns": [LOGS_POLICY],
         "tags": {"team": "tutor"}},
        {"managed_policy_arns": []}, "managed_policy_arns", role_exists,
    ),
    "log_group": Case(
        LogGroup,
        {"name": "/aws/lambda/unit-health", "retention_days": 7, "tags": {"team": "tutor"}},
        {"retention_days": 14}, "retention_days", log_group_exists,
    ),
    "ses_identity": Case(
        SesIdentity, {"identity": "noreply@example.com"}, {}, "", identity_exists,
        key="identity", fact_names=("identity", "verification_status"),
    ),
    "rds_instance": Case(
        RdsInstance,
        {"identifier": "unit-db", "engine": "postgres", "instance_class": "db.t3.micro", "port": 5432,
         "db_name": "tutor", "master_username": "tutor", "master_password": PASSWORD,
         "allocated_storage": 20},
        {"instance_class": "db.t3.small"}, "instance_class", instance_exists,
        key="identifier", fact_names=("identifier", "arn", "endpoint_address", "endpoint_port"),
    ),
}


def run(case: Case, tmp_path: Path, check_mode: bool = False, **changes: Any) -> ModuleResult:
    return case.module().run({**case.arguments, **changes}, make_context(tmp_path, check_mode))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.usefixtures("aws")
def test_module_create_then_ok(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    first = run(case, tmp_path)
    assert first.status is Status.CHANGED, first.message
    assert case.exists(case.resource_name)
    assert set(case.fact_names) <= set(first.facts)
    assert first.facts[case.fact_names[0]]

    second = run(case, tmp_path)
    assert second.status is Status.OK, second.message
    assert second.diff == {}
    assert set(case.fact_names) <= set(second.facts)


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.changed_property])
@pytest.mark.usefixtures("aws")
def test_module_change_names_property(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    run(case, tmp_path)

    result = run(case, tmp_path, **case.change)
    assert result.status is Status.CHANGED, result.message
    assert case.changed_property in result.diff["after"]
    assert case.changed_property in result.diff["before"]
    assert case.changed_property in result.message

    again = run(case, tmp_path, **case.change)
    assert again.status is Status.OK, again.message


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.changed_property])
@pytest.mark.usefixtures("aws")
def test_module_check_mode_change_keeps_resource(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    run(case, tmp_path)

    result = run(case, tmp_path, check_mode=True, **case.change)
    assert result.status is Status.CHANGED
    assert result.message.startswith("would ")
    assert run(case, tmp_path).status is Status.OK


@pytest.mark.parametrize("name", CASES)
@pytest.mark.usefixtures("aws")
def test_module_check_mode_creates_nothing(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    result = run(case, tmp_path, check_mode=True)
    assert result.status is Status.CHANGED
    assert result.message.startswith("would create")
    assert not case.exists(case.resource_name)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.usefixtures("aws")
def test_module_absent_removes(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    run(case, tmp_path)

    checked = run(case, tmp_path, check_mode=True, state="absent", **case.absent_extra)
    assert checked.status is Status.CHANGED
    assert case.exists(case.resource_name)

    removed = run(case, tmp_path, state="absent", **case.absent_extra)
    assert removed.status is Status.CHANGED, removed.message
    assert not case.exists(case.resource_name)

    again = run(case, tmp_path, state="absent", **case.absent_extra)
    assert again.status is Status.OK


@pytest.mark.parametrize("name", CASES)
@pytest.mark.usefixtures("aws")
def test_module_reads_only_when_nothing_to_do(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    module = case.module()
    recorder = CallRecorder()
    module.run(case.arguments, make_context(tmp_path, check_mode=True, make_client=recorder))
    run(case, tmp_path)
    module.run({**case.arguments, **case.change}, make_context(tmp_path, True, recorder))
    module.run({**case.arguments, "state": "absent"}, make_context(tmp_path, True, recorder))
    module.run(case.arguments, make_context(tmp_path, make_client=recorder))
    assert recorder.operations
    assert recorder.writes() == []


@pytest.mark.parametrize("name", ["secret", "rds_instance"])
@pytest.mark.usefixtures("aws")
def test_module_hides_password(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    results = [run(case, tmp_path, check_mode=True), run(case, tmp_path), run(case, tmp_path),
               run(case, tmp_path, **case.change), run(case, tmp_path, state="absent", **case.absent_extra)]
    for result in results:
        assert PASSWORD not in repr(result)


# s3_bucket


@pytest.mark.usefixtures("aws")
def test_bucket_cors_tags_and_encryption_update(tmp_path: Path) -> None:
    case = CASES["s3_bucket"]
    run(case, tmp_path)

    result = run(case, tmp_path, cors=[], tags={"team": "tutor", "tier": "uploads"})
    assert result.status is Status.CHANGED
    assert result.diff["after"] == {"cors": [], "tags": {"team": "tutor", "tier": "uploads"}}
    s3 = client("s3")
    with pytest.raises(botocore.exceptions.ClientError):
        s3.get_bucket_cors(Bucket="unit-uploads")
    assert s3.get_bucket_tagging(Bucket="unit-uploads")["TagSet"] == [
        {"Key": "team", "Value": "tutor"}, {"Key": "tier", "Value": "uploads"}]

    key_id = client("kms").create_key()["KeyMetadata"]["KeyId"]
    client("kms").create_alias(AliasName="alias/unit-s3", TargetKeyId=key_id)
    kms = run(case, tmp_path, cors=[], tags={"team": "tutor", "tier": "uploads"},
              encryption="aws:kms", kms_key="alias/unit-s3")
    assert kms.status is Status.CHANGED
    assert list(kms.diff["after"]) == ["encryption"]
    rule = s3.get_bucket_encryption(Bucket="unit-uploads")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"

    by_id = run(case, tmp_path, cors=[], tags={"team": "tutor", "tier": "uploads"},
                encryption="aws:kms", kms_key=key_id)
    assert by_id.status is Status.OK, by_id.diff


@pytest.mark.usefixtures("aws")
def test_bucket_force_absent_empties_versions(tmp_path: Path) -> None:
    case = CASES["s3_bucket"]
    run(case, tmp_path)
    s3 = client("s3")
    s3.put_object(Bucket="unit-uploads", Key="a.txt", Body=b"one")
    s3.put_object(Bucket="unit-uploads", Key="a.txt", Body=b"two")
    s3.delete_object(Bucket="unit-uploads", Key="a.txt")

    with pytest.raises(botocore.exceptions.ClientError, match="BucketNotEmpty"):
        run(case, tmp_path, state="absent")
    result = run(case, tmp_path, state="absent", force=True)
    assert result.status is Status.CHANGED
    assert not bucket_exists("unit-uploads")


# kms_key


@pytest.mark.usefixtures("aws")
def test_key_rotation_and_tags_update(tmp_path: Path) -> None:
    case = CASES["kms_key"]
    created = run(case, tmp_path)
    key_id = created.facts["key_id"]
    kms = client("kms")
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True

    off = run(case, tmp_path, rotation=False, tags={"owner": "ops"})
    assert off.status is Status.CHANGED
    assert set(off.diff["after"]) == {"rotation", "tags"}
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "owner", "TagValue": "ops"}]


@pytest.mark.usefixtures("aws")
def test_key_absent_schedules_deletion(tmp_path: Path) -> None:
    case = CASES["kms_key"]
    key_id = run(case, tmp_path).facts["key_id"]
    run(case, tmp_path, state="absent")
    assert client("kms").describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"


@pytest.mark.usefixtures("aws")
def test_key_deletion_cancelled_when_present(tmp_path: Path) -> None:
    case = CASES["kms_key"]
    key_id = run(case, tmp_path).facts["key_id"]
    kms = client("kms")
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)

    result = run(case, tmp_path)
    assert result.status is Status.CHANGED
    assert result.diff["before"]["key_state"] == "PendingDeletion"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert run(case, tmp_path).status is Status.OK


@pytest.mark.usefixtures("aws")
def test_key_reserved_alias_fails(tmp_path: Path) -> None:
    result = run(CASES["kms_key"], tmp_path, alias="alias/aws/secretsmanager")
    assert result.status is Status.FAILED
    assert "reserved" in result.message


# secret


@pytest.mark.usefixtures("aws")
def test_secret_generated_password_kept(tmp_path: Path) -> None:
    arguments = {"name": "unit/dev/jwt", "value": {"algorithm": "HS256", "expiration_hours": 24},
                 "generate_password": {"key": "secret_key", "length": 64, "exclude_characters": "\"'\\/@"}}
    created = Secret().run(arguments, make_context(tmp_path))
    assert created.status is Status.CHANGED
    sm = client("secretsmanager")
    stored = json.loads(sm.get_secret_value(SecretId="unit/dev/jwt")["SecretString"])
    password = stored["secret_key"]
    assert len(password) == 64
    assert not set(password) & set("\"'\\/@")
    assert password not in repr(created)
    assert created.diff["after"]["value"] == {"algorithm": MASK, "expiration_hours": MASK, "secret_key": MASK}

    again = Secret().run(arguments, make_context(tmp_path))
    assert again.status is Status.OK, again.message
    assert password not in repr(again)

    changed = Secret().run({**arguments, "value": {"algorithm": "HS512", "expiration_hours": 24}},
                           make_context(tmp_path))
    assert changed.status is Status.CHANGED
    assert "algorithm" in changed.message
    assert password not in repr(changed)
    stored = json.loads(sm.get_secret_value(SecretId="unit/dev/jwt")["SecretString"])
    assert stored == {"algorithm": "HS512", "expiration_hours": 24, "secret_key": password}
    assert changed.facts["version_id"] != created.facts["version_id"]


@pytest.mark.usefixtures("aws")
def test_secret_kms_key_by_alias(tmp_path: Path) -> None:
    key = KmsKey().run({"alias": "alias/unit-secrets"}, make_context(tmp_path)).facts
    case = CASES["secret"]
    created = run(case, tmp_path, kms_key="alias/unit-secrets")
    assert created.status is Status.CHANGED
    assert run(case, tmp_path, kms_key="alias/unit-secrets").status is Status.OK
    assert run(case, tmp_path, kms_key=key["arn"]).status is Status.OK

    other = client("kms").create_key()["KeyMetadata"]["Arn"]
    moved = run(case, tmp_path, kms_key=other)
    assert moved.status is Status.CHANGED
    assert list(moved.diff["after"]) == ["kms_key"]


@pytest.mark.usefixtures("aws")
def test_secret_restored_after_scheduled_deletion(tmp_path: Path) -> None:
    case = CASES["secret"]
    run(case, tmp_path)
    run(case, tmp_path, state="absent", recovery_window_days=7)
    assert not secret_exists(case.resource_name)
    assert run(case, tmp_path, state="absent").status is Status.OK

    restored = run(case, tmp_path)
    assert restored.status is Status.CHANGED
    assert "scheduled_for_deletion" in restored.diff["after"]
    assert secret_exists(case.resource_name)


@pytest.mark.usefixtures("aws")
def test_secret_password_key_clash_fails(tmp_path: Path) -> None:
    result = run(CASES["secret"], tmp_path, generate_password={"key": "password"})
    assert result.status is Status.FAILED
    assert PASSWORD not in repr(result)


# iam_role


@pytest.mark.usefixtures("aws")
def test_role_policy_written_differently_is_ok(tmp_path: Path) -> None:
    case = CASES["iam_role"]
    run(case, tmp_path)
    single = {"Version": "2012-10-17",
              "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["*"]}}
    trust = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]},
                            "Action": ["sts:AssumeRole"]}]}
    result = run(case, tmp_path, inline_policies={"read": single}, trust_policy=trust)
    assert result.status is Status.OK, result.diff


@pytest.mark.usefixtures("aws")
def test_role_inline_policies_replaced(tmp_path: Path) -> None:
    case = CASES["iam_role"]
    run(case, tmp_path)
    write = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "*"}]}
    result = run(case, tmp_path, inline_policies={"write": write})
    assert result.status is Status.CHANGED
    assert list(result.diff["after"]) == ["inline_policies"]
    names = client("iam").list_role_policies(RoleName=case.resource_name)["PolicyNames"]
    assert names == ["write"]


@pytest.mark.usefixtures("aws")
def test_role_trust_policy_update(tmp_path: Path) -> None:
    case = CASES["iam_role"]
    run(case, tmp_path)
    trust = json.loads(json.dumps(TRUST).replace("lambda.amazonaws.com", "apigateway.amazonaws.com"))
    result = run(case, tmp_path, trust_policy=trust)
    assert result.status is Status.CHANGED
    assert list(result.diff["after"]) == ["trust_policy"]
    assert run(case, tmp_path, trust_policy=trust).status is Status.OK


# log_group


def test_log_group_retention_choices() -> None:
    choices = LogGroup.arguments["retention_days"].choices
    assert 7 in choices
    assert 3653 in choices
    assert 8 not in choices


@pytest.mark.usefixtures("aws")
def test_log_group_tags_update(tmp_path: Path) -> None:
    case = CASES["log_group"]
    run(case, tmp_path)
    result = run(case, tmp_path, tags={"owner": "ops"})
    assert result.status is Status.CHANGED
    assert result.diff == {"before": {"tags": {"team": "tutor"}}, "after": {"tags": {"owner": "ops"}}}
    assert run(case, tmp_path, tags={"owner": "ops"}).status is Status.OK


@pytest.mark.usefixtures("aws")
def test_log_group_arn_fact(tmp_path: Path) -> None:
    facts = run(CASES["log_group"], tmp_path).facts
    assert facts["arn"] == f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/unit-health"


# ses_identity


@pytest.mark.usefixtures("aws")
def test_ses_domain_identity(tmp_path: Path) -> None:
    result = SesIdentity().run({"identity": "mail.example.com"}, make_context(tmp_path))
    assert result.status is Status.CHANGED
    assert identity_exists("mail.example.com")
    assert result.facts["verification_status"] in ("Pending", "Success")


# rds_instance


@pytest.mark.usefixtures("aws")
def test_rds_storage_update(tmp_path: Path) -> None:
    case = CASES["rds_instance"]
    run(case, tmp_path)
    result = run(case, tmp_path, allocated_storage=30)
    assert result.status is Status.CHANGED
    assert result.diff == {"before": {"allocated_storage": 20}, "after": {"allocated_storage": 30}}
    assert run(case, tmp_path, allocated_storage=30).status is Status.OK

    shrink = run(case, tmp_path, allocated_storage=10)
    assert shrink.status is Status.FAILED
    assert "allocated_storage" in shrink.message


@pytest.mark.usefixtures("aws")
def test_rds_port_update_fails_on_aws_when_ignored(tmp_path: Path) -> None:
    case = CASES["rds_instance"]
    run(case, tmp_path)
    # moto 5.2.5 ignores DBPortNumber in modify_db_instance, as an instance that never applies it would.
    result = run(case, tmp_path, port=5433)
    assert result.status is Status.FAILED
    assert "old port" in result.message
    assert instance_exists("unit-db")


@pytest.mark.usefixtures("aws")
def test_rds_port_update_recreates_emulator_record(tmp_path: Path) -> None:
    case = CASES["rds_instance"]
    run(case, tmp_path)
    emulator = Target("local", REGION, "http://127.0.0.1:4566", "test", "test")
    context = dataclasses.replace(make_context(tmp_path), target=emulator)
    result = RdsInstance().run({**case.arguments, "port": 5433}, context)
    assert result.status is Status.CHANGED, result.message
    assert result.facts["endpoint_port"] == 5433
    again = RdsInstance().run({**case.arguments, "port": 5433}, context)
    assert again.status is Status.OK, again.diff


@pytest.mark.usefixtures("aws")
def test_rds_fixed_property_fails(tmp_path: Path) -> None:
    case = CASES["rds_instance"]
    run(case, tmp_path)
    result = run(case, tmp_path, db_name="other")
    assert result.status is Status.FAILED
    assert "db_name" in result.message


@pytest.mark.usefixtures("aws")
def test_rds_create_needs_password(tmp_path: Path) -> None:
    result = run(CASES["rds_instance"], tmp_path, master_password=None)
    assert result.status is Status.FAILED
    assert "master_password" in result.message


@pytest.mark.usefixtures("aws")
def test_rds_managed_master_password(tmp_path: Path) -> None:
    case = CASES["rds_instance"]
    arguments = {**case.arguments, "master_password": None, "manage_master_user_password": True}
    created = RdsInstance().run(arguments, make_context(tmp_path))
    assert created.status is Status.CHANGED, created.message
    assert created.facts["master_user_secret_arn"].startswith("arn:aws:secretsmanager:")
    again = RdsInstance().run(arguments, make_context(tmp_path))
    assert again.status is Status.OK, again.diff

    unmanaged = RdsInstance().run({**arguments, "manage_master_user_password": False}, make_context(tmp_path))
    assert unmanaged.status is Status.FAILED
    assert "master_password" in unmanaged.message
