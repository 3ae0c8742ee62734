"""Format a run's events: plain text for people, one JSON document for programs."""

from __future__ import annotations

import difflib
import json
import os
import sys
from typing import Any, TextIO

import yaml

from localaws.playbook.model import ListedPlay, Play, Playbook
from localaws.playbook.results import ItemResult, RunResult, Status, TaskResult
from localaws.playbook.runner import RunOptions

_COLORS = {Status.OK: "32", Status.CHANGED: "33", Status.SKIPPED: "36", Status.FAILED: "31"}


def _dump(value: Any) -> list[str]:
    """Return `value` as YAML lines, or as JSON when YAML cannot represent it."""
    if isinstance(value, str):
        return value.splitlines(keepends=True) or [""]
    try:
        text = yaml.safe_dump(value, default_flow_style=False, sort_keys=True, allow_unicode=True)
    except yaml.YAMLError:
        text = json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"
    return text.splitlines(keepends=True)


def format_diff(diff: dict[str, Any]) -> str:
    """Return a unified diff between the `before` and `after` views of a module result."""
    if not diff:
        return ""
    before, after = _dump(diff.get("before")), _dump(diff.get("after"))
    lines = difflib.unified_diff(before, after, fromfile="before", tofile="after")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def use_color(stream: TextIO) -> bool:
    """Return whether to colour output: only on a terminal and only while NO_COLOR is unset."""
    return "NO_COLOR" not in os.environ and stream.isatty()


class TextReporter:
    """Print one line per finished task and a recap line, for people."""

    def __init__(self, stream: TextIO | None = None, color: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.color = use_color(self.stream) if color is None else color
        self.options = RunOptions()

    def _write(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _status(self, status: Status, width: int = 8) -> str:
        text = str(status).ljust(width)
        return f"\033[{_COLORS[status]}m{text}\033[0m" if self.color else text

    def started(self, playbook: Playbook, options: RunOptions) -> None:
        """Store the options that shape the output, such as `diff`."""
        self.options = options

    def play_started(self, play: Play) -> None:
        """Print the play's header."""
        mode = " (check mode)" if self.options.check else ""
        self._write(f"PLAY [{play.name}]{mode} {play.location}")

    def task_finished(self, result: TaskResult) -> None:
        """Print the task's line, its items for a loop, and its diff with `--diff`."""
        kind = "handler " if result.handler else ""
        message = f": {result.message}" if result.message else ""
        self._write(f"{self._status(result.status)} {kind}{result.task} ({result.seconds:.2f}s){message}")
        if len(result.items) == 1:
            # The task's message already names its only item, so only the diff is left to show.
            item = result.items[0]
            if self.options.diff and item.status is Status.CHANGED:
                self._diff(item.diff)
        else:
            for item in result.items:
                self._item(item)
        if self.options.diff and result.status is Status.CHANGED and not result.items:
            self._diff(result.diff)

    def _item(self, item: ItemResult) -> None:
        message = f": {item.message}" if item.message else ""
        self._write(f"  {self._status(item.status)} item {item.item}{message}")
        if self.options.diff and item.status is Status.CHANGED:
            self._diff(item.diff)

    def _diff(self, diff: dict[str, Any]) -> None:
        text = format_diff(diff)
        if text:
            self.stream.write(text)

    def finished(self, result: RunResult) -> None:
        """Print the recap line, and where the failed task is when one failed."""
        counts = " ".join(f"{status}={count}" for status, count in result.counts.items())
        mode = " (check mode: nothing was changed)" if result.check_mode else ""
        self._write(f"RECAP {counts} time={result.seconds:.2f}s{mode}")
        failed = result.failed_task
        if failed is not None:
            self._write(f"FAILED task {failed.task!r} in play {failed.play!r} at {failed.location}: "
                        f"{failed.message}")

    def task_list(self, plays: list[ListedPlay]) -> None:
        """Print the tasks of each play with their tags, for `--list-tasks`."""
        for play in plays:
            self._write(f"PLAY [{play.name}] {play.path}:{play.line}")
            for task in play.tasks:
                tags = f"  TAGS: [{', '.join(task.tags)}]" if task.tags else ""
                self._write(f"  {task.name}{tags}  ({task.path}:{task.line})")


def _task_json(result: TaskResult) -> dict[str, Any]:
    return {
        "play": result.play,
        "task": result.task,
        "file": str(result.path),
        "line": result.line,
        "status": str(result.status),
        "message": result.message,
        "diff": result.diff,
        "seconds": round(result.seconds, 3),
        "handler": result.handler,
        "items": [{"item": item.item, "status": str(item.status), "message": item.message, "diff": item.diff}
                  for item in result.items],
    }


class JsonReporter:
    """Write one JSON document at the end of the run, with every task result and the recap."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.playbook: str | None = None

    def started(self, playbook: Playbook, options: RunOptions) -> None:
        """Remember which playbook runs."""
        self.playbook = str(playbook.path)

    def play_started(self, play: Play) -> None:
        """Print nothing until the end."""

    def task_finished(self, result: TaskResult) -> None:
        """Print nothing until the end."""

    def finished(self, result: RunResult) -> None:
        """Write the document with every result and the recap."""
        failed = result.failed_task
        document = {
            "playbook": self.playbook,
            "check_mode": result.check_mode,
            "tasks": [_task_json(task) for task in result.results],
            "recap": {
                **{str(status): count for status, count in result.counts.items()},
                "seconds": round(result.seconds, 3),
                "failed_task": _task_json(failed) if failed is not None else None,
            },
        }
        self.stream.write(json.dumps(document, indent=2, default=str) + "\n")
        self.stream.flush()

    def task_list(self, plays: list[ListedPlay]) -> None:
        """Write the task list as one JSON document."""
        document = {"plays": [
            {"name": play.name, "file": str(play.path), "line": play.line,
             "tasks": [{"name": task.name, "tags": list(task.tags), "file": str(task.path), "line": task.line}
                       for task in play.tasks]}
            for play in plays
        ]}
        self.stream.write(json.dumps(document, indent=2) + "\n")
        self.stream.flush()


class CollectingReporter:
    """Reporter that prints nothing and keeps every task result, for callers that format their own."""

    def __init__(self) -> None:
        self.results: list[TaskResult] = []

    def started(self, playbook: Playbook, options: RunOptions) -> None:
        pass

    def play_started(self, play: Play) -> None:
        pass

    def task_finished(self, result: TaskResult) -> None:
        self.results.append(result)

    def finished(self, result: RunResult) -> None:
        pass

    def task_list(self, plays: list[ListedPlay]) -> None:
        pass
