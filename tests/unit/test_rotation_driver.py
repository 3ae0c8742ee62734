"""The rotation driver's label handling, on moto's Secrets Manager, with the Lambda's steps simulated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localaws.rotation.driver import RotationError, StepError, choose_token, rotate
from localaws.rotation.policy import LAST_ROTATED_TAG

SECRET = "tutor-system/unit/database"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def sm() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name=SECRET, SecretString=json.dumps({"password": "first"}))
        yield client


def labels(sm: Any) -> dict[str, str]:
    stages = sm.describe_secret(SecretId=SECRET)["VersionIdsToStages"]
    return {label: version for version, names in stages.items() for label in names}


class FakeFunction:
    """Runs the steps the way the rotation Lambda does, failing at `fail_at` when set."""

    def __init__(self, sm: Any, fail_at: str | None = None) -> None:
        self.sm = sm
        self.fail_at = fail_at
        self.calls: list[tuple[str, str]] = []

    def __call__(self, secret: str, token: str, step: str) -> None:
        self.calls.append((step, token))
        if step == self.fail_at:
            raise StepError(f"RotationError: {step} failed on purpose")
        versions = self.sm.describe_secret(SecretId=secret)["VersionIdsToStages"]
        if step == "createSecret" and token not in versions:
            self.sm.put_secret_value(SecretId=secret, ClientRequestToken=token,
                                     SecretString=json.dumps({"password": token}),
                                     VersionStages=["AWSPENDING"])
        if step == "finishSecret":
            current = labels(self.sm)["AWSCURRENT"]
            self.sm.update_secret_version_stage(SecretId=secret, VersionStage="AWSCURRENT",
                                                MoveToVersionId=token, RemoveFromVersionId=current)


def test_rotation_moves_labels(sm: Any) -> None:
    old = labels(sm)["AWSCURRENT"]
    function = FakeFunction(sm)

    result = rotate(sm, SECRET, function, NOW)

    assert result.succeeded
    assert [step for step, _ in function.calls] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert {token for _, token in function.calls} == {result.token}
    assert labels(sm) == {"AWSCURRENT": result.token, "AWSPREVIOUS": old}
    current = sm.get_secret_value(SecretId=SECRET, VersionStage="AWSCURRENT")
    assert json.loads(current["SecretString"]) == {"password": result.token}


def test_rotation_records_time(sm: Any) -> None:
    rotate(sm, SECRET, FakeFunction(sm), NOW)

    tags = {tag["Key"]: tag["Value"] for tag in sm.describe_secret(SecretId=SECRET)["Tags"]}
    assert tags[LAST_ROTATED_TAG] == NOW.isoformat()


def test_failed_step_keeps_current(sm: Any) -> None:
    old = labels(sm)["AWSCURRENT"]

    result = rotate(sm, SECRET, FakeFunction(sm, fail_at="testSecret"), NOW)

    assert result.failed_step == "testSecret"
    assert result.error == "RotationError: testSecret failed on purpose"
    assert result.steps == ["createSecret", "setSecret"]
    assert labels(sm)["AWSCURRENT"] == old
    assert labels(sm)["AWSPENDING"] == result.token
    assert "failed at testSecret" in result.describe()


def test_unfinished_rotation_resumed(sm: Any) -> None:
    failed = rotate(sm, SECRET, FakeFunction(sm, fail_at="setSecret"), NOW)
    function = FakeFunction(sm)

    resumed = rotate(sm, SECRET, function, NOW)

    assert resumed.resumed
    assert resumed.token == failed.token
    assert {token for _, token in function.calls} == {failed.token}
    assert labels(sm)["AWSCURRENT"] == failed.token


def test_pending_on_current_removed(sm: Any) -> None:
    current = labels(sm)["AWSCURRENT"]
    sm.update_secret_version_stage(SecretId=SECRET, VersionStage="AWSPENDING", MoveToVersionId=current)

    result = rotate(sm, SECRET, FakeFunction(sm), NOW)

    assert not result.resumed
    assert result.token != current
    assert "AWSPENDING" not in labels(sm)


def test_pending_left_by_function_removed(sm: Any) -> None:
    result = rotate(sm, SECRET, FakeFunction(sm), NOW)

    assert "AWSPENDING" not in sm.describe_secret(SecretId=SECRET)["VersionIdsToStages"][result.token]


def test_finish_without_move_raises(sm: Any) -> None:
    def no_finish(secret: str, token: str, step: str) -> None:
        if step != "finishSecret":
            FakeFunction(sm)(secret, token, step)

    with pytest.raises(RotationError, match="AWSCURRENT is on"):
        rotate(sm, SECRET, no_finish, NOW)


@pytest.mark.parametrize(("stages", "resumed"), [
    ({"a": ["AWSCURRENT"]}, False),
    ({"a": ["AWSCURRENT", "AWSPENDING"]}, False),
    ({"a": ["AWSCURRENT"], "b": ["AWSPENDING"]}, True),
])
def test_choose_token(stages: dict[str, list[str]], resumed: bool) -> None:
    token, was_resumed = choose_token(stages)

    assert was_resumed is resumed
    assert (token == "b") is resumed
