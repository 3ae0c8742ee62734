"""Tasks that configure, inspect, run and test the rotation of the database and JWT secrets."""

from __future__ import annotations

from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from localaws.collections._base import load_settings, print_json, reports_errors, say
from localaws.collections.resources import TARGET_HELP, ask
from localaws.errors import ConfigError
from localaws.playbook import RunOptions
from localaws.provisioning import (
    apply_playbook,
    build_target,
    check_aws_account,
    client_factory,
    read_vars_file,
    settings_variables,
)
from localaws.rotation import checks, service
from localaws.rotation.database import admin_secret_name, ensure_admin_role
from localaws.rotation.policy import SECRET_KINDS, read_policy
from localaws.settings import Settings


def _kinds(secret: str | None) -> tuple[str, ...]:
    if secret is None:
        return SECRET_KINDS
    if secret not in SECRET_KINDS:
        raise ConfigError(f"unknown secret {secret!r}: expected one of {', '.join(SECRET_KINDS)}.")
    return (secret,)


def _aws_policy(settings: Settings) -> tuple[int, int]:
    """Return (secret rotation days, KMS rotation days) from playbooks/vars/aws.yml."""
    variables = read_vars_file(settings.project_dir / "playbooks" / "vars" / "aws.yml",
                               {**settings_variables(settings), "target": "aws"})
    return int(variables["secret_rotation_days"]), int(variables["kms_rotation_period_days"])


def _aws_client(settings: Settings) -> Any:
    target = build_target(settings, "aws")
    client = client_factory(target)
    check_aws_account(settings, target, client)
    return client


@task(help={"target": TARGET_HELP, "yes": "Apply to the aws target without asking.",
            "check": "Change nothing; report what would change."})
@reports_errors
def configure(c: Context, target: str = "local", yes: bool = False, check: bool = False) -> None:
    """Apply playbooks/rotation.yml: the rotation function and interval of each secret."""
    settings = load_settings(c)
    result = apply_playbook(settings, target, RunOptions(check=check), playbook="rotation.yml",
                            confirm=(lambda _: True) if yes else ask)
    if result.failed_task is not None:
        raise Exit(code=1)
    if target == "local" and not check:
        client = service.local_client(settings)
        database = service.secret_names(settings, ("database",))[0]
        if service.describe(client("secretsmanager"), admin_secret_name(database)) is not None:
            admin = service.read_json(client("secretsmanager"), admin_secret_name(database))
            say(f"PostgreSQL role {admin['username']}: {ensure_admin_role(settings, admin)}")


@task(help={"target": TARGET_HELP, "json": "Print the policies as JSON."})
@reports_errors
def status(c: Context, target: str = "local", json: bool = False) -> None:
    """Show each secret's rotation: enabled, interval, last and next rotation."""
    settings = load_settings(c)
    client = service.local_client(settings) if target == "local" else _aws_client(settings)
    sm = client("secretsmanager")
    entries = []
    for name in service.secret_names(settings):
        description = service.describe(sm, name)
        if description is None:
            entries.append({"secret": name, "exists": False})
            continue
        entries.append({"exists": True, **read_policy(description, target).as_dict()})
    if json:
        print_json(entries)
        return
    for entry in entries:
        if not entry["exists"]:
            say(f"{entry['secret']}: does not exist")
        elif not entry["enabled"]:
            say(f"{entry['secret']}: rotation off")
        else:
            say(f"{entry['secret']}: every {entry['interval_days']} days by {entry['lambda']}, "
                f"last {entry['last_rotated'] or 'never'}, next {entry['next_rotation']}")


@task(help={"secret": f"Rotate only this secret: {' or '.join(SECRET_KINDS)}.",
            "json": "Print the results as JSON."})
@reports_errors
def rotate(c: Context, secret: str | None = None, json: bool = False) -> None:
    """Rotate the secrets on the local target now, running the rotation function's four steps."""
    settings = load_settings(c)
    results = service.rotate_now(settings, _kinds(secret), say if not json else (lambda _: None))
    if json:
        print_json([result.as_dict() for result in results])
    if not all(result.succeeded for result in results):
        raise SystemExit(1)


@task(help={"target": "local (rotate now and check) or aws (audit the configuration, read-only).",
            "json": "Print the results as JSON."})
@reports_errors
def rotation_test(c: Context, target: str = "local", json: bool = False) -> None:
    """Rotate each secret and check the outcome, or on aws audit the configuration against the policy."""
    settings = load_settings(c)
    if target == "local":
        results = checks.run_local(settings, (lambda _: None) if json else say)
    elif target == "aws":
        days, kms_days = _aws_policy(settings)
        results = checks.run_aws_audit(_aws_client(settings), service.secret_names(settings), days, kms_days)
    else:
        raise ConfigError(f"invalid target {target!r}: expected local or aws.")
    passed = all(result.passed for result in results)
    if json:
        print_json({"passed": passed, "checks": [result.as_dict() for result in results]})
    else:
        width = max(len(result.name) for result in results)
        for result in results:
            say(f"{'PASS' if result.passed else 'FAIL'}  {result.name:<{width}}  {result.detail}")
        failed = sum(not result.passed for result in results)
        say(f"{len(results) - failed} passed, {failed} failed")
    if not passed:
        raise SystemExit(1)


collection = Collection("rotation", configure, status, rotate)
collection.add_task(rotation_test, name="test")
