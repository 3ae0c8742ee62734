"""The `aws` target's guards: test credentials, the account allow-list and confirmation, on moto's mock."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import botocore.exceptions
import pytest
from moto import mock_aws

from localaws.playbook import CollectingReporter, RunOptions, RunResult
from localaws.provisioning import TargetError, apply_playbook, build_target, client_factory
from localaws.settings import Settings, resolve_settings

PROJECT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
# The account id moto returns from `sts get-caller-identity`.
MOTO_ACCOUNT = "123456789012"
FAKE_KEY_ID = "AKIAEXAMPLE000000000"
PREFIX = "tutor-system-local"


def copy_project(folder: Path) -> Path:
    """Copy the playbooks and function sources with every requirements file emptied.

    For the aws target pip downloads each function's requirements from a package index,
    which a unit test must not reach, and a function without requirements builds without pip.
    """
    for name in ("playbooks", "src"):
        shutil.copytree(PROJECT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    for requirements in (folder / "src").rglob("requirements.txt"):
        requirements.write_text("")
    return folder


def make_settings(tmp_path: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "project_dir": copy_project(tmp_path / "project"), "state_dir": tmp_path / "state",
        "env_file": tmp_path / ".env",
        "environment": "local", "runtime": "host", "bind_host": "127.0.0.1", "aws_region": REGION,
        "aws_access_key_id": "test", "aws_secret_access_key": "test", "emulator_version": "1.5.33",
        "db_name": "tutor_system", "db_user": "tutor_user", "db_password": "secret",
        "postgres_server": "container",
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def bucket_names() -> list[str]:
    return [bucket["Name"] for bucket in client("s3").list_buckets()["Buckets"]]


def secret_names() -> list[str]:
    return [secret["Name"] for secret in client("secretsmanager").list_secrets()["SecretList"]]


def role_exists(name: str) -> bool:
    try:
        client("iam").get_role(RoleName=name)
    except botocore.exceptions.ClientError:
        return False
    return True


def apply(settings: Settings, answer: bool, options: RunOptions | None = None,
          questions: list[str] | None = None) -> RunResult:
    def confirm(question: str) -> bool:
        if questions is not None:
            questions.append(question)
        return answer

    return apply_playbook(settings, "aws", options or RunOptions(), confirm=confirm,
                          reporter=CollectingReporter())


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Fake credentials, no AWS config files and moto's mock, so no request can reach AWS."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_ALLOWED_ACCOUNT_IDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-access-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # The execution role attaches an AWS managed policy, which moto loads only on request.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    # A pip run may use local wheels (find-links) but never a package index.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with mock_aws():
        yield


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the API operations every botocore client calls from now on."""
    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return calls


@pytest.mark.usefixtures("fake_aws")
def test_emulator_credentials_rejected_before_requests(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_calls: list[str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    settings = make_settings(tmp_path, aws_allowed_account_ids=(MOTO_ACCOUNT,))

    with pytest.raises(TargetError, match="emulator's test access key"):
        apply(settings, answer=True)

    assert api_calls == []


@pytest.mark.usefixtures("fake_aws")
def test_account_off_allow_list_rejected(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, aws_allowed_account_ids=("111111111111",))

    with pytest.raises(TargetError) as raised:
        apply(settings, answer=True)

    assert f"AWS account {MOTO_ACCOUNT} is not on the allow-list" in str(raised.value)
    assert bucket_names() == []


@pytest.mark.usefixtures("fake_aws")
def test_allow_list_read_from_environment(tmp_path: Path) -> None:
    environ = {
        "AWS_ALLOWED_ACCOUNT_IDS": "111111111111,222222222222",
        "TOOLKIT_ENV_FILE": str(tmp_path / ".env"),
        "TOOLKIT_STATE_DIR": str(tmp_path / "state"),
        "POSTGRES_SERVER": "container",
    }
    settings = resolve_settings(PROJECT, {"environment": "local"}, {}, environ, write_env_file=False)

    with pytest.raises(TargetError) as raised:
        apply(settings, answer=True)

    assert f"AWS account {MOTO_ACCOUNT} is not on the allow-list" in str(raised.value)
    assert "AWS_ALLOWED_ACCOUNT_IDS: 111111111111, 222222222222" in str(raised.value)


@pytest.mark.usefixtures("fake_aws")
def test_empty_allow_list_rejects_account(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)

    with pytest.raises(TargetError, match=MOTO_ACCOUNT):
        apply(settings, answer=True)

    assert bucket_names() == []


@pytest.mark.usefixtures("fake_aws")
def test_declined_confirmation_creates_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, aws_allowed_account_ids=(MOTO_ACCOUNT,))
    questions: list[str] = []

    with pytest.raises(TargetError, match="not confirmed"):
        apply(settings, answer=False, questions=questions)

    assert len(questions) == 1
    assert f"AWS account {MOTO_ACCOUNT}" in questions[0]
    assert "Create the uploads bucket" in questions[0]
    assert bucket_names() == []
    assert secret_names() == []
    aliases = [alias["AliasName"] for alias in client("kms").list_aliases()["Aliases"]]
    assert "alias/tutor-system-secrets" not in aliases
    assert not role_exists(f"{PREFIX}-lambda-execution")
    assert client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"] == []


@pytest.mark.usefixtures("fake_aws")
def test_confirmed_apply_creates_resources(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, aws_allowed_account_ids=(MOTO_ACCOUNT,))

    result = apply(settings, answer=True)

    assert result.failed_task is None
    assert sorted(bucket_names()) == [f"{PREFIX}-assets", f"{PREFIX}-uploads"]
    aliases = [alias["AliasName"] for alias in client("kms").list_aliases()["Aliases"]]
    assert "alias/tutor-system-secrets" in aliases
    assert sorted(secret_names()) == [
        "tutor-system/local/database", "tutor-system/local/database-admin", "tutor-system/local/jwt"]
    assert role_exists(f"{PREFIX}-lambda-execution")
    log_groups = client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    assert f"/aws/lambda/{PREFIX}-health" in [group["logGroupName"] for group in log_groups]
    pools = client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"]
    assert [pool["Name"] for pool in pools] == [f"{PREFIX}-users"]


@pytest.mark.usefixtures("fake_aws")
def test_confirmed_apply_deploys_functions(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, aws_allowed_account_ids=(MOTO_ACCOUNT,))

    result = apply(settings, answer=True)

    assert result.failed_task is None
    functions = [function["FunctionName"] for function in client("lambda").list_functions()["Functions"]]
    assert f"{PREFIX}-health" in functions
    apis = [api["name"] for api in client("apigateway").get_rest_apis()["items"]]
    assert apis == [f"{PREFIX}-api"]


@pytest.mark.usefixtures("fake_aws")
def test_endpoint_variable_ignored_by_aws_clients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    settings = make_settings(tmp_path)

    make_client = client_factory(build_target(settings, "aws"))

    assert make_client("s3").meta.endpoint_url == "https://s3.amazonaws.com"
    assert make_client("sts").meta.endpoint_url == "https://sts.us-east-1.amazonaws.com"


@pytest.mark.usefixtures("fake_aws")
def test_endpoint_variable_kept_by_local_clients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    settings = make_settings(tmp_path, emulator_port=4599)

    make_client = client_factory(build_target(settings, "local"))

    assert make_client("s3").meta.endpoint_url == settings.aws_endpoint_url
