"""Run the tasks of a validated playbook, one module call at a time."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from localaws.errors import ToolkitError
from localaws.playbook.masking import Masker
from localaws.playbook.model import ListedPlay, Play, Playbook, Task
from localaws.playbook.modules.base import REGISTRY, ModuleContext
from localaws.playbook.results import ItemResult, ModuleResult, RunResult, Status, TaskResult
from localaws.playbook.templating import (
    Scope,
    TemplateError,
    expression_template,
    template_strings,
    variables_used,
)
from localaws.playbook.validation import type_error

CANNOT_PREDICT = "cannot predict in check mode"
ContextFactory = Callable[[bool], ModuleContext]


@dataclass(frozen=True)
class RunOptions:
    """How to run a playbook; the fields match the command line flags."""

    check: bool = False
    diff: bool = False
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    start_at: str | None = None
    list_tasks: bool = False
    json: bool = False
    # Run plays and their tasks last to first, as a teardown does; handlers are not run.
    reverse: bool = False


class Reporter(Protocol):
    """Receives the run's events; each implementation formats them once."""

    def started(self, playbook: Playbook, options: RunOptions) -> None: ...

    def play_started(self, play: Play) -> None: ...

    def task_finished(self, result: TaskResult) -> None: ...

    def finished(self, result: RunResult) -> None: ...

    def task_list(self, plays: list[ListedPlay]) -> None: ...


def is_selected(task: Task, options: RunOptions) -> bool:
    """Return whether `--tags` and `--skip-tags` let `task` run.

    As in Ansible, a task tagged `always` runs unless `always` or one of its
    other tags is skipped, and `all`, `tagged` and `untagged` select by kind.
    """
    if task.tags & options.skip_tags:
        return False
    if not options.tags or "all" in options.tags or "always" in task.tags:
        return True
    if "tagged" in options.tags and task.tags:
        return True
    if "untagged" in options.tags and not task.tags:
        return True
    return bool(task.tags & options.tags)


def item_label(item: Any) -> str:
    """Return a short label for a loop item: its `name` when it is a mapping with one."""
    if isinstance(item, dict) and "name" in item:
        item = item["name"]
    text = str(item)
    return text if len(text) <= 60 else text[:57] + "..."


def registered_value(result: ModuleResult) -> dict[str, Any]:
    """Return what `register:` stores for one module result."""
    return {
        **result.facts,
        "status": str(result.status),
        "changed": result.status is Status.CHANGED,
        "failed": result.status is Status.FAILED,
        "skipped": result.status is Status.SKIPPED,
        "message": result.message,
    }


def combined_status(statuses: list[Status]) -> Status:
    """Return the status of a looped task from the statuses of its items."""
    if Status.FAILED in statuses:
        return Status.FAILED
    if Status.CHANGED in statuses:
        return Status.CHANGED
    if all(status is Status.SKIPPED for status in statuses):
        return Status.SKIPPED
    return Status.OK


class Runner:
    """Run one playbook: tasks in order, handlers at the end of each play, stop at the first failure."""

    def __init__(self, playbook: Playbook, variables: Mapping[str, Any], context_factory: ContextFactory,
                 options: RunOptions, reporter: Reporter) -> None:
        self.playbook = playbook
        self.variables = dict(variables)
        self.context_factory = context_factory
        self.options = options
        self.reporter = reporter
        self.masker = Masker()
        self.registered: dict[str, Any] = {}
        # Registered names whose result check mode could not predict.
        self.unpredictable: set[str] = set()

    def run(self) -> RunResult:
        """Run every selected task and return the results; a failed task ends the run."""
        start = time.perf_counter()
        run_result = RunResult(check_mode=self.options.check)
        context = self.context_factory(self.options.check)
        self.reporter.started(self.playbook, self.options)
        reached_start = self.options.start_at is None

        for play in self.playbook.plays:
            self.reporter.play_started(play)
            notified: set[str] = set()
            for task in play.tasks:
                reached_start = reached_start or task.name == self.options.start_at
                if not reached_start or not is_selected(task, self.options):
                    self._register(task, ModuleResult(Status.SKIPPED, "not selected"))
                    continue
                result = self._run_task(play, task, context, handler=False)
                if self._record(run_result, result):
                    return self._finish(run_result, start)
                if result.status is Status.CHANGED:
                    notified.update(task.notify)
            for handler in play.handlers:
                if handler.name not in notified:
                    self._register(handler, ModuleResult(Status.SKIPPED, "not notified"))
                    continue
                result = self._run_task(play, handler, context, handler=True)
                if self._record(run_result, result):
                    return self._finish(run_result, start)
        return self._finish(run_result, start)

    def _record(self, run_result: RunResult, result: TaskResult) -> bool:
        """Add a task result and report it; return whether the run must stop."""
        run_result.results.append(result)
        self.reporter.task_finished(result)
        return result.status is Status.FAILED

    def _finish(self, run_result: RunResult, start: float) -> RunResult:
        run_result.seconds = time.perf_counter() - start
        self.reporter.finished(run_result)
        return run_result

    def _scope(self, play: Play, task: Task, extra: Mapping[str, Any] | None = None) -> Scope:
        templates = {**play.vars, **task.vars}
        values = {name: value for name, value in self.variables.items() if name not in templates}
        values.update(self.registered)
        values.update(extra or {})
        return Scope(values, templates)

    def _run_task(self, play: Play, task: Task, context: ModuleContext, handler: bool) -> TaskResult:
        start = time.perf_counter()
        items: list[ItemResult] = []
        if task.has_loop:
            result, items = self._run_loop(play, task, context)
        else:
            result = self._call(play, task, self._scope(play, task), context)
            self._register(task, result)

        return TaskResult(
            play=play.name, task=task.name, path=task.location.path, line=task.location.line,
            status=result.status, message=self.masker.text(result.message),
            diff=self.masker.data(result.diff) if result.status is Status.CHANGED else {},
            seconds=time.perf_counter() - start, items=tuple(items), handler=handler,
            facts=self.masker.data(result.facts), module=task.module,
        )

    def _run_loop(self, play: Play, task: Task,
                  context: ModuleContext) -> tuple[ModuleResult, list[ItemResult]]:
        try:
            loop_items = self._scope(play, task).render(task.loop)
        except TemplateError as error:
            result = self._template_failure(play, task, "'loop'", error)
            self._register(task, result)
            return result, []
        if not isinstance(loop_items, list):
            result = ModuleResult.failed(f"'loop' must give a list, got {type(loop_items).__name__}. "
                                         "Fix the loop expression.")
            self._register(task, result)
            return result, []

        results: list[ModuleResult] = []
        items: list[ItemResult] = []
        registered_items: list[dict[str, Any]] = []
        for item in loop_items:
            result = self._call(play, task, self._scope(play, task, {"item": item}), context)
            results.append(result)
            label = self.masker.text(item_label(item))
            items.append(ItemResult(label, result.status, self.masker.text(result.message),
                                    self.masker.data(result.diff) if result.status is Status.CHANGED else {},
                                    self.masker.data(result.facts)))
            registered_items.append({**registered_value(result), "item": item})
            # A failed item ends the loop, as a failed task ends the run.
            if result.status is Status.FAILED:
                break

        status = combined_status([result.status for result in results])
        if len(items) == 1:
            message = f"item {items[0].item}" + (f": {items[0].message}" if items[0].message else "")
        else:
            counts = {str(s): sum(1 for r in results if r.status is s) for s in Status}
            message = f"{len(items)} items: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            failed = next((item for item in items if item.status is Status.FAILED), None)
            if failed is not None:
                message += f"; item {failed.item} failed: {failed.message}"
        combined = ModuleResult(status, message)
        if task.register is not None:
            self.registered[task.register] = {**registered_value(combined), "results": registered_items}
            if any(CANNOT_PREDICT in result.message for result in results):
                self.unpredictable.add(task.register)
        return combined, items

    def _register(self, task: Task, result: ModuleResult) -> None:
        if task.register is None:
            return
        self.registered[task.register] = registered_value(result)
        if result.status is Status.SKIPPED and result.message.startswith(CANNOT_PREDICT):
            self.unpredictable.add(task.register)

    def _call(self, play: Play, task: Task, scope: Scope, context: ModuleContext) -> ModuleResult:
        """Evaluate `when`, render the arguments and call the module once."""
        for condition in task.when:
            try:
                value = condition if isinstance(condition, bool) else scope.evaluate(condition)
            except TemplateError as error:
                return self._template_failure(play, task, "'when'", error)
            if not value:
                return ModuleResult(Status.SKIPPED, f"condition is false: {condition}")

        module_class = REGISTRY[task.module]
        if self.options.check and not module_class.supports_check_mode:
            return ModuleResult(Status.SKIPPED, f"{CANNOT_PREDICT}: module {task.module!r} has no check mode")

        arguments: dict[str, Any] = {}
        for name, argument in module_class.arguments.items():
            if name not in task.arguments or task.arguments[name] is None:
                arguments[name] = copy.deepcopy(argument.default)
                continue
            try:
                value = scope.render(task.arguments[name])
            except TemplateError as error:
                return self._template_failure(play, task, f"argument {name!r}", error)
            if argument.secret:
                self.masker.add(value)
            reason = type_error(name, argument, value) if value is not None else None
            if reason is not None:
                return ModuleResult.failed(f"{reason} Fix the value or the variables it uses.")
            arguments[name] = value

        module_context = dataclasses.replace(context, variables={**self.variables, **self.registered})
        try:
            result = module_class().run(arguments, module_context)
        except ToolkitError as error:
            return ModuleResult.failed(str(error))
        except Exception as error:
            return ModuleResult.failed(f"module {task.module!r} raised {type(error).__name__}: {error}")
        if not isinstance(result, ModuleResult):
            return ModuleResult.failed(f"module {task.module!r} returned {type(result).__name__} "
                                       "instead of a ModuleResult; fix the module.")
        if self.options.check and result.check_unknown:
            message = f"{CANNOT_PREDICT}: {result.message}" if result.message else CANNOT_PREDICT
            return ModuleResult(Status.SKIPPED, message, facts=result.facts)
        return result

    def _template_failure(self, play: Play, task: Task, where: str, error: TemplateError) -> ModuleResult:
        """Return a failed result, or a skipped one when check mode could not predict a value it needs."""
        if self.options.check:
            unknown = sorted(self._names_used(play, task) & self.unpredictable)
            if unknown:
                names = ", ".join(repr(name) for name in unknown)
                return ModuleResult(Status.SKIPPED, f"{CANNOT_PREDICT}: depends on {names}, which an earlier "
                                    "task could not predict")
        return ModuleResult.failed(f"{where}: {error}. Fix the template or define the variable.")

    def _names_used(self, play: Play, task: Task) -> set[str]:
        values: list[Any] = [task.arguments, task.loop, list(task.vars.values()), list(play.vars.values())]
        values.extend(expression_template(c) for c in task.when if isinstance(c, str))
        names: set[str] = set()
        for value in values:
            for source in template_strings(value):
                names |= variables_used(source)
        return names
