"""Read playbook files: YAML with line numbers, imports followed, structure checked.

Every problem found is collected as a `Problem` instead of raised, so one run
of the validator reports all of them.
"""

from __future__ import annotations

import difflib
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from localaws.playbook.model import (
    IMPORT_KEYWORDS,
    PLAY_KEYWORDS,
    TASK_KEYWORDS,
    Location,
    Play,
    Playbook,
    Problem,
    Task,
)
from localaws.playbook.modules.base import REGISTRY


class LineDict(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key."""

    line: int
    key_lines: dict[Any, int]


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings are `LineDict`s and whose duplicate keys are errors."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found an unhashable key",
                key_node.start_mark)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}",
                key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def plain(value: Any) -> Any:
    """Return `value` with every `LineDict` inside it turned into a plain dict."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def suggest(name: str, candidates: list[str] | tuple[str, ...]) -> str:
    """Return "; did you mean 'x'?" for the closest candidate, or an empty string."""
    matches = difflib.get_close_matches(name, candidates, n=1)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def read_yaml(path: Path) -> tuple[Any, Problem | None]:
    """Parse one YAML file; return its data, or a problem located at the syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        return None, Problem(Location(path, None), f"cannot read the playbook: {error.strerror}. "
                             "Check the path.")
    try:
        return yaml.load(text, Loader=_LineLoader), None  # noqa: S506 - _LineLoader is a SafeLoader.
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = error.problem or error.context or "invalid YAML"
        return None, Problem(Location(path, line), f"YAML syntax error: {reason}. Fix the YAML.")
    except yaml.YAMLError as error:
        return None, Problem(Location(path, None), f"YAML syntax error: {error}. Fix the YAML.")


class PlaybookLoader:
    """Load a playbook and the playbooks it imports, collecting every structural problem."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.files: list[Path] = []

    def load(self, path: Path) -> Playbook:
        """Read `path` and its imports; problems are left in `self.problems`."""
        path = Path(path)
        plays = self._load_file(path, [])
        return Playbook(path, plays, list(self.files))

    def _problem(self, location: Location, message: str, task: str | None = None) -> None:
        self.problems.append(Problem(location, message, task))

    def _load_file(self, path: Path, importers: list[Path]) -> list[Play]:
        resolved = path.resolve()
        if resolved not in self.files:
            self.files.append(resolved)
        data, problem = read_yaml(path)
        if problem is not None:
            self.problems.append(problem)
            return []
        if data is None:
            self._problem(Location(path, 1), "the playbook is empty; add a list of plays.")
            return []
        if not isinstance(data, list):
            line = data.line if isinstance(data, LineDict) else 1
            self._problem(Location(path, line), "a playbook must be a list of plays; "
                          "start each play with '- name:'.")
            return []

        plays: list[Play] = []
        for entry in data:
            if not isinstance(entry, LineDict):
                self._problem(Location(path, None), f"a playbook entry must be a mapping, got {entry!r}.")
            elif "import_playbook" in entry:
                plays.extend(self._import(path, entry, [*importers, resolved]))
            else:
                play = self._play(path, entry)
                if play is not None:
                    plays.append(play)
        return plays

    def _import(self, path: Path, entry: LineDict, chain: list[Path]) -> list[Play]:
        location = Location(path, entry.key_lines["import_playbook"])
        for key in entry:
            if key not in IMPORT_KEYWORDS:
                self._problem(Location(path, entry.key_lines[key]),
                              f"unknown key {key!r} in import_playbook{suggest(str(key), IMPORT_KEYWORDS)}")
        target = entry["import_playbook"]
        if not isinstance(target, str) or not target:
            self._problem(location, "import_playbook needs a file name, relative to this playbook.")
            return []

        imported = path.parent / target
        if imported.resolve() in chain:
            cycle = " -> ".join(str(step) for step in [*chain, imported.resolve()])
            self._problem(location, f"import cycle: {cycle}. Remove one of these imports.")
            return []
        if not imported.is_file():
            self._problem(location, f"imported playbook {str(imported)!r} not found. "
                          "Check the path, relative to the importing file.")
            return []
        return self._load_file(imported, chain)

    def _play(self, path: Path, entry: LineDict) -> Play | None:
        location = Location(path, entry.line)
        for key in entry:
            if key not in PLAY_KEYWORDS:
                self._problem(location.at(entry.key_lines[key]),
                              f"unknown play keyword {key!r}{suggest(str(key), PLAY_KEYWORDS)}")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            self._problem(location, "a play needs a 'name' (a non-empty string).")
            name = "(unnamed play)"

        variables, var_lines = self._vars(location, entry, f"play {name!r}")
        tasks_data = entry.get("tasks")
        if not isinstance(tasks_data, list) or not tasks_data:
            self._problem(location.at(entry.key_lines.get("tasks")),
                          f"play {name!r} has no tasks; add a 'tasks:' list.")
            tasks_data = []
        handlers_data = entry.get("handlers", [])
        if not isinstance(handlers_data, list):
            self._problem(location.at(entry.key_lines.get("handlers")),
                          f"'handlers' of play {name!r} must be a list of tasks.")
            handlers_data = []

        tasks = [task for item in tasks_data if (task := self._task(location, item, False)) is not None]
        handlers = [task for item in handlers_data if (task := self._task(location, item, True)) is not None]
        self._check_handlers(tasks, handlers)
        return Play(name, location, tasks, handlers, variables, var_lines)

    def _vars(self, location: Location, entry: LineDict, owner: str) -> tuple[dict[str, Any], dict[str, int]]:
        value = entry.get("vars")
        if value is None:
            return {}, {}
        if not isinstance(value, LineDict):
            self._problem(location.at(entry.key_lines.get("vars")), f"'vars' of {owner} must be a mapping.")
            return {}, {}
        for key in value:
            if not isinstance(key, str) or not key.isidentifier():
                self._problem(location.at(value.key_lines[key]),
                              f"variable name {key!r} of {owner} is invalid; use letters, digits and '_'.")
        return plain(value), {str(key): line for key, line in value.key_lines.items()}

    def _task(self, play_location: Location, entry: Any, handler: bool) -> Task | None:
        kind = "handler" if handler else "task"
        if not isinstance(entry, LineDict):
            self._problem(play_location, f"a {kind} must be a mapping, got {entry!r}.")
            return None
        location = play_location.at(entry.line)
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            self._problem(location, f"a {kind} needs a 'name' (a non-empty string).")
            name = f"({kind} at line {entry.line})"

        module = self._module_key(location, entry, name)
        arguments, argument_lines = self._arguments(location, entry, module, name)
        if arguments is None:
            # The argument checks would only repeat this problem.
            module, arguments = None, {}
        variables, var_lines = self._vars(location, entry, f"{kind} {name!r}")
        task = Task(name, module or "", arguments, location,
                    key_lines={str(key): line for key, line in entry.key_lines.items()},
                    argument_lines=argument_lines, vars=variables, var_lines=var_lines)
        self._task_options(task, entry, handler)
        return task

    def _module_key(self, location: Location, entry: LineDict, name: str) -> str | None:
        candidates = [str(key) for key in entry if key not in TASK_KEYWORDS]
        modules = [key for key in candidates if key in REGISTRY]
        if len(modules) > 1:
            self._problem(location, f"the task has more than one module ({', '.join(modules)}); "
                          "split it into one task per module.", name)
            return None
        others = [key for key in candidates if key not in modules]
        for key in others:
            line = entry.key_lines.get(key)
            if modules or difflib.get_close_matches(key, TASK_KEYWORDS, n=1):
                self._problem(location.at(line), f"unknown task keyword {key!r}{suggest(key, TASK_KEYWORDS)}",
                              name)
            else:
                self._problem(location.at(line),
                              f"unknown module {key!r}{suggest(key, sorted(REGISTRY))}", name)
        if modules:
            return modules[0]
        if not candidates:
            self._problem(location, "the task has no module; add one module key with its arguments.", name)
        return None

    def _arguments(self, location: Location, entry: LineDict, module: str | None,
                   name: str) -> tuple[dict[str, Any] | None, dict[str, int]]:
        if module is None:
            return {}, {}
        value = entry[module]
        if value is None:
            return {}, {}
        if not isinstance(value, LineDict):
            self._problem(location.at(entry.key_lines[module]),
                          f"the arguments of module {module!r} must be a mapping of name: value.", name)
            return None, {}
        return plain(value), {str(key): line for key, line in value.key_lines.items()}

    def _task_options(self, task: Task, entry: LineDict, handler: bool) -> None:
        if "when" in entry:
            conditions = entry["when"] if isinstance(entry["when"], list) else [entry["when"]]
            valid = []
            for condition in conditions:
                if isinstance(condition, str) and condition.strip().startswith("{{"):
                    self._problem(task.location_of("when"), "'when' is an expression without braces; "
                                  f"write when: {condition.strip()[2:-2].strip()}", task.name)
                elif not isinstance(condition, (str, bool)):
                    self._problem(task.location_of("when"),
                                  f"'when' must be an expression or a list of them, got {condition!r}.",
                                  task.name)
                else:
                    valid.append(condition)
            task.when = tuple(valid)
        if "loop" in entry:
            task.has_loop = True
            task.loop = plain(entry["loop"])
            if not isinstance(task.loop, (list, str)):
                self._problem(task.location_of("loop"), "'loop' must be a list or a template giving one.",
                              task.name)
        register = entry.get("register")
        if register is not None:
            if isinstance(register, str) and register.isidentifier():
                task.register = register
            else:
                self._problem(task.location_of("register"),
                              f"register name {register!r} is invalid; use letters, digits and '_'.",
                              task.name)
        task.tags = frozenset(self._names(task, entry, "tags"))
        task.notify = tuple(self._names(task, entry, "notify"))
        if handler and task.notify:
            self._problem(task.location_of("notify"), "a handler cannot notify other handlers.", task.name)

    def _names(self, task: Task, entry: LineDict, key: str) -> list[str]:
        value = entry.get(key)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) and item for item in values):
            self._problem(task.location_of(key), f"'{key}' must be a name or a list of names.", task.name)
            return []
        return list(values)

    def _check_handlers(self, tasks: list[Task], handlers: list[Task]) -> None:
        names = [handler.name for handler in handlers]
        for task in tasks:
            for notified in task.notify:
                if notified not in names:
                    self._problem(task.location_of("notify"), f"notified handler {notified!r} not found in "
                                  f"this play's handlers{suggest(notified, names)}", task.name)
