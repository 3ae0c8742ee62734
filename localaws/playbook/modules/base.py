"""The contract between the engine and its modules.

A module reads the current state, compares it with its arguments, then acts
or returns `ok`. Read-only probes stay in their own methods, apart from the
calls that change anything, so check mode runs only the probes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from localaws.playbook.results import ModuleResult

MASK = "********"


@dataclass(frozen=True)
class Argument:
    """One argument a module accepts."""

    type: type | tuple[type, ...]
    required: bool = False
    default: Any = None
    choices: tuple[Any, ...] = ()
    # A secret argument's value is never shown in output, diffs or errors.
    secret: bool = False
    help: str = ""


@dataclass(frozen=True)
class Target:
    """Target of the playbooks: the emulator (`local`) or a real AWS account (`aws`)."""

    name: str
    region: str
    # None on the `aws` target, so boto3 uses the real endpoints and the user's own credentials.
    endpoint_url: str | None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)


@dataclass
class ModuleContext:
    """Context of a module call: everything a module may use besides its arguments."""

    target: Target
    check_mode: bool
    project_dir: Path
    # Folder for build artifacts (Lambda zips and their dependency caches), inside the state folder.
    build_dir: Path
    client: Callable[[str], Any]
    # Interpreter that Lambda dependencies are built for on the `local` target: the emulator runs
    # functions on its own virtualenv's Python.
    build_python: Path | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)


class Module:
    """Base class of every module; subclasses set `name` and `arguments` and implement `run`."""

    name: ClassVar[str]
    arguments: ClassVar[dict[str, Argument]]
    # False for modules whose check mode cannot tell what would change; the engine then
    # reports the task with a note instead of guessing.
    supports_check_mode: ClassVar[bool] = True

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        raise NotImplementedError


REGISTRY: dict[str, type[Module]] = {}


def register(module: type[Module]) -> type[Module]:
    """Add a module class to the registry under its `name`; use as a class decorator."""
    if module.name in REGISTRY:
        raise ValueError(f"module {module.name!r} is registered twice")
    REGISTRY[module.name] = module
    return module
