"""Settings: one frozen object per command, resolved from layered sources."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localaws.settings.envfile import quote_env_value, read_env_file, update_env_text, write_private_file
from localaws.settings.model import (
    DERIVED_KEYS,
    SPECS,
    Layers,
    Settings,
    build_settings,
    collect_layers,
    generate_password,
)
from localaws.templating import render_template

__all__ = [
    "ENV_TEMPLATE",
    "Settings",
    "read_env_file",
    "render_env_file",
    "resolve_settings",
]

ENV_TEMPLATE = "env.localstack.j2"
DEFAULT_ENV_FILE = ".env.localstack"
DEFAULT_STATE_DIR = ".state"


def _locate(project_dir: Path, value: str | None, default: str) -> Path:
    path = Path(value or default).expanduser()
    return (path if path.is_absolute() else project_dir / path).resolve()


def resolve_settings(
    project_dir: Path,
    project_settings: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    write_env_file: bool = True,
) -> Settings:
    """Resolve the settings of the checkout at `project_dir`.

    `project_settings` is the `settings:` section of `invoke.yaml`. The env
    file and the state folder are located first (flag, then environment, then
    `invoke.yaml`) because they cannot be set from inside the env file. With
    `write_env_file`, the env file is rendered first, keeping values already in it.
    """
    environ = os.environ if environ is None else environ
    project_dir = project_dir.resolve()
    project_settings = dict(project_settings or {})
    flags = dict(flags or {})

    def bootstrap(key: str, default: str) -> Path:
        value = flags.pop(key, None) or environ.get(key) or project_settings.pop(key.lower(), None)
        project_settings.pop(key.lower(), None)
        return _locate(project_dir, value, default)

    env_file = bootstrap("TOOLKIT_ENV_FILE", DEFAULT_ENV_FILE)
    state_dir = bootstrap("TOOLKIT_STATE_DIR", DEFAULT_STATE_DIR)

    layers = collect_layers(project_dir, env_file, project_settings, flags, environ)
    if write_env_file:
        render_env_file(project_dir, state_dir, env_file, layers)
        layers = collect_layers(project_dir, env_file, project_settings, flags, environ)
    settings = build_settings(project_dir, state_dir, env_file, layers)
    if settings.postgres_server == "auto":
        settings = settings.replace(postgres_server=choose_postgres_server(settings))
    return settings


def choose_postgres_server(settings: Settings) -> str:
    """Resolve POSTGRES_SERVER=auto: system when its port accepts connections, else a private cluster."""
    try:
        with socket.create_connection((settings.bind_host, settings.postgres_system_port), timeout=1):
            return "system"
    except OSError:
        return "container"


def render_env_file(project_dir: Path, state_dir: Path, env_file: Path, layers: Layers) -> bool:
    """Create the env file from `templates/`, or update the values in it that must change.

    An existing file is edited in place, so the user's comments, quoting and
    own variables stay. Environment variables are not written: they apply to
    one command only. Task flags are written, so `--set KEY=VALUE` persists.
    Returns whether the file changed.
    """
    file_values = dict(layers.env_file)
    if "DB_PASSWORD" not in file_values and "DB_PASSWORD" not in layers.flags:
        file_values["DB_PASSWORD"] = generate_password()
    persisted = Layers(
        layers.defaults, layers.project, file_values, {}, layers.flags,
        layers.env_file_lines, layers.env_file_extra,
    )
    settings = build_settings(project_dir, state_dir, env_file, persisted, include_environment=False)
    if settings.postgres_server == "auto":
        settings = settings.replace(postgres_server=choose_postgres_server(settings))

    values = settings.key_values()
    if env_file.exists():
        text = env_file.read_text(encoding="utf-8")
        updated = update_env_text(env_file, text, {**values, **settings.derived_values()})
        if env_file.stat().st_mode & 0o077:
            os.chmod(env_file, 0o600)
        if updated == text:
            return False
        write_private_file(env_file, updated)
        return True

    context = {
        "settings": settings,
        "values": values,
        "derived": settings.derived_values(),
        "extra": layers.env_file_extra,
        "specs": SPECS,
        "derived_keys": DERIVED_KEYS,
    }
    text = render_template(project_dir / "templates", ENV_TEMPLATE, context,
                           filters={"envquote": quote_env_value})
    write_private_file(env_file, text)
    return True
