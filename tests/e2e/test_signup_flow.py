"""Sign-up from registration to `/api/me`, on a private stack whose emulator checks confirmation codes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import psycopg
import pytest

from localaws.checks.readiness import aws_client
from localaws.database.setup import setup_database
from localaws.playbook import CollectingReporter, RunOptions
from localaws.provisioning import apply_playbook
from localaws.runtime import host
from localaws.settings import Settings
from tests.e2e.signup_api import PASSWORD, SignupApi, unique_email
from tests.integration.conftest import PROJECT, make_state_dir, stack_settings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["direct", "rds"])
def checking_stack(request: pytest.FixtureRequest) -> Iterator[Settings]:
    """A stack with EMULATOR_CODE_CHECKING=true, so a wrong code fails as on AWS, in each DB_MODE."""
    state_dir = make_state_dir("localaws-e2e-")
    settings = stack_settings(state_dir, EMULATOR_CODE_CHECKING="true", DB_MODE=request.param)
    try:
        host.up(settings, print, timeout=120)
        setup_database(settings, PROJECT / "sql")
        result = apply_playbook(settings, "local", RunOptions(), confirm=lambda _: True,
                                reporter=CollectingReporter())
        assert result.failed_task is None, result.failed_task
        yield settings
    finally:
        host.down(settings, print)
        shutil.rmtree(state_dir, ignore_errors=True)


def test_signup_flow(checking_stack: Settings) -> None:
    api = SignupApi(checking_stack)
    email = unique_email("e2e")

    status, body = api.register(email, name="Edsger Dijkstra")
    assert status == 200, body
    code = api.wait_for_code(email)
    assert len(code) == 6

    status, body = api.login(email)
    assert status == 403, body
    assert body["error"] == "user_not_confirmed"

    wrong_code = "000000" if code != "000000" else "111111"
    status, body = api.confirm(email, wrong_code)
    assert status == 400, body
    assert body["error"] == "invalid_code"

    status, body = api.confirm(email, code)
    assert status == 200, body

    status, body = api.confirm(email, code)
    assert status == 409, body
    assert body["error"] == "already_confirmed"

    status, body = api.login(email, PASSWORD)
    assert status == 200, body
    token = body["access_token"]

    status, body = api.me(token)
    assert status == 200, body
    assert body["email"] == email
    assert body["profile"]["status"] == "active"
    sub = body["sub"]

    connection = psycopg.connect(host=checking_stack.db_host, port=checking_stack.db_port,
                                 dbname=checking_stack.db_name, user=checking_stack.db_user,
                                 password=checking_stack.db_password, row_factory=psycopg.rows.dict_row)
    with connection:
        rows = connection.execute("select cognito_sub, email, display_name, status from users "
                                  "where cognito_sub = %s", (sub,)).fetchall()
    assert rows == [
        {"cognito_sub": sub, "email": email, "display_name": "Edsger Dijkstra", "status": "active"},
    ]


def test_reset_password_wrong_code_rejected(checking_stack: Settings) -> None:
    api = SignupApi(checking_stack)
    email = unique_email("e2e-reset")
    assert api.register(email)[0] == 200
    assert api.confirm(email, api.wait_for_code(email))[0] == 200
    signup_code = api.wait_for_code(email)

    # No reset code was issued yet, which Cognito reports like an expired one.
    status, body = api.request("POST /api/auth/reset-password",
                               {"email": email, "code": "123456", "password": "Other-Passw0rd"})
    assert status == 400, body
    assert body["error"] == "expired_code"

    status, body = api.request("POST /api/auth/forgot-password", {"email": email})
    assert status == 200, body
    reset_code = api.wait_for_code(email, previous=signup_code)

    wrong_code = "000000" if reset_code != "000000" else "111111"
    status, body = api.request("POST /api/auth/reset-password",
                               {"email": email, "code": wrong_code, "password": "Other-Passw0rd"})
    assert status == 400, body
    assert body["error"] == "invalid_code"

    status, body = api.request("POST /api/auth/reset-password",
                               {"email": email, "code": reset_code, "password": "Other-Passw0rd"})
    assert status == 200, body
    assert api.login(email, "Other-Passw0rd")[0] == 200


def test_functions_use_configured_mode(checking_stack: Settings) -> None:
    api = SignupApi(checking_stack)
    configuration = aws_client(checking_stack, "lambda").get_function_configuration(
        FunctionName=api.function_name("example-secrets-usage"))
    result = api.invoke("example-secrets-usage", {})

    assert configuration["Environment"]["Variables"]["DB_MODE"] == checking_stack.db_mode
    assert result["credentials_source"] == "secretsmanager"
    assert result["database"]["port"] == checking_stack.db_port


def test_rds_mode_leaves_database_url_empty(checking_stack: Settings) -> None:
    if checking_stack.db_mode != "rds":
        pytest.skip("DATABASE_URL is set in direct mode")
    assert checking_stack.derived_values()["DATABASE_URL"] == ""
