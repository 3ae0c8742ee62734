"""Helpers for the rotation tests: settings that follow the env file, and the secrets' labels."""

from __future__ import annotations

import os
from typing import Any

from localaws.rotation.driver import version_stages
from localaws.settings import Settings, resolve_settings

from .conftest import PROJECT, project_settings


def reload_settings(settings: Settings, **overrides: str) -> Settings:
    """Resolve a stack's settings again, so a password that rotation wrote to the env file is seen."""
    environment = {
        **os.environ,
        "TOOLKIT_STATE_DIR": str(settings.state_dir),
        "TOOLKIT_ENV_FILE": str(settings.env_file),
        "EMULATOR_VENV": str(settings.emulator_venv_path),
        "EMULATOR_PORT": str(settings.emulator_port),
        "MAIL_SMTP_PORT": str(settings.smtp_port),
        "MAIL_HTTP_PORT": str(settings.mail_http_port),
        "POSTGRES_SERVER": settings.postgres_server,
        "POSTGRES_PRIVATE_PORT": str(settings.postgres_private_port),
        **overrides,
    }
    return resolve_settings(PROJECT, project_settings(), {}, environment)


def labels(sm: Any, secret: str) -> dict[str, str]:
    """Map each staging label to the version that carries it."""
    return {label: version for version, stages in version_stages(sm, secret).items() for label in stages}
