"""The sign-up functions deployed by the playbooks, called through API Gateway on a private stack.

The emulator runs without code checking here, so it accepts any confirmation
code. tests/e2e checks that a wrong code is rejected.
"""

from __future__ import annotations

import psycopg
import pytest

from localaws.playbook import CollectingReporter, RunOptions, Status
from localaws.provisioning import apply_playbook
from localaws.settings import Settings
from tests.e2e.signup_api import PASSWORD, SignupApi, unique_email

pytestmark = pytest.mark.integration

Registered = tuple[str, dict[str, object]]


@pytest.fixture(scope="module")
def api(stack: Settings) -> SignupApi:
    return SignupApi(stack)


@pytest.fixture(scope="module")
def registered(api: SignupApi) -> tuple[str, dict[str, object]]:
    """An unconfirmed user: its email and the register response body."""
    email = unique_email("registered")
    status, body = api.register(email, name="Ada Lovelace")
    assert status == 200, body
    return email, body


@pytest.fixture(scope="module")
def confirmed(api: SignupApi) -> tuple[str, str]:
    """A confirmed user that has logged in: its email and access token."""
    email = unique_email("confirmed")
    status, body = api.register(email, name="Grace Hopper")
    assert status == 200, body
    status, body = api.confirm(email, api.wait_for_code(email))
    assert status == 200, body
    status, body = api.login(email)
    assert status == 200, body
    return email, str(body["access_token"])


def user_rows(settings: Settings, email: str) -> list[dict[str, object]]:
    with psycopg.connect(settings.database_url, row_factory=psycopg.rows.dict_row) as connection:
        return connection.execute("select * from users where lower(email) = lower(%s)", (email,)).fetchall()


def test_register_sends_verification_mail(api: SignupApi, registered: Registered) -> None:
    email, body = registered
    assert body["user_confirmed"] is False
    assert body["user_sub"]
    assert api.wait_for_code(email) == "123456"
    messages = api.messages_to(email)
    assert messages[0]["Content"]["Headers"]["Subject"] == ["Your verification code"]
    assert messages[0]["Content"]["Headers"]["From"] == ["no-reply@verificationemail.com"]


def test_register_existing_user_returns_409(api: SignupApi, registered: Registered) -> None:
    email, _ = registered
    status, body = api.register(email.upper())
    assert status == 409
    assert body["error"] == "user_exists"


@pytest.mark.parametrize("email", ["not-an-email", "two@@example.com", "spaces in@example.com", ""])
def test_register_invalid_email_returns_400(api: SignupApi, email: str) -> None:
    status, body = api.register(email)
    assert status == 400
    assert body["error"] in ("invalid_email", "missing_field")


@pytest.mark.parametrize("password", ["short1A", "alllowercase1", "NoDigitsHere"])
def test_register_weak_password_returns_policy(api: SignupApi, password: str) -> None:
    status, body = api.register(unique_email("weak"), password=password)
    assert status == 400
    assert body["error"] == "weak_password"
    assert body["policy"] == {"minimum_length": 8, "require_uppercase": True, "require_lowercase": True,
                              "require_numbers": True, "require_symbols": False}
    assert "at least 8 characters" in body["message"]


def test_register_malformed_json_returns_400(api: SignupApi) -> None:
    status, body = api.request("POST /api/auth/register", b'{"email": ')
    assert status == 400
    assert body["error"] == "invalid_json"


def test_register_missing_password_returns_400(api: SignupApi) -> None:
    status, body = api.request("POST /api/auth/register", {"email": unique_email("nopassword")})
    assert status == 400
    assert body["error"] == "missing_field"
    assert "password" in body["message"]


def test_login_before_confirm_returns_403(api: SignupApi, registered: Registered) -> None:
    email, _ = registered
    status, body = api.login(email)
    assert status == 403
    assert body["error"] == "user_not_confirmed"


def test_confirm_non_numeric_code_returns_400(api: SignupApi, registered: Registered) -> None:
    email, _ = registered
    status, body = api.confirm(email, "abc")
    assert status == 400
    assert body["error"] == "invalid_code"


def test_confirm_unknown_user_returns_404(api: SignupApi) -> None:
    status, body = api.confirm(unique_email("unknown"), "123456")
    assert status == 404
    assert body["error"] == "user_not_found"


def test_login_after_confirm_returns_tokens(api: SignupApi, confirmed: tuple[str, str]) -> None:
    email, _ = confirmed
    status, body = api.login(email)
    assert status == 200
    assert body["access_token"]
    assert body["id_token"]
    assert body["refresh_token"]
    assert body["token_type"] == "Bearer"


def test_login_wrong_password_returns_401(api: SignupApi, confirmed: tuple[str, str]) -> None:
    email, _ = confirmed
    status, body = api.login(email, password=PASSWORD + "x")
    assert status == 401
    assert body["error"] == "invalid_credentials"


def test_login_unknown_user_returns_401(api: SignupApi) -> None:
    status, body = api.login(unique_email("nobody"))
    assert status == 401
    assert body["error"] == "invalid_credentials"


def test_me_without_token_returns_401(api: SignupApi) -> None:
    status, body = api.me(None)
    assert status == 401
    assert body["error"] == "missing_token"


def test_me_invalid_token_returns_401(api: SignupApi) -> None:
    status, body = api.me("not-a-token")
    assert status == 401
    assert body["error"] == "invalid_token"


def test_me_returns_profile_row(api: SignupApi, confirmed: tuple[str, str], stack: Settings) -> None:
    email, token = confirmed
    status, body = api.me(token)
    assert status == 200, body
    assert body["email"] == email
    profile = body["profile"]
    assert profile is not None
    assert profile["cognito_sub"] == body["sub"]
    assert profile["email"] == email
    assert profile["status"] == "active"
    assert profile["display_name"] == "Grace Hopper"
    assert [row["cognito_sub"] for row in user_rows(stack, email)] == [body["sub"]]


def test_confirm_twice_keeps_one_row(api: SignupApi, confirmed: tuple[str, str], stack: Settings) -> None:
    email, _ = confirmed
    status, _ = api.confirm(email, "123456")
    # Without code checking MiniStack 1.5.33 confirms the user again. AWS returns NotAuthorizedException,
    # which the route maps to 409 already_confirmed.
    assert status in (200, 409)
    assert len(user_rows(stack, email)) == 1


def test_resend_mails_a_new_code(api: SignupApi) -> None:
    email = unique_email("resend")
    assert api.register(email)[0] == 200
    before = len(api.messages_to(email))
    status, body = api.request("POST /api/auth/resend", {"email": email})
    assert status == 200, body
    assert len(api.messages_to(email)) == before + 1


def test_forgot_and_reset_password(api: SignupApi, confirmed: tuple[str, str]) -> None:
    email, _ = confirmed
    signup_code = api.wait_for_code(email)
    status, body = api.request("POST /api/auth/forgot-password", {"email": email})
    assert status == 200, body
    reset_code = api.wait_for_code(email, previous=signup_code)
    new_password = "Changed-Passw0rd"
    status, body = api.request("POST /api/auth/reset-password",
                               {"email": email, "code": reset_code, "password": new_password})
    assert status == 200, body
    assert api.login(email, new_password)[0] == 200
    assert api.login(email)[0] == 401
    status, body = api.request("POST /api/auth/reset-password",
                               {"email": email, "code": reset_code, "password": PASSWORD})
    assert status == 200, body


def test_reset_password_weak_password_returns_400(api: SignupApi, confirmed: tuple[str, str]) -> None:
    email, _ = confirmed
    status, body = api.request("POST /api/auth/reset-password",
                               {"email": email, "code": "654321", "password": "weak"})
    assert status == 400
    assert body["error"] == "weak_password"


def test_auth_unknown_route_returns_404(api: SignupApi) -> None:
    response = api.invoke("auth", {"httpMethod": "POST", "path": "/api/auth/unknown", "body": "{}"})
    assert response["statusCode"] == 404
    assert '"not_found"' in response["body"]


def test_auth_get_returns_405(api: SignupApi) -> None:
    response = api.invoke("auth", {"httpMethod": "GET", "path": "/api/auth/login"})
    assert response["statusCode"] == 405


def test_post_confirmation_trigger_is_idempotent(api: SignupApi, stack: Settings) -> None:
    email = unique_email("trigger")
    event = {
        "version": "1",
        "triggerSource": "PostConfirmation_ConfirmSignUp",
        "userName": "trigger-user",
        "request": {"userAttributes": {"sub": f"sub-{email}", "email": email, "name": "Trigger"}},
        "response": {},
    }
    assert api.invoke("post-confirmation", event) == event
    assert api.invoke("post-confirmation", event) == event
    rows = user_rows(stack, email)
    assert len(rows) == 1
    assert rows[0]["status"] == "active"
    assert rows[0]["display_name"] == "Trigger"


def test_post_confirmation_ignores_password_reset(api: SignupApi, stack: Settings) -> None:
    email = unique_email("reset-trigger")
    event = {"triggerSource": "PostConfirmation_ConfirmForgotPassword",
             "request": {"userAttributes": {"sub": f"sub-{email}", "email": email}}}
    assert api.invoke("post-confirmation", event) == event
    assert user_rows(stack, email) == []


def test_example_secrets_usage_reads_secret(api: SignupApi, confirmed: tuple[str, str],
                                            stack: Settings) -> None:
    result = api.invoke("example-secrets-usage", {})
    assert result["credentials_source"] == "secretsmanager"
    assert result["user_count"] >= 1
    assert result["database"] == {"host": stack.db_host, "port": stack.db_port, "dbname": stack.db_name}
    assert stack.db_password not in str(result)


def test_second_setup_changes_nothing(stack: Settings) -> None:
    collector = CollectingReporter()
    result = apply_playbook(stack, "local", RunOptions(), confirm=lambda _: True, reporter=collector)
    changed = [task.task for task in result.results if task.status is Status.CHANGED]
    assert result.failed_task is None
    assert changed == []
