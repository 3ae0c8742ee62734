"""Run a rotation's four Lambda steps where the emulator's RotateSecret does not.

MiniStack 1.5.33's RotateSecret copies the current value into a new AWSCURRENT version without
invoking the rotation function. So on the `local` target the toolkit invokes createSecret,
setSecret, testSecret and finishSecret itself, with one client request token, as Secrets Manager
does on AWS. The Lambda's finishSecret moves AWSCURRENT. Afterwards the driver removes AWSPENDING,
as Secrets Manager does once a rotation succeeds, and checks where every label ended up.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from localaws.errors import ToolkitError
from localaws.rotation.policy import LAST_ROTATED_TAG

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"


class RotationError(ToolkitError):
    """A rotation cannot start, or its labels did not end where Secrets Manager puts them."""


class StepError(Exception):
    """A rotation step returned a function error."""


# Runs one step: (secret name, client request token, step); raises StepError when the step fails.
InvokeStep = Callable[[str, str, str], None]


@dataclass
class RotationResult:
    """Outcome of one rotation: the versions involved, the steps that ran, and the failure if any."""

    secret: str
    token: str
    old_version: str
    resumed: bool = False
    steps: list[str] = field(default_factory=list)
    failed_step: str | None = None
    error: str | None = None
    rotated_at: datetime | None = None

    @property
    def succeeded(self) -> bool:
        return self.failed_step is None

    def describe(self) -> str:
        if self.succeeded:
            return f"{self.secret}: rotated to version {self.token} (previous {self.old_version})"
        return (f"{self.secret}: rotation failed at {self.failed_step} (token {self.token}): {self.error}. "
                "AWSCURRENT is unchanged; the next rotation resumes with this token.")

    def as_dict(self) -> dict[str, Any]:
        return {"secret": self.secret, "token": self.token, "old_version": self.old_version,
                "resumed": self.resumed, "steps": self.steps, "failed_step": self.failed_step,
                "error": self.error,
                "rotated_at": self.rotated_at.isoformat() if self.rotated_at else None}


def lambda_invoker(lambda_client: Any, function: str) -> InvokeStep:
    """Return a step runner that invokes `function` (name or ARN) synchronously."""

    def invoke(secret: str, token: str, step: str) -> None:
        event = {"SecretId": secret, "ClientRequestToken": token, "Step": step}
        response = lambda_client.invoke(FunctionName=function, InvocationType="RequestResponse",
                                        Payload=json.dumps(event).encode())
        payload = response["Payload"].read().decode("utf-8", "replace")
        if response.get("FunctionError"):
            raise StepError(function_error_message(payload))

    return invoke


def function_error_message(payload: str) -> str:
    """Return `errorType: errorMessage` from a function error's payload, or the payload itself."""
    try:
        error = json.loads(payload)
    except json.JSONDecodeError:
        return payload.strip() or "the function failed without a message"
    if isinstance(error, dict) and "errorMessage" in error:
        kind = error.get("errorType")
        return f"{kind}: {error['errorMessage']}" if kind else str(error["errorMessage"])
    return payload.strip()


def version_stages(sm: Any, secret: str) -> dict[str, list[str]]:
    description = sm.describe_secret(SecretId=secret)
    stages_by_version = description.get("VersionIdsToStages", {})
    return {str(version): list(stages) for version, stages in stages_by_version.items()}


def version_with(versions: dict[str, list[str]], label: str) -> str | None:
    return next((version for version, stages in versions.items() if label in stages), None)


def choose_token(versions: dict[str, list[str]]) -> tuple[str, bool]:
    """Return the client request token and whether it resumes an unfinished rotation.

    An AWSPENDING label on a version other than AWSCURRENT means an earlier rotation did not
    finish, and Secrets Manager retries that rotation with its token rather than starting another.
    """
    pending = version_with(versions, PENDING)
    if pending is not None and pending != version_with(versions, CURRENT):
        return pending, True
    return str(uuid.uuid4()), False


def rotate(sm: Any, secret: str, invoke_step: InvokeStep, now: datetime) -> RotationResult:
    """Rotate `secret` once: run the four steps in order, stopping at the first that fails.

    A failed step leaves AWSCURRENT where it was and AWSPENDING on the new version. Raises
    RotationError when the secret has no AWSCURRENT version or the labels end up wrong.
    """
    versions = version_stages(sm, secret)
    old_version = version_with(versions, CURRENT)
    if old_version is None:
        raise RotationError(f"secret {secret} has no AWSCURRENT version, so there is nothing to rotate. "
                            "Store a value first (invoke resources.setup).")
    if PENDING in versions[old_version]:
        # A finished rotation may leave AWSPENDING on the current version; it does not block the next.
        sm.update_secret_version_stage(SecretId=secret, VersionStage=PENDING, RemoveFromVersionId=old_version)
    token, resumed = choose_token(versions)
    result = RotationResult(secret=secret, token=token, old_version=old_version, resumed=resumed)

    for step in STEPS:
        try:
            invoke_step(secret, token, step)
        except StepError as error:
            result.failed_step = step
            result.error = str(error)
            return result
        result.steps.append(step)

    versions = version_stages(sm, secret)
    if PENDING in versions.get(token, []):
        sm.update_secret_version_stage(SecretId=secret, VersionStage=PENDING, RemoveFromVersionId=token)
    check_labels(sm, secret, token, old_version)
    sm.tag_resource(SecretId=secret, Tags=[{"Key": LAST_ROTATED_TAG, "Value": now.isoformat()}])
    result.rotated_at = now
    return result


def check_labels(sm: Any, secret: str, token: str, old_version: str) -> None:
    """Raise RotationError unless the labels sit where a finished rotation puts them.

    AWSCURRENT must be on `token`, AWSPREVIOUS on `old_version`, and AWSPENDING on no version.
    """
    versions = version_stages(sm, secret)
    problems = []
    if version_with(versions, CURRENT) != token:
        problems.append(f"AWSCURRENT is on {version_with(versions, CURRENT)}, not on the new version {token}")
    if version_with(versions, PREVIOUS) != old_version:
        problems.append(f"AWSPREVIOUS is on {version_with(versions, PREVIOUS)}, not on the old version "
                        f"{old_version}")
    if version_with(versions, PENDING) is not None:
        problems.append(f"AWSPENDING is still on {version_with(versions, PENDING)}")
    if problems:
        raise RotationError(f"after finishSecret of secret {secret}: " + "; ".join(problems) +
                            ". Check the rotation function's finishSecret step.")
