"""Run `invoke` as a user does: a real process in the project, with a private state folder and ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.conftest import PROJECT, make_state_dir, stack_environment

INVOKE = str(Path(sys.executable).parent / "invoke")


class Cli:
    """Run `invoke` in the project with a private state folder, env file and ports."""

    def __init__(self, environment: dict[str, str]) -> None:
        self.environment = environment

    def run(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([INVOKE, *arguments], cwd=PROJECT, env=self.environment,
                                capture_output=True, text=True, timeout=300, check=False)
        if check and result.returncode != 0:
            pytest.fail(f"invoke {' '.join(arguments)} exited {result.returncode}:\n"
                        f"{result.stdout}\n{result.stderr}")
        return result


@contextmanager
def local_dev_stack(prefix: str) -> Iterator[Cli]:
    """Run `invoke local-dev` once in a private stack; stop and remove the stack on exit."""
    root = make_state_dir(prefix)
    runner = Cli({**os.environ, **stack_environment(root)})
    try:
        runner.run("local-dev")
        yield runner
    finally:
        runner.run("stack.down", check=False)
        shutil.rmtree(root, ignore_errors=True)
