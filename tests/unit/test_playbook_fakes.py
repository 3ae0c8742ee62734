"""Fake modules and helpers for the playbook engine tests; this file contains no tests.

The fakes keep their state in `STORE` and record each call in `CALLS`, so a
test can tell what ran, in which order, and that nothing ran at all.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from localaws.errors import ConfigError
from localaws.playbook import RunOptions, RunResult, TextReporter, run
from localaws.playbook.modules.base import REGISTRY, Argument, Module, ModuleContext, Target
from localaws.playbook.results import ModuleResult, Status

STORE: dict[str, Any] = {}
CALLS: list[tuple[str, dict[str, Any], bool]] = []
SECRET = "hunter2-very-secret"


class FakeSet(Module):
    """Set `key` to `value` in `STORE`; `state: absent` removes it."""

    name = "fake_set"
    arguments: ClassVar[dict[str, Argument]] = {
        "key": Argument(str, required=True),
        "value": Argument((str, int, bool, list, dict), default=None),
        "state": Argument(str, default="present", choices=("present", "absent")),
        "count": Argument(int, default=1),
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        CALLS.append((self.name, arguments, context.check_mode))
        key, value = arguments["key"], arguments["value"]
        facts = {"key": key, "value": value}
        existed, before = key in STORE, STORE.get(key)
        if arguments["state"] == "absent":
            if not existed:
                return ModuleResult.ok(f"{key} is absent", facts)
            if not context.check_mode:
                del STORE[key]
            return ModuleResult.changed(f"removed {key}", {key: before}, {}, facts)
        if existed and before == value:
            return ModuleResult.ok(f"{key} is up to date", facts)
        if not context.check_mode:
            STORE[key] = value
        return ModuleResult.changed(f"set {key}", {key: before} if existed else {}, {key: value}, facts)


class FakeFail(Module):
    """Raise the error that `kind` names, to test how the engine reports it."""

    name = "fake_fail"
    arguments: ClassVar[dict[str, Argument]] = {
        "message": Argument(str, default="it broke"),
        "kind": Argument(str, default="toolkit", choices=("toolkit", "runtime", "result")),
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        CALLS.append((self.name, arguments, context.check_mode))
        if arguments["kind"] == "toolkit":
            raise ConfigError(arguments["message"])
        if arguments["kind"] == "runtime":
            raise RuntimeError(arguments["message"])
        return ModuleResult.failed(arguments["message"])


class FakeSecret(Module):
    """Store a password; its message and diff carry the value, so the engine must mask it."""

    name = "fake_secret"
    arguments: ClassVar[dict[str, Argument]] = {
        "name": Argument(str, required=True),
        "password": Argument(str, required=True, secret=True),
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        CALLS.append((self.name, arguments, context.check_mode))
        password = arguments["password"]
        if STORE.get(arguments["name"]) == password:
            return ModuleResult.ok(f"password {password} unchanged")
        if not context.check_mode:
            STORE[arguments["name"]] = password
        return ModuleResult.changed(f"set password to {password}", {"password": None}, {"password": password})


class FakeNoCheck(Module):
    """Record a call; it cannot run in check mode."""

    name = "fake_nocheck"
    supports_check_mode = False
    arguments: ClassVar[dict[str, Argument]] = {"key": Argument(str, required=True)}

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        CALLS.append((self.name, arguments, context.check_mode))
        STORE[arguments["key"]] = "nocheck"
        return ModuleResult.changed("ran", None, "nocheck")


class FakeUnknown(Module):
    """Report `check_unknown` in check mode, and a changed result otherwise."""

    name = "fake_unknown"
    arguments: ClassVar[dict[str, Argument]] = {"key": Argument(str, required=True)}

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        CALLS.append((self.name, arguments, context.check_mode))
        if context.check_mode:
            return ModuleResult(Status.CHANGED, "depends on a build", check_unknown=True)
        return ModuleResult.changed("built", None, "built", {"arn": f"arn:{arguments['key']}"})


FAKES: list[type[Module]] = [FakeSet, FakeFail, FakeSecret, FakeNoCheck, FakeUnknown]


@pytest.fixture
def fakes() -> Iterator[None]:
    """Register the fake modules for one test, with an empty store and call list."""
    STORE.clear()
    CALLS.clear()
    saved = {fake.name: REGISTRY.get(fake.name) for fake in FAKES}
    for fake in FAKES:
        REGISTRY[fake.name] = fake
    yield
    for name, previous in saved.items():
        if previous is None:
            REGISTRY.pop(name, None)
        else:
            REGISTRY[name] = previous


def write(folder: Path, name: str, text: str) -> Path:
    """Write a playbook file from indented text and return its path."""
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def context_factory(check_mode: bool) -> ModuleContext:
    """Build a module context that needs no services."""
    return ModuleContext(
        target=Target("local", "us-east-1", "http://127.0.0.1:4566"),
        check_mode=check_mode,
        project_dir=Path.cwd(),
        build_dir=Path.cwd(),
        client=lambda service: None,
    )


def run_text(path: Path, variables: dict[str, Any] | None = None,
             options: RunOptions | None = None) -> tuple[RunResult, str]:
    """Run a playbook with the plain text reporter; return the result and the output."""
    stream = io.StringIO()
    reporter = TextReporter(stream, color=False)
    result = run(path, variables or {}, context_factory, options or RunOptions(), reporter)
    return result, stream.getvalue()


def called(name: str = "fake_set") -> list[dict[str, Any]]:
    """Return the arguments of each call of module `name`, in call order."""
    return [arguments for module, arguments, _ in CALLS if module == name]
