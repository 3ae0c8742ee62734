"""Results of modules and tasks: data first, formatted once by the reporter."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
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

    `diff` holds `before` and `after` views of what the module manages, with
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
