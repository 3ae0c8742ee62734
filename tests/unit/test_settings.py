"""Settings resolve in one documented order and the env file keeps what users change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from localaws.errors import ConfigError, FileLineError
from localaws.settings import resolve_settings
from localaws.settings.model import DERIVED_KEYS

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with the real templates and an env file that does not exist yet."""
    shutil.copytree(PROJECT / "templates", tmp_path / "templates")
    return tmp_path


def resolve(project: Path, yaml: dict[str, object] | None = None, flags: dict[str, object] | None = None,
            environ: dict[str, str] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
    return resolve_settings(project, yaml or {}, flags or {}, environ or {}, **kwargs)  # type: ignore[arg-type]


def env_file_text(project: Path) -> str:
    return (project / ".env.localstack").read_text()


def test_defaults_without_any_layer(project: Path) -> None:
    settings = resolve(project, {"postgres_server": "system"})
    assert settings.emulator_port == 4566
    assert settings.smtp_port == 1025
    assert settings.mail_http_port == 8025
    assert settings.bind_host == "127.0.0.1"
    assert settings.state_dir == project / ".state"


def test_project_yaml_overrides_defaults(project: Path) -> None:
    settings = resolve(project, {"db_name": "from_yaml", "postgres_server": "system"})
    assert settings.db_name == "from_yaml"


def test_env_file_overrides_project_yaml(project: Path) -> None:
    resolve(project, {"db_name": "from_yaml", "postgres_server": "system"})
    path = project / ".env.localstack"
    path.write_text(path.read_text().replace("DB_NAME='from_yaml'", "DB_NAME='from_file'"))
    assert resolve(project, {"db_name": "from_yaml"}).db_name == "from_file"


def test_environment_overrides_env_file(project: Path) -> None:
    resolve(project, {"postgres_server": "system"})
    settings = resolve(project, environ={"EMULATOR_PORT": "4999"})
    assert settings.emulator_port == 4999


def test_environment_is_not_written_to_env_file(project: Path) -> None:
    resolve(project, {"postgres_server": "system"}, environ={"EMULATOR_PORT": "4999"})
    assert "EMULATOR_PORT='4566'" in env_file_text(project)


def test_flags_override_environment_and_persist(project: Path) -> None:
    settings = resolve(project, {"postgres_server": "system"}, flags={"EMULATOR_PORT": "4600"},
                       environ={"EMULATOR_PORT": "4999"})
    assert settings.emulator_port == 4600
    assert "EMULATOR_PORT='4600'" in env_file_text(project)


def test_env_file_is_private(project: Path) -> None:
    resolve(project, {"postgres_server": "system"})
    assert (project / ".env.localstack").stat().st_mode & 0o777 == 0o600


def test_password_is_generated_once_and_kept(project: Path) -> None:
    first = resolve(project, {"postgres_server": "system"}).db_password
    second = resolve(project).db_password
    assert len(first) >= 24
    assert first == second


def test_user_values_and_extra_keys_survive_rerender(project: Path) -> None:
    resolve(project, {"postgres_server": "system"})
    path = project / ".env.localstack"
    text = path.read_text().replace("MAIL_SMTP_PORT='1025'", "MAIL_SMTP_PORT=2025")
    path.write_text(text + "MY_OWN_FLAG='$kept literally'\n")
    settings = resolve(project)
    assert settings.smtp_port == 2025
    rendered = env_file_text(project)
    assert "MAIL_SMTP_PORT=2025" in rendered
    assert "MY_OWN_FLAG='$kept literally'" in rendered


def test_password_with_special_characters_round_trips(project: Path) -> None:
    password = "p@ss#w%rd:/'\"$x"
    settings = resolve(project, {"postgres_server": "system"}, flags={"DB_PASSWORD": password})
    assert settings.db_password == password
    assert resolve(project).db_password == password
    assert "p%40ss%23w%25rd%3A%2F" in settings.database_url


def test_derived_values_are_written(project: Path) -> None:
    settings = resolve(project, {"postgres_server": "container"})
    text = env_file_text(project)
    for key in DERIVED_KEYS:
        assert f"\n{key}=" in text
    assert "DB_PORT='5433'" in text
    assert settings.aws_endpoint_url == "http://127.0.0.1:4566"


def test_invalid_port_names_source_line(project: Path) -> None:
    resolve(project, {"postgres_server": "system"})
    path = project / ".env.localstack"
    path.write_text(path.read_text().replace("EMULATOR_PORT='4566'", "EMULATOR_PORT='45x66'"))
    with pytest.raises(ConfigError) as caught:
        resolve(project)
    message = str(caught.value)
    assert "EMULATOR_PORT" in message
    assert f"{path}:" in message
    assert "'45x66'" in message


def test_broken_env_file_is_left_as_is(project: Path) -> None:
    resolve(project, {"postgres_server": "system"})
    path = project / ".env.localstack"
    broken = path.read_text() + "not an assignment\n"
    path.write_text(broken)
    with pytest.raises(FileLineError):
        resolve(project)
    assert path.read_text() == broken


def test_secret_value_is_hidden_in_errors(project: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(project, {"postgres_server": "system"}, flags={"DB_PASSWORD": "   "})
    assert "(hidden)" in str(caught.value)


def test_unknown_project_setting_is_rejected(project: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting 'emulator_prot'"):
        resolve(project, {"emulator_prot": 1})


def test_repr_hides_secrets(project: Path) -> None:
    settings = resolve(project, {"postgres_server": "system"}, flags={"DB_PASSWORD": "very-secret-value"})
    assert "very-secret-value" not in repr(settings)


def test_undefined_template_variable_names_line(project: Path) -> None:
    template = project / "templates" / "env.localstack.j2"
    template.write_text(template.read_text() + "\nBROKEN={{ no_such_variable }}\n")
    with pytest.raises(FileLineError) as caught:
        resolve(project, {"postgres_server": "system"})
    assert caught.value.path == template
    assert caught.value.line is not None
    assert not (project / ".env.localstack").exists()


def test_state_dir_and_env_file_from_environment(project: Path, tmp_path: Path) -> None:
    settings = resolve(project, {"postgres_server": "system"},
                       environ={"TOOLKIT_STATE_DIR": str(tmp_path / "state"),
                                "TOOLKIT_ENV_FILE": str(tmp_path / "other.env")})
    assert settings.state_dir == tmp_path / "state"
    assert settings.env_file == tmp_path / "other.env"
    assert (tmp_path / "other.env").exists()


def test_auto_server_is_resolved_and_written(project: Path) -> None:
    # Nothing listens on port 1 of loopback, so auto must pick the private cluster.
    settings = resolve(project, {"postgres_server": "auto", "postgres_system_port": 1})
    assert settings.postgres_server == "container"
    assert "POSTGRES_SERVER='container'" in env_file_text(project)


def test_comments_and_references_survive_commands(project: Path) -> None:
    resolve(project, {"postgres_server": "system"})
    path = project / ".env.localstack"
    text = path.read_text().replace("ENVIRONMENT='local'", "ENVIRONMENT=dev # my inline note")
    text += "# my own note\nMY_REF=${ENVIRONMENT}-x\n"
    path.write_text(text)

    resolve(project)

    # The derived RDS identifier follows ENVIRONMENT; every other line stays as written.
    expected = text.replace("DB_INSTANCE_IDENTIFIER='tutor-system-local-db'",
                            "DB_INSTANCE_IDENTIFIER='tutor-system-dev-db'")
    assert path.read_text() == expected


def test_read_only_run_leaves_file_untouched(project: Path) -> None:
    resolve(project, {"postgres_server": "system"})
    path = project / ".env.localstack"
    before = path.stat().st_mtime_ns
    resolve(project)
    assert path.stat().st_mtime_ns == before


def test_flag_rewrites_only_its_line_and_derived_ones(project: Path) -> None:
    resolve(project, {"postgres_server": "system"})
    path = project / ".env.localstack"
    path.write_text(path.read_text() + "# keep me\n")
    resolve(project, flags={"EMULATOR_PORT": "4700"})
    text = path.read_text()
    assert "EMULATOR_PORT='4700'" in text
    assert "AWS_ENDPOINT_URL='http://127.0.0.1:4700'" in text
    assert "# keep me" in text


def test_missing_setting_is_appended(project: Path) -> None:
    resolve(project, {"postgres_server": "system"})
    path = project / ".env.localstack"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("MAIL_HTTP_PORT=")]
    path.write_text("\n".join(lines) + "\n")
    resolve(project)
    assert "MAIL_HTTP_PORT='8025'" in path.read_text()
