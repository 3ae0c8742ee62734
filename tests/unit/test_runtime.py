"""The host runtime renders a configuration supervisord reads back exactly, and checks ports."""

from __future__ import annotations

import os
import shlex
import socket
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from localaws.errors import PortInUseError
from localaws.runtime.health import Health
from localaws.runtime.ports import PortClaim, check_ports, find_listener, port_is_free
from localaws.runtime.services import Service, stack_services
from localaws.runtime.supervisor import render_config, write_config
from localaws.settings import Settings

PROJECT = Path(__file__).resolve().parents[2]


def make_settings(tmp_path: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "project_dir": PROJECT, "state_dir": tmp_path / "state", "env_file": tmp_path / ".env",
        "environment": "local", "runtime": "host", "bind_host": "127.0.0.1", "aws_region": "us-east-1",
        "aws_access_key_id": "test", "aws_secret_access_key": "test", "emulator_version": "1.5.33",
        "db_name": "app", "db_user": "app_user", "db_password": "secret", "postgres_server": "container",
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def parse_programs(path: Path) -> dict[str, object]:
    options = ServerOptions()
    options.realize(args=["-c", str(path)])
    groups = options.process_group_configs
    return {config.name: config for group in groups for config in group.process_configs}


def test_supervisord_reads_commands_and_environment_back(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    odd = Service(
        name="odd", title="odd", command=["/bin/echo", "100%", "it's \"quoted\"", "a b"],
        directory=tmp_path, ports=[], probe=lambda: Health(True, ""),
        environment={"PERCENT": "50%", "QUOTES": 'say "hi" now', "SINGLE": "it's", "COMMA": "a,b"},
    )
    write_config(settings, [odd])

    program = parse_programs(settings.state_dir / "supervisord.conf")["odd"]
    assert shlex.split(program.command) == odd.command  # type: ignore[attr-defined]
    for key, value in odd.environment.items():
        assert program.environment[key] == value  # type: ignore[attr-defined]


def test_stack_config_has_each_service(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    write_config(settings, stack_services(settings))
    programs = parse_programs(settings.state_dir / "supervisord.conf")
    assert set(programs) == {"postgres", "mail", "emulator"}
    emulator_env = programs["emulator"].environment  # type: ignore[attr-defined]
    assert emulator_env["BIND_HOST"] == "127.0.0.1"
    assert emulator_env["PERSIST_STATE"] == "1"
    assert emulator_env["SMTP_HOST"] == "127.0.0.1:1025"


def test_system_server_is_not_supervised(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, postgres_server="system")
    assert [service.name for service in stack_services(settings)] == ["mail", "emulator"]


def test_config_file_is_private(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    write_config(settings, stack_services(settings))
    assert (settings.state_dir / "supervisord.conf").stat().st_mode & 0o777 == 0o600


def test_long_state_path_is_rejected(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, state_dir=tmp_path / ("x" * 120))
    with pytest.raises(Exception, match="TOOLKIT_STATE_DIR"):
        render_config(settings, [])


@pytest.fixture
def listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server  # type: ignore[misc]
    server.close()


def test_port_in_use_is_detected(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    assert not port_is_free("127.0.0.1", port)
    holder = find_listener(port)
    assert holder.pid == os.getpid()


def test_check_ports_names_holder_and_setting(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with pytest.raises(PortInUseError) as caught:
        check_ports([PortClaim("AWS emulator", "127.0.0.1", port, "EMULATOR_PORT")])
    message = str(caught.value)
    assert f"pid {os.getpid()}" in message
    assert "EMULATOR_PORT" in message
    assert "Nothing was started" in message


def test_own_processes_may_hold_ports(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    check_ports([PortClaim("AWS emulator", "127.0.0.1", port, "EMULATOR_PORT")], own_pids={os.getpid()})


def test_free_port_passes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check_ports([PortClaim("mail catcher", "127.0.0.1", port, "MAIL_SMTP_PORT")])
