"""The structure of a loaded playbook: plays and tasks, each located in its file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Keys a task may have besides its one module key.
TASK_KEYWORDS = ("name", "when", "loop", "register", "tags", "notify", "vars")
PLAY_KEYWORDS = ("name", "vars", "tasks", "handlers")
IMPORT_KEYWORDS = ("import_playbook", "name")


@dataclass(frozen=True)
class Location:
    """A line in a playbook file; `line` is 1-based and None when unknown."""

    path: Path
    line: int | None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)

    def at(self, line: int | None) -> Location:
        """Return the same file at `line`, or this location when `line` is None."""
        return Location(self.path, line if line is not None else self.line)


@dataclass(frozen=True)
class Problem:
    """One validation error, with where it is and which task it concerns."""

    location: Location
    message: str
    task: str | None = None

    def __str__(self) -> str:
        subject = f"task {self.task!r}: " if self.task else ""
        return f"{self.location}: {subject}{self.message}"


@dataclass
class Task:
    """One task or handler, as written; values may still contain templates."""

    name: str
    module: str
    arguments: dict[str, Any]
    location: Location
    # Line of each key of the task, and of each argument under its module key.
    key_lines: dict[str, int] = field(default_factory=dict)
    argument_lines: dict[str, int] = field(default_factory=dict)
    when: tuple[Any, ...] = ()
    loop: Any = None
    has_loop: bool = False
    register: str | None = None
    tags: frozenset[str] = frozenset()
    notify: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)
    var_lines: dict[str, int] = field(default_factory=dict)

    def location_of(self, key: str) -> Location:
        """Return the line of task key `key`, or the task's own line when the key is absent."""
        return self.location.at(self.key_lines.get(key))


@dataclass
class Play:
    """A named list of tasks and handlers with its own variables."""

    name: str
    location: Location
    tasks: list[Task]
    handlers: list[Task] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    var_lines: dict[str, int] = field(default_factory=dict)


@dataclass
class Playbook:
    """Every play to run, in order, with imported playbooks expanded in place."""

    path: Path
    plays: list[Play]
    # Every file read, including imported ones, in the order they were first read.
    files: list[Path] = field(default_factory=list)

    def tasks(self) -> list[tuple[Play, Task]]:
        """Return every task (not handlers) with its play, in run order."""
        return [(play, task) for play in self.plays for task in play.tasks]


@dataclass(frozen=True)
class ListedTask:
    """One task as `--list-tasks` shows it."""

    name: str
    tags: tuple[str, ...]
    path: Path
    line: int | None


@dataclass(frozen=True)
class ListedPlay:
    """One play as `--list-tasks` shows it: the tasks that would run, in order."""

    name: str
    path: Path
    line: int | None
    tasks: tuple[ListedTask, ...]
