"""The settings object and the layers it is resolved from.

Order, lowest first: built-in defaults, the `settings:` section of
`invoke.yaml`, the env file (`.env.localstack`), environment variables, task
flags. Every setting has one key, the environment variable name, used in all
layers; `invoke.yaml` may spell it in lower case.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from localaws.errors import ConfigError
from localaws.settings.envfile import read_env_file

POSTGRES_SERVERS = ("system", "container", "auto")
DB_MODES = ("direct", "rds")
# The playbooks name the RDS record `<project>-<environment>-db`, with `project` from
# playbooks/vars/common.yml.
PROJECT_NAME = "tutor-system"
RUNTIMES = ("host",)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ValueError("a port is an integer from 1 to 65535")
    return port


def _choice(*choices: str) -> Callable[[str], str]:
    def convert(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected one of: {', '.join(choices)}")
        return value

    return convert


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _word_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.replace(",", " ").split() if item.strip())


def _nonempty(value: str) -> str:
    if not value.strip():
        raise ValueError("the value is empty")
    return value


def _rotation_clock(value: str) -> str:
    from localaws.rotation.clock import parse_clock

    parse_clock(value)
    return value.strip()


@dataclass(frozen=True)
class Spec:
    """One setting: its key in every layer, its type and its built-in default."""

    key: str
    attribute: str
    convert: Callable[[str], Any]
    default: str | None
    help: str
    secret: bool = False


SPECS: tuple[Spec, ...] = (
    Spec("ENVIRONMENT", "environment", _nonempty, "local", "Environment name used in resource names."),
    Spec("TOOLKIT_RUNTIME", "runtime", _choice(*RUNTIMES), "host", "Where services run."),
    Spec("SERVICES_BIND_HOST", "bind_host", _nonempty, "127.0.0.1", "Address every service binds."),
    Spec("AWS_DEFAULT_REGION", "aws_region", _nonempty, "us-east-1", "AWS region."),
    Spec("AWS_ACCESS_KEY_ID", "aws_access_key_id", _nonempty, "test", "Emulator access key."),
    Spec("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key", _nonempty, "test", "Emulator secret key.",
         secret=True),
    Spec("EMULATOR_PORT", "emulator_port", _port, "4566", "Port of the AWS emulator."),
    Spec("EMULATOR_VERSION", "emulator_version", _nonempty, "1.5.33", "MiniStack release to install."),
    Spec("EMULATOR_VENV", "emulator_venv", str, "", "Virtualenv of the emulator; "
         "empty means <state folder>/ministack-venv."),
    Spec("EMULATOR_CODE_CHECKING", "emulator_code_checking", _boolean, "false",
         "Make the emulator reject wrong Cognito confirmation codes."),
    Spec("REQUIRED_AWS_SERVICES", "required_aws_services", _word_list,
         "s3 secretsmanager kms iam lambda apigateway cognito-idp ses logs rds sts",
         "AWS services that readiness checks with one real call each."),
    Spec("AWS_ALLOWED_ACCOUNT_IDS", "aws_allowed_account_ids", _word_list, "",
         "AWS account ids the `aws` target may change; empty allows none."),
    Spec("MAIL_SMTP_PORT", "smtp_port", _port, "1025", "SMTP port of the mail catcher."),
    Spec("MAIL_HTTP_PORT", "mail_http_port", _port, "8025", "Web page and API port of the mail catcher."),
    Spec("POSTGRES_SERVER", "postgres_server", _choice(*POSTGRES_SERVERS), "system",
         "PostgreSQL to use: system (the machine's server), container (a private cluster) "
         "or auto (system when it answers, else container; resolved once and written here)."),
    Spec("POSTGRES_SYSTEM_PORT", "postgres_system_port", _port, "5432", "Port of the system server."),
    Spec("POSTGRES_PRIVATE_PORT", "postgres_private_port", _port, "5433", "Port of the private cluster."),
    Spec("POSTGRES_SYSTEM_SOCKET_DIR", "postgres_system_socket_dir", _nonempty, "/var/run/postgresql",
         "Unix socket folder of the system server."),
    Spec("POSTGRES_BIN_DIR", "postgres_bin_dir", str, "", "Folder of initdb and postgres; "
         "empty means the newest /usr/lib/postgresql/*/bin."),
    Spec("DB_MODE", "db_mode", _choice(*DB_MODES), "direct",
         "How the application finds the database: direct (DATABASE_URL) or rds (host and port "
         "of the emulator's RDS instance, credentials from Secrets Manager)."),
    Spec("DB_NAME", "db_name", _nonempty, "app", "Application database."),
    Spec("DB_USER", "db_user", _nonempty, "app_user", "Application role."),
    Spec("DB_PASSWORD", "db_password", _nonempty, None, "Application role's password; "
         "generated on first use.", secret=True),
    Spec("ROTATION_CLOCK", "rotation_clock", _rotation_clock, "",
         "Time the secret rotation tasks take as now: empty for the real time, an ISO 8601 timestamp "
         "such as 2030-01-01T00:00:00Z, or an offset from the real time such as +3d or -12h."),
)

SPECS_BY_KEY = {spec.key: spec for spec in SPECS}

# Written to the env file for the application's code, never read back: they follow from the rest.
DERIVED_KEYS = ("AWS_ENDPOINT_URL", "DB_HOST", "DB_PORT", "DATABASE_URL", "DB_INSTANCE_IDENTIFIER")

_PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_.~"


def generate_password(length: int = 32) -> str:
    """Return a random password made of characters that need no quoting in URLs or env files."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one project checkout. Build it with `resolve_settings`."""

    project_dir: Path
    state_dir: Path
    env_file: Path
    environment: str
    runtime: str
    bind_host: str
    aws_region: str
    aws_access_key_id: str
    aws_secret_access_key: str = field(repr=False)
    emulator_port: int = 4566
    emulator_version: str = ""
    emulator_venv: str = ""
    emulator_code_checking: bool = False
    required_aws_services: tuple[str, ...] = ()
    aws_allowed_account_ids: tuple[str, ...] = ()
    smtp_port: int = 1025
    mail_http_port: int = 8025
    postgres_server: str = "system"
    postgres_system_port: int = 5432
    postgres_private_port: int = 5433
    postgres_system_socket_dir: str = "/var/run/postgresql"
    postgres_bin_dir: str = ""
    db_mode: str = "direct"
    db_name: str = ""
    db_user: str = ""
    db_password: str = field(default="", repr=False)
    rotation_clock: str = ""
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def emulator_venv_path(self) -> Path:
        return Path(self.emulator_venv) if self.emulator_venv else self.state_dir / "ministack-venv"

    @property
    def aws_endpoint_url(self) -> str:
        return f"http://{self.bind_host}:{self.emulator_port}"

    @property
    def db_host(self) -> str:
        return self.bind_host

    @property
    def db_port(self) -> int:
        if self.postgres_server == "container":
            return self.postgres_private_port
        return self.postgres_system_port

    @property
    def database_url(self) -> str:
        password = quote(self.db_password, safe="")
        user = quote(self.db_user, safe="")
        return f"postgresql://{user}:{password}@{self.db_host}:{self.db_port}/{quote(self.db_name)}"

    @property
    def db_instance_identifier(self) -> str:
        return f"{PROJECT_NAME}-{self.environment}-db"

    @property
    def mail_api_url(self) -> str:
        return f"http://{self.bind_host}:{self.mail_http_port}"

    def source_of(self, key: str) -> str:
        """Name the layer a setting's value came from, for error messages."""
        return self.sources.get(key, "built-in default")

    def derived_values(self) -> dict[str, str]:
        """Values the application reads that follow from the settings (endpoint, database URL).

        In rds mode DATABASE_URL is empty, so that nothing connects with it by mistake.
        """
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "DB_HOST": self.db_host,
            "DB_PORT": str(self.db_port),
            "DATABASE_URL": self.database_url if self.db_mode == "direct" else "",
            "DB_INSTANCE_IDENTIFIER": self.db_instance_identifier,
        }

    def key_values(self) -> dict[str, str]:
        """Return every setting as its env-file string, derived values excluded."""
        values = {}
        for spec in SPECS:
            value = getattr(self, spec.attribute)
            if isinstance(value, bool):
                values[spec.key] = "true" if value else "false"
            elif isinstance(value, tuple):
                values[spec.key] = " ".join(value)
            else:
                values[spec.key] = str(value)
        return values

    def aws_environment(self) -> dict[str, str]:
        """Variables that point boto3 and the AWS CLI at the emulator."""
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "AWS_DEFAULT_REGION": self.aws_region,
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
        }

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Layers:
    """Raw string values of each layer, kept so the env file can be re-rendered without the environment."""

    defaults: dict[str, str]
    project: dict[str, str]
    env_file: dict[str, str]
    environment: dict[str, str]
    flags: dict[str, str]
    env_file_lines: dict[str, int]
    env_file_extra: dict[str, str]


def _normalise_project_layer(raw: Mapping[str, Any], origin: str) -> dict[str, str]:
    values = {}
    for name, value in raw.items():
        key = str(name).upper()
        if key not in SPECS_BY_KEY:
            raise ConfigError(
                f"{origin}: unknown setting {name!r}. Known settings: {', '.join(sorted(SPECS_BY_KEY))}."
            )
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list | tuple):
            value = " ".join(str(item) for item in value)
        values[key] = "" if value is None else str(value)
    return values


def collect_layers(
    project_dir: Path,
    env_file: Path,
    project_settings: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Layers:
    """Read every layer's raw values; no conversion, no validation beyond key names."""
    environ = os.environ if environ is None else environ
    defaults = {spec.key: spec.default for spec in SPECS if spec.default is not None}
    project = _normalise_project_layer(project_settings or {}, str(project_dir / "invoke.yaml"))
    flag_values = _normalise_project_layer(flags or {}, "task flag")

    file_values: dict[str, str] = {}
    file_lines: dict[str, int] = {}
    extra: dict[str, str] = {}
    if env_file.exists():
        for key, (value, line) in read_env_file(env_file, environ).items():
            if key in SPECS_BY_KEY:
                file_values[key] = value
                file_lines[key] = line
            elif key not in DERIVED_KEYS:
                extra[key] = value

    environment = {key: environ[key] for key in SPECS_BY_KEY if key in environ}
    return Layers(defaults, project, file_values, environment, flag_values, file_lines, extra)


def build_settings(project_dir: Path, state_dir: Path, env_file: Path, layers: Layers,
                   include_environment: bool = True) -> Settings:
    """Merge the layers, lowest first, and convert each value, naming its source on error."""
    merged: dict[str, str] = {}
    sources: dict[str, str] = {}
    ordered = [
        ("built-in default", layers.defaults),
        (str(project_dir / "invoke.yaml"), layers.project),
        (str(env_file), layers.env_file),
        ("environment variable", layers.environment if include_environment else {}),
        ("task flag", layers.flags),
    ]
    for origin, values in ordered:
        for key, value in values.items():
            merged[key] = value
            if origin == str(env_file) and key in layers.env_file_lines:
                sources[key] = f"{env_file}:{layers.env_file_lines[key]}"
            else:
                sources[key] = origin

    converted: dict[str, Any] = {}
    for spec in SPECS:
        raw = merged.get(spec.key)
        if raw is None:
            continue
        try:
            converted[spec.attribute] = spec.convert(raw)
        except ValueError as error:
            shown = "(hidden)" if spec.secret else repr(raw)
            raise ConfigError(
                f"invalid value {shown} for {spec.key} (from {sources[spec.key]}): {error}. "
                f"Set {spec.key} to a valid value: {spec.help}"
            ) from None

    return Settings(
        project_dir=project_dir,
        state_dir=state_dir,
        env_file=env_file,
        sources=sources,
        **converted,
    )
