"""The checks of `invoke rotation.test`: rotate each secret on `local` and prove the result, or audit `aws`.

On `local` every secret is rotated once and then checked: the labels, the last rotation date, the
four steps in the function's CloudWatch Logs, and the credentials themselves (PostgreSQL logins for
the database secret, token verification for the JWT secret). On `aws` nothing changes: the
configuration is compared with the policy in playbooks/vars/aws.yml.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import botocore.exceptions
import psycopg

from localaws.rotation import jwt
from localaws.rotation.driver import (
    CURRENT,
    PENDING,
    PREVIOUS,
    STEPS,
    RotationResult,
    version_stages,
    version_with,
)
from localaws.rotation.policy import LAST_ROTATED_TAG, as_datetime, read_policy, tags_of
from localaws.rotation.service import (
    Report,
    describe,
    local_client,
    policies,
    read_json,
    rotate_one,
    secret_names,
)
from localaws.settings import Settings

KMS_ALIAS = "alias/tutor-system-secrets"
LOG_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Check:
    """One line of `rotation.test`."""

    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(name: str, passed: bool, detail: str) -> Check:
    return Check(name, passed, detail)


def run_local(settings: Settings, report: Report,
              client: Callable[[str], Any] | None = None) -> list[Check]:
    """Rotate the database and JWT secrets now and check each outcome."""
    client = client or local_client(settings)
    sm = client("secretsmanager")
    results: list[Check] = []
    found = {policy.secret: policy for policy in policies(settings, client)}
    for name in secret_names(settings):
        policy = found.get(name)
        if policy is None or not policy.enabled:
            results.append(check(f"{name}: policy", False, "no rotation policy; run `invoke resources.setup` "
                                 "or `invoke rotation.configure`"))
            continue
        before = read_json(sm, name)
        token = sign_before_rotation(before) if "secret_key" in before else None
        rotation = rotate_one(settings, client, policy, report)
        results.append(check(f"{name}: rotation", rotation.succeeded,
                             "four steps succeeded" if rotation.succeeded
                             else f"failed at {rotation.failed_step}: {rotation.error}"))
        if not rotation.succeeded:
            continue
        results.extend(label_checks(sm, name, rotation))
        results.append(steps_logged(client("logs"), policy.lambda_arn or "", rotation))
        after = read_json(sm, name)
        if token is not None:
            results.extend(jwt_checks(name, token, after))
        else:
            results.extend(password_checks(name, before, after))
    return results


def label_checks(sm: Any, name: str, rotation: RotationResult) -> list[Check]:
    versions = version_stages(sm, name)
    current = version_with(versions, CURRENT)
    previous = version_with(versions, PREVIOUS)
    pending = [version for version, stages in versions.items() if PENDING in stages]
    last = as_datetime(tags_of(sm.describe_secret(SecretId=name)).get(LAST_ROTATED_TAG))
    return [
        check(f"{name}: AWSCURRENT", current == rotation.token and current != rotation.old_version,
              f"on version {current}, new version {rotation.token}"),
        check(f"{name}: AWSPREVIOUS", previous == rotation.old_version,
              f"on version {previous}, old version {rotation.old_version}"),
        check(f"{name}: AWSPENDING", not pending,
              "on no version" if not pending else f"still on {', '.join(pending)}"),
        check(f"{name}: last rotated", last is not None and last == rotation.rotated_at,
              f"{LAST_ROTATED_TAG}={last.isoformat() if last else 'unset'}"),
    ]


def logged_steps(logs: Any, function: str, token: str) -> set[str]:
    """Return the steps whose `finished` line for `token` is in the function's log group."""
    group = "/aws/lambda/" + function.rsplit(":", 1)[-1]
    found: set[str] = set()
    request: dict[str, Any] = {"logGroupName": group}
    while True:
        try:
            page = logs.filter_log_events(**request)
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return found
            raise
        for event in page.get("events", []):
            message = event.get("message", "")
            if f"token={token}: finished" in message:
                found.update(step for step in STEPS if f"step={step} " in message)
        if not page.get("nextToken") or page.get("nextToken") == request.get("nextToken"):
            return found
        request["nextToken"] = page["nextToken"]


def steps_logged(logs: Any, function: str, rotation: RotationResult) -> Check:
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        found = logged_steps(logs, function, rotation.token)
        if found >= set(STEPS) or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    missing = [step for step in STEPS if step not in found]
    return check(f"{rotation.secret}: steps logged", not missing,
                 "createSecret, setSecret, testSecret and finishSecret finished for the token" if not missing
                 else f"no `finished` line for {', '.join(missing)} in /aws/lambda logs")


def can_log_in(credentials: dict[str, Any]) -> tuple[bool, str]:
    try:
        with psycopg.connect(host=credentials["host"], port=int(credentials["port"]),
                             dbname=credentials["dbname"], user=credentials["username"],
                             password=credentials["password"], connect_timeout=5,
                             autocommit=True) as connection:
            connection.execute("select 1")
    except psycopg.OperationalError as error:
        return False, str(error).strip().splitlines()[-1]
    return True, "select 1 succeeded"


def password_checks(name: str, before: dict[str, Any], after: dict[str, Any]) -> list[Check]:
    old_works, old_detail = can_log_in(before)
    new_works, new_detail = can_log_in(after)
    return [
        check(f"{name}: old password rejected", not old_works and before["password"] != after["password"],
              old_detail if not old_works else "PostgreSQL still accepts the old password"),
        check(f"{name}: new password works", new_works, new_detail),
    ]


def sign_before_rotation(value: dict[str, Any]) -> str:
    return jwt.sign({"sub": "rotation-test", "iat": int(time.time())}, value["secret_key"])


def jwt_checks(name: str, token: str, after: dict[str, Any]) -> list[Check]:
    keys = [after["secret_key"], *after.get("previous_secret_keys", [])]
    unknown = jwt.sign({"sub": "rotation-test"}, "not-a-key-of-this-secret")
    return [
        check(f"{name}: old token verifies", jwt.verify(token, keys) is not None,
              "a token signed before the rotation verifies with the new configuration's keys"),
        check(f"{name}: unknown key rejected", jwt.verify(unknown, keys) is None,
              "a token signed with another key does not verify"),
    ]


def run_aws_audit(client: Callable[[str], Any], names: list[str], days: int,
                  kms_period_days: int) -> list[Check]:
    """Compare the rotation configuration on AWS with the policy, reading only."""
    sm = client("secretsmanager")
    results = []
    for name in names:
        description = describe(sm, name)
        if description is None:
            results.append(check(f"{name}: exists", False, "secret not found; apply the playbooks"))
            continue
        policy = read_policy(description, "aws")
        results.append(check(f"{name}: rotation enabled", policy.enabled,
                             "RotationEnabled is true" if policy.enabled else "RotationEnabled is false"))
        results.append(check(f"{name}: rotation Lambda", bool(policy.lambda_arn),
                             policy.lambda_arn or "RotationLambdaARN is not set"))
        results.append(check(f"{name}: interval", policy.days == days,
                             f"every {policy.days} days, policy {days}"))
    results.append(kms_rotation_check(client("kms"), kms_period_days))
    return results


def kms_rotation_check(kms: Any, period_days: int) -> Check:
    name = f"{KMS_ALIAS}: key rotation"
    try:
        key_id = kms.describe_key(KeyId=KMS_ALIAS)["KeyMetadata"]["KeyId"]
        status = kms.get_key_rotation_status(KeyId=key_id)
    except botocore.exceptions.ClientError as error:
        return check(name, False, f"reading the key failed: {error}")
    enabled = bool(status.get("KeyRotationEnabled"))
    period = status.get("RotationPeriodInDays")
    # NOTE: moto 5.2.5 omits RotationPeriodInDays, so a missing period passes; AWS reports it.
    passed = enabled and (period is None or period == period_days)
    return check(name, passed, f"enabled={enabled}, every {period} days, policy {period_days}")
