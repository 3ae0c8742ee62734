"""Everything the playbooks need from the outside: the target, its clients and variables.

The `local` target is the emulator, reached with the settings' test
credentials. The `aws` target is a real account: boto3's own credential
chain, no endpoint override, and two guards before any change, so that the
test credentials never leave the machine and only allow-listed accounts are touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import yaml

from localaws import playbook as playbook_engine
from localaws.errors import ConfigError, ToolkitError
from localaws.playbook import CollectingReporter, Reporter, RunOptions, RunResult, Status
from localaws.playbook.modules.base import ModuleContext, Target
from localaws.settings import Settings
from localaws.settings.model import SPECS
from localaws.templating import render_template

TARGETS = ("local", "aws")
LOCAL_ACCOUNT_ID = "000000000000"


class TargetError(ToolkitError):
    """The `aws` target cannot be used safely with the current credentials or account."""


def build_target(settings: Settings, name: str) -> Target:
    if name not in TARGETS:
        raise ConfigError(f"invalid target {name!r}: expected one of {', '.join(TARGETS)}.")
    if name == "local":
        return Target("local", settings.aws_region, settings.aws_endpoint_url,
                      settings.aws_access_key_id, settings.aws_secret_access_key)
    return Target("aws", settings.aws_region, None)


def _client_config() -> botocore.config.Config:
    return botocore.config.Config(connect_timeout=5, read_timeout=60,
                                  retries={"max_attempts": 3, "mode": "standard"})


def aws_session(target: Target) -> boto3.session.Session:
    if target.endpoint_url is not None:
        return boto3.session.Session(
            aws_access_key_id=target.access_key_id,
            aws_secret_access_key=target.secret_access_key,
            region_name=target.region,
        )
    return boto3.session.Session(region_name=target.region)


def client_factory(target: Target) -> Callable[[str], Any]:
    """Return a function that builds boto3 clients for `target`, one per service, cached."""
    session = aws_session(target)
    config = _client_config()
    if target.endpoint_url is None:
        # AWS_ENDPOINT_URL in the environment (the env file sets it for the emulator) must not
        # redirect real-AWS calls, nor send them anywhere but AWS.
        config = config.merge(botocore.config.Config(ignore_configured_endpoint_urls=True))
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service, endpoint_url=target.endpoint_url, config=config)
        return clients[service]

    return client


def check_aws_account(settings: Settings, target: Target, client: Callable[[str], Any]) -> str:
    """Return the account id of the `aws` target's credentials, or raise unless it is safe to use.

    The credentials are checked before any request: the emulator's test
    credentials are rejected, so they are never sent to AWS.
    """
    if target.endpoint_url is not None:
        return LOCAL_ACCOUNT_ID

    credentials = aws_session(target).get_credentials()
    if credentials is None:
        raise TargetError("no AWS credentials found for the aws target. Configure a profile "
                          "(`aws configure` or AWS_PROFILE) and run again.")
    if credentials.access_key == settings.aws_access_key_id:
        raise TargetError(
            f"the aws target would use the emulator's test access key ({settings.aws_access_key_id!r}), "
            "which comes from the environment or the env file. Unset AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY in this shell, or select real credentials with AWS_PROFILE."
        )

    try:
        account = str(client("sts").get_caller_identity()["Account"])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise TargetError(f"identifying the AWS account failed: {error}. Check the credentials.") from None
    if account not in settings.aws_allowed_account_ids:
        allowed = ", ".join(settings.aws_allowed_account_ids) or "none"
        raise TargetError(
            f"AWS account {account} is not on the allow-list (AWS_ALLOWED_ACCOUNT_IDS: {allowed}). "
            f"Add it with `--set AWS_ALLOWED_ACCOUNT_IDS={account}` if this is the right account."
        )
    return account


def settings_variables(settings: Settings) -> dict[str, Any]:
    """Return the settings as playbook variables, named as the settings' attributes, with derived values."""
    variables: dict[str, Any] = {spec.attribute: getattr(settings, spec.attribute) for spec in SPECS}
    variables.update({key.lower(): value for key, value in settings.derived_values().items()})
    variables["db_port"] = settings.db_port
    return variables


def read_vars_file(path: Path, context: dict[str, Any]) -> dict[str, Any]:
    """Render a vars file with Jinja over `context`, then parse it as a YAML mapping."""
    if not path.exists():
        return {}
    text = render_template(path.parent, path.name, context)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {error}. Fix the file.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of variable names to values.")
    return data


def playbook_variables(settings: Settings, target: Target, account_id: str,
                       playbook_dir: Path, resource_state: str = "present") -> dict[str, Any]:
    """Collect the variables playbooks see: settings, the vars files, target and account."""
    variables = settings_variables(settings)
    variables.update(target=target.name, account_id=account_id, resource_state=resource_state)
    for name in ("common.yml", f"{target.name}.yml"):
        variables.update(read_vars_file(playbook_dir / "vars" / name, variables))
    return variables


def context_factory(settings: Settings, target: Target, client: Callable[[str], Any],
                    variables: dict[str, Any]) -> Callable[[bool], ModuleContext]:
    """Return the engine's factory of module contexts for `target`."""
    from localaws.runtime import emulator

    build_python = emulator.executable(settings).parent / "python" if target.name == "local" else None

    def factory(check_mode: bool) -> ModuleContext:
        return ModuleContext(
            target=target,
            check_mode=check_mode,
            project_dir=settings.project_dir,
            build_dir=settings.state_dir / "build" / target.name,
            client=client,
            build_python=build_python,
            variables=variables,
        )

    return factory


def apply_playbook(
    settings: Settings,
    target_name: str,
    options: RunOptions,
    confirm: Callable[[str], bool],
    playbook: str = "site.yml",
    resource_state: str = "present",
    reporter: Reporter | None = None,
) -> RunResult:
    """Validate and run a playbook from `playbooks/` against a target.

    On the `aws` target a change needs `confirm` to return True: a silent
    check-mode run lists what would change first, and the question names the
    account and the number of changes.
    """
    import localaws.playbook.modules  # noqa: F401 - registers the modules.

    path = settings.project_dir / "playbooks" / playbook
    target = build_target(settings, target_name)
    client = client_factory(target)
    if target.name == "local" and not options.list_tasks:
        require_emulator(settings)
    account_id = LOCAL_ACCOUNT_ID if options.list_tasks else check_aws_account(settings, target, client)
    variables = playbook_variables(settings, target, account_id, path.parent, resource_state)
    factory = context_factory(settings, target, client, variables)

    if target.name == "aws" and not options.check and not options.list_tasks:
        preview = playbook_engine.run(path, variables, factory, replace(options, check=True, json=False),
                                      CollectingReporter())
        if preview.failed_task is not None:
            failed = preview.failed_task
            raise TargetError(f"the preview in check mode failed at {failed.location} "
                              f"({failed.task}): {failed.message}. Nothing was changed.")
        changes = [result.task for result in preview.results if result.status is Status.CHANGED]
        if not changes:
            return preview
        listing = "\n".join(f"  - {task}" for task in changes)
        question = (f"Apply {len(changes)} changed tasks to AWS account {account_id} "
                    f"in {target.region}?\n{listing}\n")
        if not confirm(question):
            raise TargetError("not confirmed; nothing was changed. Run with --yes to apply "
                              "without asking.")

    return playbook_engine.run(path, variables, factory, options, reporter)


def require_emulator(settings: Settings) -> None:
    """Raise unless the emulator responds, since every module of the local target calls it."""
    from localaws.runtime.health import probe_emulator

    health = probe_emulator(settings)
    if not health.healthy:
        raise TargetError(f"the emulator does not respond: {health.detail}. Start it with `invoke stack.up`.")
