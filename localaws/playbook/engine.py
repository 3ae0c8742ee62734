"""The public entry points: load, validate, list and run a playbook."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import localaws.playbook.modules  # noqa: F401 - importing the package registers every module.
from localaws.errors import PlaybookError
from localaws.playbook.loader import PlaybookLoader
from localaws.playbook.model import ListedPlay, ListedTask, Playbook, Problem
from localaws.playbook.reporter import JsonReporter, TextReporter
from localaws.playbook.results import RunResult
from localaws.playbook.runner import ContextFactory, Reporter, Runner, RunOptions, is_selected
from localaws.playbook.validation import check_playbook


def _raise(path: Path, problems: list[Problem]) -> None:
    lines = tuple(str(problem) for problem in problems)
    count = f"{len(lines)} error" + ("s" if len(lines) > 1 else "")
    listing = "\n".join(f"  {line}" for line in lines)
    message = f"playbook {path} is invalid ({count}); nothing was run. Fix these and run again:\n{listing}"
    raise PlaybookError(message, lines)


def load(path: Path | str) -> Playbook:
    """Load a playbook and its imports; raise `PlaybookError` listing every structural problem.

    Structural problems are YAML syntax, unknown keys, tasks without exactly
    one module, unknown modules, handlers that are not found and import cycles.
    """
    path = Path(path)
    loader = PlaybookLoader()
    playbook = loader.load(path)
    if loader.problems:
        _raise(path, loader.problems)
    return playbook


def validate(path: Path | str, variables: Mapping[str, Any]) -> None:
    """Raise `PlaybookError` listing every problem of a playbook, or return when it may run.

    On top of `load`, this checks each task's arguments against its module
    and each name a template uses against `variables`, vars and registers.
    """
    _validated(Path(path), variables)


def _validated(path: Path, variables: Mapping[str, Any]) -> Playbook:
    loader = PlaybookLoader()
    playbook = loader.load(path)
    problems = loader.problems + check_playbook(playbook, variables)
    if problems:
        _raise(path, problems)
    return playbook


def _check_start_at(playbook: Playbook, start_at: str | None) -> None:
    if start_at is None:
        return
    names = [task.name for _, task in playbook.tasks()]
    if start_at in names:
        return
    matches = difflib.get_close_matches(start_at, names, n=3, cutoff=0.5)
    hint = f"; close matches: {', '.join(repr(name) for name in matches)}" if matches else ""
    raise PlaybookError(f"start-at task {start_at!r} not found in playbook {playbook.path}{hint}. "
                        "Give the name of a task (see --list-tasks).")


def list_tasks(path: Path | str, options: RunOptions | None = None) -> list[ListedPlay]:
    """Return the tasks each play would run under `options` (tags, skip_tags, start_at), running nothing."""
    options = options or RunOptions()
    playbook = load(path)
    _check_start_at(playbook, options.start_at)
    reached_start = options.start_at is None
    plays = []
    for play in playbook.plays:
        tasks = []
        for task in play.tasks:
            reached_start = reached_start or task.name == options.start_at
            if reached_start and is_selected(task, options):
                tasks.append(ListedTask(task.name, tuple(sorted(task.tags)), task.location.path,
                                        task.location.line))
        plays.append(ListedPlay(play.name, play.location.path, play.location.line, tuple(tasks)))
    return plays


def default_reporter(options: RunOptions) -> Reporter:
    """Return the JSON reporter when `options.json` is set, else the text reporter; both write to stdout."""
    return JsonReporter() if options.json else TextReporter()


def run(path: Path | str, variables: Mapping[str, Any], context_factory: ContextFactory,
        options: RunOptions | None = None, reporter: Reporter | None = None) -> RunResult:
    """Validate a playbook, then run it and report each task; return every result.

    Validation errors raise `PlaybookError` before any module runs. A failed
    task does not raise: it ends the run, and `RunResult.failed_task` names it.
    With `options.list_tasks`, print the task list and return an empty result.
    """
    options = options or RunOptions()
    reporter = reporter or default_reporter(options)
    if options.list_tasks:
        reporter.task_list(list_tasks(path, options))
        return RunResult(check_mode=options.check)

    playbook = _validated(Path(path), variables)
    _check_start_at(playbook, options.start_at)
    if options.reverse:
        playbook = _reversed(playbook)
    return Runner(playbook, variables, context_factory, options, reporter).run()


def _reversed(playbook: Playbook) -> Playbook:
    plays = [dataclasses.replace(play, tasks=play.tasks[::-1], handlers=[]) for play in playbook.plays[::-1]]
    return dataclasses.replace(playbook, plays=plays)
