"""Helpers shared by every task: settings from the Invoke context, errors as exit codes, output."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from invoke.context import Context
from invoke.exceptions import Exit

from localaws.errors import ConfigError, ToolkitError
from localaws.settings import Settings, resolve_settings

F = TypeVar("F", bound=Callable[..., Any])

SET_HELP = "Set a setting for this run and keep it in the env file, as KEY=VALUE; repeatable."


def parse_assignments(assignments: Iterable[str]) -> dict[str, str]:
    """Turn `--set KEY=VALUE` flags into a mapping."""
    values = {}
    for assignment in assignments:
        key, separator, value = assignment.partition("=")
        if not separator or not key.strip():
            raise ConfigError(f"invalid --set value {assignment!r}: expected KEY=VALUE, "
                              "for example --set EMULATOR_PORT=4567.")
        values[key.strip().upper()] = value
    return values


def project_dir(ctx: Context) -> Path:
    return Path(ctx.config.get("project_dir") or os.getcwd())


def load_settings(ctx: Context, assignments: Iterable[str] = (), **flags: Any) -> Settings:
    """Resolve settings for one task: invoke.yaml, env file, environment, then flags."""
    values: dict[str, Any] = parse_assignments(assignments)
    values.update({key: value for key, value in flags.items() if value is not None})
    project_settings = dict(ctx.config.get("settings", {}) or {})
    return resolve_settings(project_dir(ctx), project_settings, values)


def reports_errors(function: F) -> F:
    """Print a `ToolkitError` as one clear message and exit 1, without a traceback."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except ToolkitError as error:
            raise Exit(f"error: {error}", code=1) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None
        except BrokenPipeError:
            # The reader of our output went away (`invoke email.list | head`): stop quietly.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise Exit(code=0) from None

    return wrapper  # type: ignore[return-value]


def say(message: str) -> None:
    print(message, flush=True)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
