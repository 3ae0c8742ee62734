"""Results of modules and tasks: data first, formatted once by the reporter."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Status(enum.StrEnum):
    """Outcome of one task, in Ansible's vocabulary."""

    OK = "ok"
    CHANGED = "changed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class ModuleResult:
    """What one module call did.

    `diff` contains `before` and `after` views of what the module manages, with
    every secret value masked. `facts` is what `register:` stores for later
    tasks. In check mode, `changed` means "would change"; a module that cannot
    tell sets `check_unknown` and says why in `message`.
    """

    status: Status
    message: str = ""
    diff: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    check_unknown: bool = False

    @classmethod
    def ok(cls, message: str = "", facts: dict[str, Any] | None = None) -> ModuleResult:
        return cls(Status.OK, message, {}, facts or {})

    @classmethod
    def changed(cls, message: str, before: Any, after: Any,
                facts: dict[str, Any] | None = None) -> ModuleResult:
        return cls(Status.CHANGED, message, {"before": before, "after": after}, facts or {})

    @classmethod
    def failed(cls, message: str) -> ModuleResult:
        return cls(Status.FAILED, message)


@dataclass(frozen=True)
class ItemResult:
    """The outcome of one item of a looped task; `item` is a short label of the item."""

    item: str
    status: Status
    message: str = ""
    diff: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one task as reported, with secrets already masked."""

    play: str
    task: str
    path: Path
    line: int | None
    status: Status
    message: str = ""
    diff: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    items: tuple[ItemResult, ...] = ()
    handler: bool = False
    # The module's facts (ids, ARNs, URLs), masked like the rest; a looped task's are on its items.
    facts: dict[str, Any] = field(default_factory=dict)
    module: str = ""

    @property
    def location(self) -> str:
        """The task's file and line as `path:line`."""
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)


@dataclass
class RunResult:
    """Every task result of one playbook run, in the order the tasks finished."""

    results: list[TaskResult] = field(default_factory=list)
    seconds: float = 0.0
    check_mode: bool = False

    @property
    def counts(self) -> dict[Status, int]:
        """Number of tasks per status, with every status present."""
        counts = dict.fromkeys(Status, 0)
        for result in self.results:
            counts[result.status] += 1
        return counts

    @property
    def failed_task(self) -> TaskResult | None:
        """The task that stopped the run, or None when every task succeeded."""
        return next((result for result in self.results if result.status is Status.FAILED), None)

    @property
    def changed(self) -> bool:
        """Whether any task changed something (in check mode: would change)."""
        return any(result.status is Status.CHANGED for result in self.results)
