"""Rotation of the database and JWT secrets on a private stack, through the rotation Lambda."""

from __future__ import annotations

from datetime import timedelta

import pytest
from psycopg import sql

from localaws.database.admin import run_admin_sql
from localaws.playbook import CollectingReporter, RunOptions
from localaws.provisioning import apply_playbook
from localaws.rotation import checks, clock
from localaws.rotation.driver import STEPS
from localaws.rotation.policy import LAST_ROTATED_TAG, as_datetime, tags_of
from localaws.rotation.service import local_client, rotate_now, secret_names
from localaws.runtime import host
from localaws.settings import Settings

from .rotationhelpers import labels, reload_settings

pytestmark = pytest.mark.integration


def test_rotation_checks_pass(stack: Settings) -> None:
    results = checks.run_local(reload_settings(stack), print)

    failed = [f"{result.name}: {result.detail}" for result in results if not result.passed]
    assert failed == []
    assert len(results) == 16


def test_two_rotations_run_four_steps(stack: Settings) -> None:
    settings = reload_settings(stack)
    client = local_client(settings)
    function = "tutor-system-local-secret-rotation"

    first = rotate_now(settings, ("database", "jwt"), print, client)
    second = rotate_now(reload_settings(stack), ("database", "jwt"), print, client)

    for before, after in zip(first, second, strict=True):
        assert before.succeeded, before.describe()
        assert after.succeeded, after.describe()
        assert after.old_version == before.token
        assert checks.logged_steps(client("logs"), function, before.token) == set(STEPS)
        assert checks.logged_steps(client("logs"), function, after.token) == set(STEPS)


def test_playbooks_keep_rotated_values(stack: Settings) -> None:
    settings = reload_settings(stack)
    rotate_now(settings, ("database", "jwt"), print, local_client(settings))

    result = apply_playbook(reload_settings(stack), "local", RunOptions(), confirm=lambda _: True,
                            reporter=CollectingReporter())

    assert result.failed_task is None
    assert [entry.task for entry in result.results if entry.status.name != "OK"] == []


def test_failed_test_step_keeps_current(stack: Settings) -> None:
    settings = reload_settings(stack)
    client = local_client(settings)
    sm = client("secretsmanager")
    database = secret_names(settings, ("database",))[0]
    before = labels(sm, database)
    role = sql.Identifier(settings.db_user).as_string()

    # Without LOGIN the pending password is set but cannot log in, so testSecret fails.
    run_admin_sql(settings, f"alter role {role} nologin;\n")
    try:
        [failed] = rotate_now(settings, ("database",), print, client)
    finally:
        run_admin_sql(settings, f"alter role {role} login;\n")

    assert failed.failed_step == "testSecret"
    assert failed.steps == ["createSecret", "setSecret"]
    assert "not permitted to log in" in (failed.error or "")
    after = labels(sm, database)
    assert after["AWSCURRENT"] == before["AWSCURRENT"]
    assert after["AWSPENDING"] == failed.token

    [resumed] = rotate_now(reload_settings(stack), ("database",), print, client)
    assert resumed.resumed
    assert resumed.token == failed.token
    assert resumed.succeeded, resumed.describe()
    assert labels(sm, database)["AWSCURRENT"] == failed.token


def test_due_rotation_runs_once_on_start(stack: Settings) -> None:
    settings = reload_settings(stack)
    sm = local_client(settings)("secretsmanager")
    database = secret_names(settings, ("database",))[0]
    rotate_now(settings, ("database", "jwt"), print, local_client(settings))
    before = labels(sm, database)

    host.down(settings, print)
    later = reload_settings(stack, ROTATION_CLOCK="+3d")
    messages: list[str] = []
    host.up(later, messages.append, timeout=120)

    after_first_start = labels(sm, database)
    assert after_first_start["AWSCURRENT"] != before["AWSCURRENT"], messages
    assert after_first_start["AWSPREVIOUS"] == before["AWSCURRENT"]
    last = as_datetime(tags_of(sm.describe_secret(SecretId=database))[LAST_ROTATED_TAG])
    assert last is not None
    assert last - clock.now() > timedelta(days=2, hours=23)
    assert sum("rotated to version" in message for message in messages) == 2

    host.down(later, print)
    messages.clear()
    host.up(reload_settings(stack, ROTATION_CLOCK="+3d"), messages.append, timeout=120)

    assert labels(sm, database) == after_first_start
    assert not any("rotat" in message for message in messages), messages
