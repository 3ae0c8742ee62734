"""Install MiniStack into a virtualenv of its own.

MiniStack pins botocore exactly, so it cannot share the toolkit's
environment; Lambda functions run on its interpreter, so boto3 goes beside it.
"""

from __future__ import annotations

import logging
import subprocess
import venv
from pathlib import Path

from localaws.errors import DependencyError
from localaws.settings import Settings

log = logging.getLogger(__name__)

_MARKER = ".localaws-installed"


def executable(settings: Settings) -> Path:
    return settings.emulator_venv_path / "bin" / "ministack"


def installed_version(settings: Settings) -> str | None:
    marker = settings.emulator_venv_path / _MARKER
    if not marker.exists() or not executable(settings).exists():
        return None
    return marker.read_text(encoding="utf-8").strip() or None


def ensure_installed(settings: Settings) -> bool:
    """Install the pinned MiniStack release unless it is already there; return whether it installed."""
    if installed_version(settings) == settings.emulator_version:
        return False

    target = settings.emulator_venv_path
    log.info("installing MiniStack %s into %s", settings.emulator_version, target)
    venv.EnvBuilder(with_pip=True, clear=target.exists()).create(target)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    requirement = f"ministack=={settings.emulator_version}"
    # cryptography enables MiniStack's asymmetric KMS keys (Sign/Verify); without it they fail.
    result = subprocess.run([*pip, requirement, "boto3", "psycopg[binary]", "cryptography"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DependencyError(
            f"installing {requirement} into {target} failed (pip exit code {result.returncode}):\n"
            f"{result.stderr.strip()[-2000:]}\n"
            "Check that PyPI is reachable and EMULATOR_VERSION names a released version, then run again."
        )

    (target / _MARKER).write_text(settings.emulator_version + "\n", encoding="utf-8")
    return True
