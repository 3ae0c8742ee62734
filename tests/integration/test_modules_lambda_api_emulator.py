"""The Lambda, API Gateway and Cognito modules against a real MiniStack emulator."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.parse
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from localaws.checks.readiness import aws_client
from localaws.playbook.modules.api_gateway import ApiGateway
from localaws.playbook.modules.base import ModuleContext, Target
from localaws.playbook.modules.cognito import CognitoUserPool
from localaws.playbook.modules.lambda_function import LambdaFunction
from localaws.playbook.results import ModuleResult, Status
from localaws.settings import Settings

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
HANDLER = '''import json

from greeting import MESSAGE
from common.text import shout


def handler(event, context):
    body = {"message": shout(MESSAGE), "path": event.get("path"), "method": event.get("httpMethod")}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
'''
MAIL_TIMEOUT_SECONDS = 15.0


def record_line(name: str, content: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(content)}"


def write_wheel(folder: Path) -> Path:
    """Write a tiny pure-Python wheel, so pip installs a dependency without reaching an index."""
    files = {
        "greeting/__init__.py": b'MESSAGE = "hello from a dependency"\n',
        "greeting-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: greeting\nVersion: 1.0\n",
        "greeting-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                                         b"Tag: py3-none-any\n",
    }
    record = [record_line(name, content) for name, content in files.items()]
    record.append("greeting-1.0.dist-info/RECORD,,")
    files["greeting-1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / "greeting-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return wheel


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    source = root / "src" / "functions" / "hello"
    source.mkdir(parents=True)
    (source / "handler.py").write_text(HANDLER)
    common = root / "src" / "common"
    common.mkdir(parents=True)
    (common / "__init__.py").write_text("")
    (common / "text.py").write_text("def shout(text):\n    return text.upper()\n")
    (source / "requirements.txt").write_text(f"{write_wheel(root)}\n")
    return root


def make_context(settings: Settings, project: Path, check_mode: bool = False) -> ModuleContext:
    target = Target("local", settings.aws_region, settings.aws_endpoint_url, settings.aws_access_key_id,
                    settings.aws_secret_access_key)
    return ModuleContext(target=target, check_mode=check_mode, project_dir=project,
                         build_dir=project / "build", client=lambda service: aws_client(settings, service),
                         build_python=settings.emulator_venv_path / "bin" / "python")


def function_arguments(**overrides: Any) -> dict[str, Any]:
    arguments = {
        "name": "hello",
        "source": "src/functions/hello",
        "requirements": "src/functions/hello/requirements.txt",
        "shared": ["src/common"],
        "runtime": "python3.11",
        "handler": "handler.handler",
        "role": ROLE,
        "environment": {"STAGE": "integration"},
        "timeout": 10,
        "memory_size": 128,
    }
    arguments.update(overrides)
    return arguments


@pytest.fixture(scope="module")
def function(stack: Settings, project: Path) -> ModuleResult:
    """The `hello` function, deployed once for the module's tests."""
    result = LambdaFunction().run(function_arguments(), make_context(stack, project))
    assert result.status is Status.CHANGED, result.message
    return result


def get_json(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=15) as response:  # noqa: S310 - a loopback http URL.
        return response.status, json.load(response)


def test_lambda_deploys_and_invokes(stack: Settings, project: Path, function: ModuleResult) -> None:
    assert function.facts["arn"].endswith(":function:hello")

    response = aws_client(stack, "lambda").invoke(FunctionName="hello", Payload=b"{}")
    payload = json.loads(response["Payload"].read())
    assert response.get("FunctionError") is None, payload
    assert payload["statusCode"] == 200
    assert json.loads(payload["body"])["message"] == "HELLO FROM A DEPENDENCY"

    configuration = aws_client(stack, "lambda").get_function_configuration(FunctionName="hello")
    assert configuration["CodeSha256"] == function.facts["code_sha256"]


def test_lambda_second_run_ok(stack: Settings, project: Path, function: ModuleResult) -> None:
    again = LambdaFunction().run(function_arguments(), make_context(stack, project))
    assert again.status is Status.OK, again.diff
    assert again.facts["code_sha256"] == function.facts["code_sha256"]


def test_lambda_config_change(stack: Settings, project: Path, function: ModuleResult) -> None:
    check_context = make_context(stack, project, check_mode=True)
    checked = LambdaFunction().run(function_arguments(timeout=20), check_context)
    assert checked.status is Status.CHANGED
    assert aws_client(stack, "lambda").get_function_configuration(FunctionName="hello")["Timeout"] == 10

    changed = LambdaFunction().run(function_arguments(timeout=20), make_context(stack, project))
    assert changed.status is Status.CHANGED
    assert aws_client(stack, "lambda").get_function_configuration(FunctionName="hello")["Timeout"] == 20

    restored = LambdaFunction().run(function_arguments(), make_context(stack, project))
    assert restored.status is Status.CHANGED


def api_arguments() -> dict[str, Any]:
    return {
        "name": "integration-api",
        "stage": "local",
        "routes": [
            {"path": "/api/hello", "method": "GET", "function": "hello"},
            {"path": "/api/items/{proxy+}", "method": "ANY", "function": "hello"},
        ],
    }


def test_api_routes_reach_function(stack: Settings, project: Path, function: ModuleResult) -> None:
    created = ApiGateway().run(api_arguments(), make_context(stack, project))
    assert created.status is Status.CHANGED, created.message
    base = f"{stack.aws_endpoint_url}/restapis/{created.facts['id']}/local/_user_request_"
    assert created.facts["invoke_url"] == base

    status, body = get_json(created.facts["urls"]["GET /api/hello"])
    assert status == 200
    assert body["message"] == "HELLO FROM A DEPENDENCY"
    assert body["path"] == "/api/hello"

    status, body = get_json(f"{base}/api/items/42")
    assert status == 200
    assert body["path"] == "/api/items/42"

    again = ApiGateway().run(api_arguments(), make_context(stack, project))
    assert again.status is Status.OK, again.message
    assert again.facts == created.facts


def pool_arguments() -> dict[str, Any]:
    return {
        "name": "integration-users",
        "auto_verified_attributes": ["email"],
        "username_attributes": ["email"],
        "password_policy": {"MinimumLength": 8, "RequireSymbols": False},
        "email_verification_subject": "Your verification code",
        "email_verification_message": "Your verification code is <strong>{####}</strong>",
        "client": {"name": "integration-web"},
    }


def search_mail(settings: Settings, address: str) -> dict[str, Any]:
    query = urllib.parse.urlencode({"kind": "to", "query": address})
    with urllib.request.urlopen(f"{settings.mail_api_url}/api/v2/search?{query}",  # noqa: S310 - loopback.
                                timeout=5) as response:
        return json.load(response)  # type: ignore[no-any-return]


def test_cognito_sign_up_sends_verification_mail(stack: Settings, project: Path) -> None:
    created = CognitoUserPool().run(pool_arguments(), make_context(stack, project))
    assert created.status is Status.CHANGED, created.message
    assert created.facts["client_id"]

    address = f"user-{uuid.uuid4().hex[:8]}@example.com"
    aws_client(stack, "cognito-idp").sign_up(ClientId=created.facts["client_id"], Username=address,
                                             Password="Password123", UserAttributes=[
                                                 {"Name": "email", "Value": address}])
    deadline = time.monotonic() + MAIL_TIMEOUT_SECONDS
    found = search_mail(stack, address)
    while not found.get("items") and time.monotonic() < deadline:
        time.sleep(0.5)
        found = search_mail(stack, address)
    assert found["items"], f"no verification mail for {address}"
    assert found["items"][0]["Content"]["Headers"]["Subject"] == ["Your verification code"]

    again = CognitoUserPool().run(pool_arguments(), make_context(stack, project))
    assert again.status is Status.OK, again.message
    assert again.facts == created.facts
