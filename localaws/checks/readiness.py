"""Readiness checks behind `invoke verify`: each returns a result with the fix for a failure."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from localaws.runtime import host
from localaws.runtime.health import Health, probe_emulator, probe_mail_api, probe_smtp
from localaws.settings import Settings


@dataclass(frozen=True)
class CheckResult:
    """One line of `verify`: what was checked, whether it passed, and the fix when it did not."""

    name: str
    passed: bool
    detail: str
    fix: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# One cheap, read-only call per AWS service, made to prove the service really responds.
AWS_PROBES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "s3": ("s3", "list_buckets", {}),
    "secretsmanager": ("secretsmanager", "list_secrets", {"MaxResults": 1}),
    "kms": ("kms", "list_keys", {"Limit": 1}),
    "iam": ("iam", "list_roles", {"MaxItems": 1}),
    "lambda": ("lambda", "list_functions", {"MaxItems": 1}),
    "apigateway": ("apigateway", "get_rest_apis", {"limit": 1}),
    "cognito-idp": ("cognito-idp", "list_user_pools", {"MaxResults": 1}),
    "ses": ("ses", "list_identities", {}),
    "logs": ("logs", "describe_log_groups", {"limit": 1}),
    "rds": ("rds", "describe_db_instances", {}),
    "sts": ("sts", "get_caller_identity", {}),
    "sqs": ("sqs", "list_queues", {}),
    "sns": ("sns", "list_topics", {}),
    "dynamodb": ("dynamodb", "list_tables", {"Limit": 1}),
    "events": ("events", "list_rules", {"Limit": 1}),
    "ssm": ("ssm", "describe_parameters", {"MaxResults": 1}),
}


def aws_client(settings: Settings, service: str) -> Any:
    """Return a boto3 client for `service` pointed at the emulator, failing fast."""
    config = botocore.config.Config(
        connect_timeout=2, read_timeout=10, retries={"max_attempts": 1, "mode": "standard"},
    )
    return boto3.session.Session().client(
        service,
        endpoint_url=settings.aws_endpoint_url,
        region_name=settings.aws_region,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        config=config,
    )


def _timed(name: str, run: Callable[[], CheckResult]) -> CheckResult:
    started = time.perf_counter()
    result = run()
    return CheckResult(result.name or name, result.passed, result.detail, result.fix,
                       round(time.perf_counter() - started, 3))


def _from_health(name: str, health: Health, fix: str) -> CheckResult:
    return CheckResult(name, health.healthy, health.detail, "" if health.healthy else fix)


def check_processes(settings: Settings) -> Iterator[CheckResult]:
    for item in host.status(settings):
        if item.state == host.EXTERNAL:
            continue
        passed = item.state in ("RUNNING", "STARTING")
        yield CheckResult(
            f"process {item.name}", passed,
            f"{item.state}" + (f", pid {item.pid}" if item.pid else ""),
            "" if passed else (
                f"run `invoke stack.up`; if it keeps failing, `invoke stack.logs --service {item.name}`"
            ),
        )


def check_aws_service(settings: Settings, service: str) -> CheckResult:
    name = f"aws {service}"
    probe = AWS_PROBES.get(service)
    if probe is None:
        return CheckResult(name, False, "no probe is defined for this service",
                           f"remove {service!r} from REQUIRED_AWS_SERVICES or add a probe for it")
    client_name, operation, arguments = probe
    try:
        getattr(aws_client(settings, client_name), operation)(**arguments)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        return CheckResult(name, False, f"{operation} failed: {error}",
                           "check the emulator with `invoke stack.logs --service emulator`")
    return CheckResult(name, True, f"{operation} succeeded")


def _database_fix(settings: Settings) -> str:
    if settings.postgres_server == "system":
        return ("if the system server is down, start it (`pg_ctlcluster <version> main start`), "
                "then run `invoke db.setup`")
    return "run `invoke stack.up` if the private cluster is down, then `invoke db.setup`"


def check_database_login(settings: Settings) -> CheckResult:
    from localaws.database.setup import check_login

    name = f"postgres login as {settings.db_user}"
    try:
        check_login(settings)
    except Exception as error:
        return CheckResult(name, False, f"{settings.db_host}:{settings.db_port}/{settings.db_name}: {error}",
                           _database_fix(settings))
    return CheckResult(name, True, f"{settings.db_host}:{settings.db_port}/{settings.db_name}")


def check_migrations(settings: Settings) -> CheckResult:
    from localaws.database import migrations

    name = "database schema"
    try:
        state = migrations.status(settings, settings.project_dir / "sql")
    except Exception as error:
        return CheckResult(name, False, str(error), _database_fix(settings))
    if state.pending:
        pending = ", ".join(migration.name for migration in state.pending)
        return CheckResult(name, False, f"pending migrations: {pending}", "run `invoke db.setup`")
    return CheckResult(name, True, f"{len(state.applied)} migrations applied, none pending")


def check_database_identity(settings: Settings) -> CheckResult:
    """Check that the database the settings name carries this state folder's marker."""
    from localaws.database.marker import marker_text, read_marker

    name = "database identity"
    place = f"{settings.db_host}:{settings.db_port}/{settings.db_name}"
    try:
        found = read_marker(settings)
    except Exception as error:
        return CheckResult(name, False, f"{place}: {error}", _database_fix(settings))
    expected = marker_text(settings)
    if found == expected:
        return CheckResult(name, True, f"{place} was set up from {settings.state_dir}")
    if found is None:
        return CheckResult(name, False, f"{place} has no marker of a state folder",
                           "run `invoke db.setup` to mark it as this checkout's database")
    return CheckResult(
        name, False, f"{place} was set up from another state folder (its comment is {found!r}, "
        f"this state folder's is {expected!r})",
        "another checkout uses this database: give this checkout its own DB_NAME and DB_USER "
        "(`--set DB_NAME=... --set DB_USER=...`) or its own POSTGRES_PRIVATE_PORT, then run "
        "`invoke db.setup`",
    )


def run_checks(settings: Settings, resources: bool = True) -> list[CheckResult]:
    """Run every readiness check in order and return all results; nothing is changed.

    With `resources`, each resource of the playbooks is checked too.
    """
    results = list(check_processes(settings))
    results.append(_timed("emulator health", lambda: _from_health(
        "emulator health", probe_emulator(settings), "run `invoke stack.up`")))
    for service in settings.required_aws_services:
        results.append(_timed(f"aws {service}", functools.partial(check_aws_service, settings, service)))
    results.append(_timed("postgres login", lambda: check_database_login(settings)))
    results.append(_timed("database schema", lambda: check_migrations(settings)))
    results.append(_timed("database identity", lambda: check_database_identity(settings)))
    results.append(_timed("mail smtp", lambda: _from_health(
        "mail smtp", probe_smtp(settings), "run `invoke stack.up`")))
    results.append(_timed("mail api", lambda: _from_health(
        "mail api", probe_mail_api(settings), "run `invoke stack.up`")))
    if resources:
        from localaws.checks.resources import check_resources

        results.extend(check_resources(settings))
    return results
