"""Tasks that apply the playbooks to the emulator or to AWS."""

from __future__ import annotations

import sys
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from localaws.collections._base import SET_HELP, load_settings, print_json, reports_errors, say
from localaws.playbook import CollectingReporter, RunOptions, RunResult, Status, TaskResult
from localaws.provisioning import apply_playbook

TARGET_HELP = "Where to apply: local (the emulator) or aws (a real account on the allow-list); default local."


def _words(value: str | None) -> frozenset[str]:
    return frozenset(word.strip() for word in (value or "").split(",") if word.strip())


def ask(question: str) -> bool:
    """Ask a yes/no question on the terminal; without a terminal the answer is no."""
    if not sys.stdin.isatty():
        say(question + "No terminal to answer on: pass --yes to confirm.")
        return False
    answer = input(question + "Type 'yes' to continue: ")
    return answer.strip().lower() == "yes"


def _exit_on_failure(result: RunResult) -> None:
    if result.failed_task is not None:
        raise Exit(code=1)


@task(iterable=["set_"], help={
    "check": "Change nothing; report what would change.",
    "diff": "Show before and after of each change.",
    "tags": "Run only tasks with these tags, comma-separated.",
    "skip_tags": "Skip tasks with these tags, comma-separated.",
    "start_at": "Skip the tasks before the first one with this name.",
    "list_tasks": "List the tasks that would run, and run nothing.",
    "json": "Print one JSON document with every result instead of text.",
    "target": TARGET_HELP,
    "yes": "Apply to the aws target without asking.",
    "set_": SET_HELP,
})
@reports_errors
def setup(c: Context, check: bool = False, diff: bool = False, tags: str | None = None,
          skip_tags: str | None = None, start_at: str | None = None, list_tasks: bool = False,
          json: bool = False, target: str = "local", yes: bool = False,
          set_: list[str] | None = None) -> None:
    """Apply playbooks/site.yml: create or update every AWS resource of the application."""
    settings = load_settings(c, set_ or ())
    options = RunOptions(check=check, diff=diff, tags=_words(tags), skip_tags=_words(skip_tags),
                         start_at=start_at, list_tasks=list_tasks, json=json)
    result = apply_playbook(settings, target, options, confirm=(lambda _: True) if yes else ask)
    _exit_on_failure(result)


def _fact_summary(facts: dict[str, Any]) -> str:
    shown = []
    for key in ("arn", "invoke_url", "id", "client_id", "key_id", "endpoint_address", "endpoint_port",
                "verification_status"):
        if facts.get(key) not in (None, ""):
            shown.append(f"{key}={facts[key]}")
    return "  ".join(shown)


def _listing(result: TaskResult) -> list[dict[str, Any]]:
    entries = []
    for item_facts, label, status in (
        [(item.facts, item.item, item.status) for item in result.items]
        or [(result.facts, "", result.status)]
    ):
        entries.append({
            "task": result.task,
            "item": label,
            "exists": status is Status.OK,
            "state": "as configured" if status is Status.OK else "missing or different",
            "facts": item_facts,
        })
    return entries


@task(help={"target": TARGET_HELP, "json": "Print the resources as JSON."})
@reports_errors
def list_(c: Context, target: str = "local", json: bool = False) -> None:
    """List the resources the playbooks manage, with their ARNs and URLs; change nothing."""
    settings = load_settings(c)
    collector = CollectingReporter()
    apply_playbook(settings, target, RunOptions(check=True), confirm=lambda _: False, reporter=collector)
    entries = [entry for result in collector.results for entry in _listing(result)]
    if json:
        print_json(entries)
        return
    for entry in entries:
        name = entry["task"] + (f" [{entry['item']}]" if entry["item"] else "")
        say(f"{name}: {entry['state']}")
        summary = _fact_summary(entry["facts"])
        if summary:
            say(f"    {summary}")
        for route, url in (entry["facts"].get("urls") or {}).items():
            say(f"    {route} -> {url}")


@task(help={"target": TARGET_HELP, "yes": "Delete without asking."})
@reports_errors
def teardown(c: Context, target: str = "local", yes: bool = False) -> None:
    """Delete every resource the playbooks manage, last created first."""
    settings = load_settings(c)
    if not yes and not ask(f"Delete every resource of playbooks/site.yml on the {target} target?\n"):
        raise Exit("not confirmed; nothing was deleted.", code=1)
    options = RunOptions(reverse=True)
    result = apply_playbook(settings, target, options, confirm=lambda _: True, resource_state="absent")
    _exit_on_failure(result)


collection = Collection("resources", setup, teardown)
collection.add_task(list_, name="list")
