"""Fixtures that start a real, private stack for integration tests.

Each stack gets its own state folder, env file and free loopback ports, so a
developer's running environment is never touched. The emulator's virtualenv
is shared between test runs through a cache folder, since installing it takes
about 15 s.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from localaws.database.setup import setup_database
from localaws.playbook import CollectingReporter, RunOptions
from localaws.provisioning import apply_playbook
from localaws.runtime import host
from localaws.settings import Settings, resolve_settings
from tests.integration.mailhelpers import CatcherProcess

PROJECT = Path(__file__).resolve().parents[2]
# The tutor system's `shared` package, imported as the Lambda functions import it.
if str(PROJECT / "src") not in sys.path:
    sys.path.insert(0, str(PROJECT / "src"))


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def project_settings() -> dict[str, object]:
    data = yaml.safe_load((PROJECT / "invoke.yaml").read_text())
    return dict(data.get("settings") or {})


def emulator_cache() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "localaws"
    cache.mkdir(parents=True, exist_ok=True)
    return cache / "ministack-venv"


def make_state_dir(prefix: str) -> Path:
    """Create a state folder the postgres user can traverse (pytest's own tmp folders are 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o711)  # noqa: S103 - traverse only, so the postgres user reaches its data folder.
    return path


def stack_environment(state_dir: Path, **overrides: str) -> dict[str, str]:
    """Environment variables that give a stack its own state, env file and ports."""
    values = {
        "TOOLKIT_STATE_DIR": str(state_dir / "state"),
        "TOOLKIT_ENV_FILE": str(state_dir / ".env.localstack"),
        "EMULATOR_VENV": str(emulator_cache()),
        "EMULATOR_PORT": str(free_port()),
        "MAIL_SMTP_PORT": str(free_port()),
        "MAIL_HTTP_PORT": str(free_port()),
        "POSTGRES_SERVER": "container",
        "POSTGRES_PRIVATE_PORT": str(free_port()),
    }
    values.update(overrides)
    return values


def stack_settings(state_dir: Path, **overrides: str) -> Settings:
    return resolve_settings(PROJECT, project_settings(), {}, {**os.environ, **stack_environment(
        state_dir, **overrides)})


@pytest.fixture(scope="module")
def stack() -> Iterator[Settings]:
    """A running stack with its database set up, stopped and removed after the module's tests."""
    state_dir = make_state_dir("localaws-stack-")
    settings = stack_settings(state_dir)
    try:
        host.up(settings, print, timeout=120)
        setup_database(settings, PROJECT / "sql")
        apply_playbook(settings, "local", RunOptions(), confirm=lambda _: True, reporter=CollectingReporter())
        yield settings
    finally:
        host.down(settings, print)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[CatcherProcess]:
    """A mail catcher process on free loopback ports with a store in `tmp_path`."""
    process = CatcherProcess(store_dir=tmp_path / "store", log_path=tmp_path / "catcher.log")
    process.start()
    yield process
    process.stop()
