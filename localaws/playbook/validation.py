"""Check a loaded playbook against the module registry and the variables it will have.

Both checks run before any task, so a typo fails the run before anything changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from localaws.playbook.loader import suggest
from localaws.playbook.model import Location, Play, Playbook, Problem, Task
from localaws.playbook.modules.base import MASK, REGISTRY, Argument
from localaws.playbook.templating import (
    BUILTIN_NAMES,
    TemplateError,
    contains_template,
    expression_template,
    is_template,
    template_strings,
    variables_used,
)


def describe_value(value: Any, argument: Argument) -> str:
    """Return a short view of an argument's value for a message; a secret shows as a mask."""
    if argument.secret:
        return MASK
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_names(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(kind.__name__ for kind in types)


def type_error(name: str, argument: Argument, value: Any) -> str | None:
    """Return why `value` does not fit `argument`'s type and choices, or None when it fits."""
    types = argument.type if isinstance(argument.type, tuple) else (argument.type,)
    # bool is a subclass of int in Python, but `enabled: yes` for a count is a mistake.
    fits = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not fits and float in types and isinstance(value, int) and not isinstance(value, bool):
        fits = True
    if not fits:
        return (f"argument {name!r} must be {_type_names(argument.type)}, got {type(value).__name__} "
                f"{describe_value(value, argument)}.")
    if argument.choices and value not in argument.choices:
        options = ", ".join(repr(choice) for choice in argument.choices)
        return f"argument {name!r} must be one of {options}, got {describe_value(value, argument)}."
    return None


def check_arguments(task: Task) -> list[Problem]:
    """Check a task's literal arguments against its module: names, required ones, types and choices."""
    module = REGISTRY.get(task.module)
    if module is None:
        return []
    problems = []
    accepted = sorted(module.arguments)
    for name, value in task.arguments.items():
        line = task.argument_lines.get(name, task.key_lines.get(task.module))
        argument = module.arguments.get(name)
        if argument is None:
            known = ", ".join(accepted) or "none"
            message = f"unknown argument {name!r} of module {task.module!r}{suggest(name, accepted)}"
            problems.append(Problem(task.location.at(line), f"{message} (accepted: {known})", task.name))
        elif value is not None and not is_template(value) and not contains_template(value):
            reason = type_error(name, argument, value)
            if reason is not None:
                problems.append(Problem(task.location.at(line), reason, task.name))
    for name, argument in module.arguments.items():
        if argument.required and task.arguments.get(name) is None:
            message = f"missing required argument {name!r} of module {task.module!r}."
            problems.append(Problem(task.location_of(task.module), message, task.name))
    return problems


@dataclass(frozen=True)
class _Source:
    """One templated value of a task: what it is, where it is, and whether `item` is defined there."""

    label: str
    line: int | None
    value: Any
    loop_item: bool


def _task_sources(task: Task) -> list[_Source]:
    sources = [_Source(f"argument {name!r}", task.argument_lines.get(name), value, task.has_loop)
               for name, value in task.arguments.items()]
    for condition in task.when:
        if isinstance(condition, str):
            sources.append(_Source("'when'", task.key_lines.get("when"), expression_template(condition),
                                   task.has_loop))
    if task.has_loop:
        sources.append(_Source("'loop'", task.key_lines.get("loop"), task.loop, False))
    return sources


class VariableChecker:
    """Check that every name a template uses is defined where the task runs.

    A task can use the caller's variables, its play's and its own vars, what
    earlier tasks registered, and `item` inside a loop. Vars are followed to
    the names their own templates use.
    """

    def __init__(self, playbook: Playbook, variables: Mapping[str, Any]) -> None:
        self.playbook = playbook
        self.caller = set(variables)
        self.registered_by: dict[str, Task] = {}
        for play in playbook.plays:
            for task in [*play.tasks, *play.handlers]:
                if task.register is not None:
                    self.registered_by.setdefault(task.register, task)
        self.problems: list[Problem] = []

    def check(self) -> list[Problem]:
        """Return a problem for each undefined name, in playbook order."""
        registered: set[str] = set()
        for play in self.playbook.plays:
            for task in play.tasks:
                self._check_task(play, task, registered)
                if task.register is not None:
                    registered.add(task.register)
            # Handlers run after every task of the play.
            for handler in play.handlers:
                self._check_task(play, handler, registered)
                if handler.register is not None:
                    registered.add(handler.register)
        return self.problems

    def _check_task(self, play: Play, task: Task, registered: set[str]) -> None:
        templates: dict[str, tuple[Any, str]] = {}
        for name, value in play.vars.items():
            templates[name] = (value, f"play var {name!r} ({play.location.at(play.var_lines.get(name))})")
        for name, value in task.vars.items():
            templates[name] = (value, f"task var {name!r} ({task.location.at(task.var_lines.get(name))})")
        # Vars hide the caller's variables of the same name, and registered results hide vars.
        defined = (self.caller - set(templates)) | registered | BUILTIN_NAMES
        for source in _task_sources(task):
            scope_names = defined | {"item"} if source.loop_item else defined
            location = task.location.at(source.line)
            for name, via in self._missing(source.value, scope_names, templates, location, task.name, ()):
                self._report(task, source, name, via, registered)

    def _missing(self, value: Any, defined: set[str], templates: dict[str, tuple[Any, str]],
                 location: Location, task_name: str,
                 via: tuple[tuple[str, str], ...]) -> Iterable[tuple[str, tuple[tuple[str, str], ...]]]:
        """Yield each undefined name in `value` with the chain of vars that led to it."""
        for source in template_strings(value):
            try:
                names = variables_used(source)
            except TemplateError as error:
                self.problems.append(Problem(location, f"{error}. Fix the template.", task_name))
                continue
            for name in sorted(names):
                if name in defined:
                    continue
                if name not in templates:
                    yield name, via
                elif any(name == step for step, _ in via):
                    chain = " -> ".join([label for _, label in via])
                    self.problems.append(Problem(location, f"variable {name!r} refers to itself through "
                                                 f"{chain}; rename one of them.", task_name))
                else:
                    template, label = templates[name]
                    yield from self._missing(template, defined, templates, location, task_name,
                                             (*via, (name, label)))

    def _report(self, task: Task, source: _Source, name: str, via: tuple[tuple[str, str], ...],
                registered: set[str]) -> None:
        message = f"undefined variable {name!r} in {source.label}"
        if via:
            message += f", used through {' -> '.join(label for _, label in via)}"
        later = self.registered_by.get(name)
        if name == "item" and not source.loop_item:
            message += "; 'item' is defined only in a task with 'loop'."
        elif later is not None and name not in registered:
            message += (f"; it is registered by task {later.name!r} ({later.location}), which runs later. "
                        "Move that task before this one.")
        else:
            candidates = sorted(self.caller | registered | set(self.registered_by))
            hint = suggest(name, candidates)
            message += hint if hint else "; define it in vars or pass it in as a setting."
        self.problems.append(Problem(task.location.at(source.line), message, task.name))


def check_playbook(playbook: Playbook, variables: Mapping[str, Any]) -> list[Problem]:
    """Return every argument and variable problem of a structurally valid playbook."""
    problems: list[Problem] = []
    for play in playbook.plays:
        for task in [*play.tasks, *play.handlers]:
            problems.extend(check_arguments(task))
    problems.extend(VariableChecker(playbook, variables).check())
    return problems
