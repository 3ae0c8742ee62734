"""The playbooks applied to a real emulator: repeat runs, check mode, validation, updates and teardown."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from localaws.checks.readiness import aws_client
from localaws.errors import PlaybookError
from localaws.playbook import CollectingReporter, RunOptions, RunResult, Status, TaskResult, list_tasks
from localaws.provisioning import apply_playbook
from localaws.runtime import host
from localaws.settings import Settings
from tests.integration.clihelpers import Cli, local_dev_stack
from tests.integration.conftest import PROJECT, make_state_dir, stack_settings

pytestmark = pytest.mark.integration

COPIED_FOLDERS = ("playbooks", "templates", "sql", "src")
SITE = PROJECT / "playbooks" / "site.yml"
PREFIX = "tutor-system"


def apply(settings: Settings, options: RunOptions | None = None,
          resource_state: str = "present") -> RunResult:
    return apply_playbook(settings, "local", options or RunOptions(), confirm=lambda _: True,
                          resource_state=resource_state, reporter=CollectingReporter())


def site_task_names(options: RunOptions | None = None) -> list[str]:
    return [task.name for play in list_tasks(SITE, options) for task in play.tasks]


def not_with_status(result: RunResult, status: Status) -> list[str]:
    return [f"{task.task}: {task.status} {task.message}" for task in result.results
            if task.status is not status]


def remaining_resources(settings: Settings) -> dict[str, list[str]]:
    """Return the names of the application's resources the emulator has, per kind."""
    kms = aws_client(settings, "kms")
    iam = aws_client(settings, "iam")
    logs = aws_client(settings, "logs")
    return {
        "bucket": [bucket["Name"] for bucket in aws_client(settings, "s3").list_buckets()["Buckets"]],
        "KMS alias": [alias["AliasName"] for alias in kms.list_aliases()["Aliases"]
                      if alias["AliasName"].startswith(f"alias/{PREFIX}")],
        "secret": [secret["Name"] for secret in
                   aws_client(settings, "secretsmanager").list_secrets()["SecretList"]],
        "IAM role": [role["RoleName"] for role in iam.list_roles()["Roles"]
                     if role["RoleName"].startswith(PREFIX)],
        "log group": [group["logGroupName"] for group in
                      logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{PREFIX}")["logGroups"]],
        "function": [function["FunctionName"] for function in
                     aws_client(settings, "lambda").list_functions()["Functions"]],
        "REST API": [api["name"] for api in aws_client(settings, "apigateway").get_rest_apis()["items"]],
        "user pool": [pool["Name"] for pool in
                      aws_client(settings, "cognito-idp").list_user_pools(MaxResults=60)["UserPools"]],
        "SES identity": aws_client(settings, "ses").list_identities()["Identities"],
        "RDS instance": [instance["DBInstanceIdentifier"] for instance in
                         aws_client(settings, "rds").describe_db_instances()["DBInstances"]],
    }


@contextlib.contextmanager
def fresh_stack(prefix: str) -> Iterator[Settings]:
    """Start a stack in a new state folder with nothing applied, then stop it and remove the folder."""
    state_dir = make_state_dir(prefix)
    settings = stack_settings(state_dir)
    try:
        host.up(settings, print, timeout=120)
        yield settings
    finally:
        host.down(settings, print)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def empty_stack() -> Iterator[Settings]:
    """A running stack that no test changes: nothing is ever applied to it."""
    with fresh_stack("localaws-empty-") as settings:
        yield settings


def copy_project(folder: Path) -> Path:
    """Copy what the playbooks read into `folder`, so a test can edit it."""
    for name in COPIED_FOLDERS:
        shutil.copytree(PROJECT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(PROJECT / "invoke.yaml", folder / "invoke.yaml")
    return folder


def line_of(path: Path, text: str) -> int:
    """Return the 1-based number of the first line of `path` that contains `text`."""
    lines = path.read_text().splitlines()
    return next(number for number, line in enumerate(lines, start=1) if text in line)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not found in {path}"
    path.write_text(text.replace(old, new, 1))


def add_function_copy(vars_file: Path, name: str, copy_name: str) -> None:
    """Add a copy of function `name`'s entry in `functions`, renamed and reading `copy_name`'s folder."""
    text = vars_file.read_text()
    entry = re.search(rf"^  - name: {re.escape(name)}\n(?:    .*\n)*", text, re.MULTILINE)
    assert entry is not None, f"function {name!r} not found in {vars_file}"
    copy = entry.group(0).replace(f"name: {name}\n", f"name: {copy_name}\n", 1)
    copy = re.sub(rf"lambda_functions/{re.escape(name)}\b", f"lambda_functions/{copy_name}", copy)
    vars_file.write_text(text[:entry.end()] + copy + text[entry.end():])


def items_by_label(result: TaskResult) -> dict[str, Status]:
    return {item.item: item.status for item in result.items}


# Repeat runs


def test_second_apply_changes_nothing(stack: Settings) -> None:
    result = apply(stack)

    assert result.counts[Status.CHANGED] == 0
    assert result.counts[Status.FAILED] == 0
    assert not_with_status(result, Status.OK) == []
    assert [task.task for task in result.results] == site_task_names()


# Check mode


def test_check_on_empty_emulator_predicts_creation(empty_stack: Settings) -> None:
    result = apply(empty_stack, RunOptions(check=True))

    assert result.check_mode is True
    assert not_with_status(result, Status.CHANGED) == []
    assert [task.task for task in result.results] == site_task_names()
    for task in result.results:
        messages = [item.message for item in task.items] or [task.message]
        for message in messages:
            assert "would " in message, f"{task.task}: {message}"


def test_check_on_empty_emulator_creates_nothing(empty_stack: Settings) -> None:
    apply(empty_stack, RunOptions(check=True))

    for kind, names in remaining_resources(empty_stack).items():
        assert names == [], f"check mode created {kind}: {names}"


# Validation


def test_misspelled_module_rejected_before_running(empty_stack: Settings, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    storage = project / "playbooks" / "storage.yml"
    edit(storage, "      s3_bucket:\n", "      s3_buckit:\n")
    line = line_of(storage, "s3_buckit:")

    with pytest.raises(PlaybookError) as raised:
        apply(empty_stack.replace(project_dir=project))

    message = str(raised.value)
    assert f"{storage}:{line}" in message
    assert "task 'Create the uploads bucket'" in message
    assert "unknown module 's3_buckit'" in message
    assert "did you mean 's3_bucket'?" in message
    for kind, names in remaining_resources(empty_stack).items():
        assert names == [], f"an invalid playbook created {kind}: {names}"


def test_undefined_variable_rejected_before_running(empty_stack: Settings, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    storage = project / "playbooks" / "storage.yml"
    edit(storage, '"{{ project }}-{{ environment }}-uploads"', '"{{ undefined_var }}-uploads"')
    line = line_of(storage, "undefined_var")

    with pytest.raises(PlaybookError) as raised:
        apply(empty_stack.replace(project_dir=project))

    message = str(raised.value)
    assert f"{storage}:{line}" in message
    assert "task 'Create the uploads bucket'" in message
    assert "undefined variable 'undefined_var'" in message
    for kind, names in remaining_resources(empty_stack).items():
        assert names == [], f"an invalid playbook created {kind}: {names}"


# Updates


def test_changed_source_updates_one_function(stack: Settings, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    source = project / "src" / "lambda_functions"
    shutil.copytree(source / "health", source / "health_copy")
    add_function_copy(project / "playbooks" / "vars" / "common.yml", "health", "health_copy")
    # The copy's extra function stays in this module's stack, but site.yml does not manage it.
    settings = stack.replace(project_dir=project)
    first = apply(settings)
    assert first.failed_task is None, first.failed_task

    edit(source / "health_copy" / "handler.py", '"status": "ok"', '"status": "updated copy"')
    result = apply(settings)

    functions = next(task for task in result.results
                     if task.module == "lambda_function" and "health_copy" in items_by_label(task))
    items = items_by_label(functions)
    assert items.pop("health_copy") is Status.CHANGED
    assert items["health"] is Status.OK
    assert [f"item {label}: {status}" for label, status in items.items() if status is not Status.OK] == []
    others = [task for task in result.results if task is not functions]
    assert [f"{task.task}: {task.status}" for task in others if task.status is not Status.OK] == []

    response = aws_client(settings, "lambda").invoke(
        FunctionName=f"{PREFIX}-{settings.environment}-health_copy", Payload=b"{}")
    payload = json.loads(response["Payload"].read())
    assert payload["statusCode"] == 200
    assert json.loads(payload["body"])["status"] == "updated copy"


# Teardown


def test_teardown_removes_every_resource() -> None:
    with fresh_stack("localaws-teardown-") as settings:
        created = apply(settings)
        assert created.failed_task is None, created.failed_task

        removed = apply(settings, RunOptions(reverse=True), resource_state="absent")

        assert removed.failed_task is None, removed.failed_task
        for kind, names in remaining_resources(settings).items():
            assert names == [], f"teardown left {kind}: {names}"
        check = apply(settings, RunOptions(check=True))
        assert not_with_status(check, Status.CHANGED) == []


# The command line


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    """`invoke local-dev` run once in a private stack, stopped and removed after the module."""
    with local_dev_stack("localaws-resources-cli-") as runner:
        yield runner


def test_setup_after_local_dev_changes_nothing(cli: Cli) -> None:
    output = cli.run("resources.setup").stdout

    assert re.search(r"^RECAP ok=\d+ changed=0 skipped=0 failed=0 ", output, re.MULTILINE), output


def test_setup_list_tasks_names_tasks(cli: Cli) -> None:
    output = cli.run("resources.setup", "--list-tasks").stdout

    for name in site_task_names():
        assert name in output


def test_setup_json_check_reports_nothing_changed(cli: Cli) -> None:
    document = json.loads(cli.run("resources.setup", "--json", "--check").stdout)

    assert document["check_mode"] is True
    assert document["recap"]["changed"] == 0
    assert document["recap"]["failed"] == 0


def test_setup_storage_tag_runs_storage_only(cli: Cli) -> None:
    document = json.loads(cli.run("resources.setup", "--tags", "storage", "--check", "--json").stdout)

    storage_tasks = site_task_names(RunOptions(tags=frozenset({"storage"})))
    assert [task["task"] for task in document["tasks"]] == storage_tasks
    assert {Path(task["file"]).name for task in document["tasks"]} == {"storage.yml"}


def test_list_json_gives_urls_and_arns(cli: Cli) -> None:
    entries = json.loads(cli.run("resources.list", "--json").stdout)

    by_task = {entry["task"]: entry for entry in entries}
    bucket = by_task["Create the uploads bucket"]
    assert bucket["exists"] is True
    assert bucket["facts"]["arn"] == f"arn:aws:s3:::{PREFIX}-local-uploads"
    urls = by_task["Publish the REST API"]["facts"]["urls"]
    assert any(route.endswith("/api/health") for route in urls), urls


def test_health_route_returns_ok(cli: Cli) -> None:
    entries = json.loads(cli.run("resources.list", "--json").stdout)
    urls = next(entry["facts"]["urls"] for entry in entries if entry["task"] == "Publish the REST API")
    url = next(url for route, url in urls.items() if route.endswith("/api/health"))
    assert url.startswith("http://127.0.0.1:")

    # No proxy handler, so a proxy in the environment cannot take a loopback request off the machine.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        status = response.status
        body = json.loads(response.read())

    assert status == 200
    assert body["status"] == "ok"
