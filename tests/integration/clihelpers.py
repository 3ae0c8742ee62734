"""Run `invoke` as a user does: a real process in the project, with a private state folder and ports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import PROJECT

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
