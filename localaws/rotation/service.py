"""Rotate the tutor system's secrets on the `local` target, with settings, clients and reporting."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import botocore.exceptions

from localaws.errors import ConfigError
from localaws.rotation import clock
from localaws.rotation.database import admin_secret_name, ensure_admin_role, store_database_password
from localaws.rotation.driver import RotationResult, lambda_invoker, rotate
from localaws.rotation.policy import SECRET_KINDS, RotationPolicy, read_policy, secret_name
from localaws.settings import Settings
from localaws.settings.model import PROJECT_NAME

Report = Callable[[str], None]


def local_client(settings: Settings) -> Callable[[str], Any]:
    from localaws.provisioning import build_target, client_factory

    return client_factory(build_target(settings, "local"))


def secret_names(settings: Settings, kinds: tuple[str, ...] = SECRET_KINDS) -> list[str]:
    return [secret_name(PROJECT_NAME, settings.environment, kind) for kind in kinds]


def describe(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(sm.describe_secret(SecretId=name))
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


def read_json(sm: Any, name: str, **version: str) -> dict[str, Any]:
    value = json.loads(sm.get_secret_value(SecretId=name, **version)["SecretString"])
    if not isinstance(value, dict):
        raise ConfigError(f"secret {name} does not hold a JSON object.")
    return value


def policies(settings: Settings, client: Callable[[str], Any]) -> list[RotationPolicy]:
    """Return the rotation policy of each secret that exists on the emulator."""
    sm = client("secretsmanager")
    found = []
    for name in secret_names(settings):
        description = describe(sm, name)
        if description is not None and "DeletedDate" not in description:
            found.append(read_policy(description, "local"))
    return found


def rotate_one(settings: Settings, client: Callable[[str], Any], policy: RotationPolicy,
               report: Report) -> RotationResult:
    """Rotate one secret now through its rotation Lambda, then update the env file for the database."""
    if not policy.enabled or policy.lambda_arn is None:
        raise ConfigError(f"secret {policy.secret} has no rotation policy. Run `invoke rotation.configure`.")
    sm = client("secretsmanager")
    is_database = policy.secret.endswith("/database")
    if is_database:
        ensure_admin_role(settings, read_json(sm, admin_secret_name(policy.secret)))
    invoke_step = lambda_invoker(client("lambda"), policy.lambda_arn)
    result = rotate(sm, policy.secret, invoke_step, clock.now(settings.rotation_clock))
    if result.succeeded and is_database:
        store_database_password(settings, read_json(sm, policy.secret)["password"], report)
    report(result.describe())
    return result


def rotate_now(settings: Settings, kinds: tuple[str, ...], report: Report,
               client: Callable[[str], Any] | None = None) -> list[RotationResult]:
    """Rotate the secrets of `kinds` at once, whether or not they are due."""
    client = client or local_client(settings)
    wanted = set(secret_names(settings, kinds))
    found = {policy.secret: policy for policy in policies(settings, client)}
    missing = sorted(wanted - found.keys())
    if missing:
        raise ConfigError(f"secret {missing[0]} does not exist on the emulator. "
                          "Run `invoke resources.setup`.")
    return [rotate_one(settings, client, found[name], report) for name in sorted(wanted)]


def rotate_due(settings: Settings, report: Report, client: Callable[[str], Any] | None = None
               ) -> list[RotationResult]:
    """Rotate, once each, the secrets whose next rotation time has passed; skip those without a policy."""
    client = client or local_client(settings)
    now = clock.now(settings.rotation_clock)
    results = []
    for policy in policies(settings, client):
        if policy.is_due(now):
            report(f"{policy.secret}: rotation was due at {policy.next_rotation:%Y-%m-%d %H:%M} UTC")
            results.append(rotate_one(settings, client, policy, report))
    return results
