"""The Lambda, API Gateway and Cognito modules, on moto's in-process mock, plus Lambda packaging."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localaws.errors import ConfigError
from localaws.playbook.modules import _packaging
from localaws.playbook.modules._packaging import BuildError, BuildInputs, build_package, pip_command
from localaws.playbook.modules.api_gateway import ApiGateway
from localaws.playbook.modules.base import MASK, ModuleContext, Target
from localaws.playbook.modules.cognito import CognitoUserPool
from localaws.playbook.modules.lambda_function import LambdaFunction
from localaws.playbook.results import Status
from tests.unit.awshelpers import use_fake_aws

REGION = "us-east-1"
HANDLER = '''import json


def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"ok": True})}
'''
# Operations that change something. A second run with the same arguments must call none of them.
CHANGING = frozenset({
    "create_function", "update_function_code", "update_function_configuration", "delete_function",
    "tag_resource", "untag_resource", "add_permission", "remove_permission",
    "create_rest_api", "update_rest_api", "delete_rest_api", "create_resource", "delete_resource",
    "put_method", "delete_method", "put_integration", "create_deployment",
    "create_user_pool", "update_user_pool", "delete_user_pool", "create_user_pool_client",
    "update_user_pool_client",
})


class RecordingClient:
    """A boto3 client that records the name and arguments of every operation called on it."""

    def __init__(self, service: str, calls: list[tuple[str, str, dict[str, Any]]]) -> None:
        self._client = boto3.client(service, region_name=REGION)
        self._service = service
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name in ("get_paginator", "get_waiter", "can_paginate"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append((self._service, name, kwargs))
            return attribute(*args, **kwargs)

        return call


class Harness:
    """Contexts over one project folder, recording every AWS call the modules make."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def context(self, check_mode: bool = False) -> ModuleContext:
        return ModuleContext(target=Target("aws", REGION, None), check_mode=check_mode,
                             project_dir=self.project, build_dir=self.project / "build",
                             client=lambda service: RecordingClient(service, self.calls))

    def changing_calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [(name, kwargs) for _service, name, kwargs in self.calls if name in CHANGING]

    def reset(self) -> None:
        self.calls.clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Fake credentials and moto's mock, so no request can reach AWS."""
    use_fake_aws(monkeypatch, tmp_path, REGION)
    with mock_aws():
        yield


@pytest.fixture
def role_arn(aws: None) -> str:
    """Create an execution role, because moto's Lambda rejects roles that IAM does not know."""
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="lambda-role", AssumeRolePolicyDocument=json.dumps(trust))
    return str(role["Role"]["Arn"])


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    for name in ("alpha", "beta"):
        folder = tmp_path / "src" / "functions" / name
        folder.mkdir(parents=True)
        (folder / "handler.py").write_text(HANDLER)
    common = tmp_path / "src" / "common"
    common.mkdir(parents=True)
    (common / "__init__.py").write_text("")
    (common / "responses.py").write_text("STATUS = 200\n")
    return Harness(tmp_path)


def function_arguments(name: str, role: str, **overrides: Any) -> dict[str, Any]:
    arguments = {
        "name": name,
        "source": f"src/functions/{name}",
        "shared": ["src/common"],
        "runtime": "python3.11",
        "handler": "handler.handler",
        "role": role,
        "environment": {"STAGE": "test", "DB_PASSWORD": "hunter2-secret"},
        "timeout": 10,
        "memory_size": 256,
        "description": f"{name} function",
        "tags": {"project": "tutor"},
    }
    arguments.update(overrides)
    return arguments


def deploy(harness: Harness, arguments: dict[str, Any], check_mode: bool = False) -> Any:
    return LambdaFunction().run(arguments, harness.context(check_mode))


# ---- lambda_function ----


def test_lambda_create_then_ok(harness: Harness, role_arn: str) -> None:
    created = deploy(harness, function_arguments("alpha", role_arn))
    assert created.status is Status.CHANGED
    assert created.facts["name"] == "alpha"
    assert created.facts["arn"].endswith(":function:alpha")
    assert created.facts["version"]

    function = boto3.client("lambda", region_name=REGION).get_function(FunctionName="alpha")
    assert function["Configuration"]["CodeSha256"] == created.facts["code_sha256"]
    assert function["Configuration"]["Timeout"] == 10
    assert function["Configuration"]["Environment"]["Variables"]["STAGE"] == "test"

    harness.reset()
    again = deploy(harness, function_arguments("alpha", role_arn))
    assert again.status is Status.OK
    assert harness.changing_calls() == []
    assert again.facts == created.facts


def test_lambda_zip_contains_source_and_packages(harness: Harness, role_arn: str) -> None:
    deploy(harness, function_arguments("alpha", role_arn))
    with zipfile.ZipFile(harness.project / "build" / "alpha" / "package.zip") as archive:
        names = archive.namelist()
    assert names == ["common/__init__.py", "common/responses.py", "handler.py"]


def test_lambda_source_change_updates_that_function(harness: Harness, role_arn: str) -> None:
    deploy(harness, function_arguments("alpha", role_arn))
    deploy(harness, function_arguments("beta", role_arn))
    (harness.project / "src" / "functions" / "alpha" / "handler.py").write_text(HANDLER + "\n# changed\n")

    harness.reset()
    alpha = deploy(harness, function_arguments("alpha", role_arn))
    beta = deploy(harness, function_arguments("beta", role_arn))

    assert alpha.status is Status.CHANGED
    assert beta.status is Status.OK
    changing = harness.changing_calls()
    assert [name for name, _ in changing] == ["update_function_code"]
    assert changing[0][1]["FunctionName"] == "alpha"
    assert alpha.diff["before"]["code_sha256"] != alpha.diff["after"]["code_sha256"]


def test_lambda_config_change_updates_configuration_only(harness: Harness, role_arn: str) -> None:
    deploy(harness, function_arguments("alpha", role_arn))
    harness.reset()
    environment = {"STAGE": "prod", "DB_PASSWORD": "hunter2-secret"}
    changed = deploy(harness, function_arguments("alpha", role_arn, timeout=30, environment=environment))

    assert changed.status is Status.CHANGED
    changing = harness.changing_calls()
    assert [name for name, _ in changing] == ["update_function_configuration"]
    request = changing[0][1]
    assert request["Timeout"] == 30
    assert request["Environment"] == {"Variables": {"STAGE": "prod", "DB_PASSWORD": "hunter2-secret"}}
    assert "Handler" not in request
    assert "MemorySize" not in request

    lambda_client = boto3.client("lambda", region_name=REGION)
    configuration = lambda_client.get_function_configuration(FunctionName="alpha")
    assert configuration["Timeout"] == 30
    assert configuration["Environment"]["Variables"]["STAGE"] == "prod"


def test_lambda_diff_masks_secret_environment(harness: Harness, role_arn: str) -> None:
    created = deploy(harness, function_arguments(
        "alpha", role_arn, environment={"DB_PASSWORD": "hunter2-secret", "URL": "postgres://u:pw-9@db/x"}))
    assert created.diff["after"]["environment"] == {"DB_PASSWORD": MASK, "URL": f"postgres://u:{MASK}@db/x"}
    assert "hunter2-secret" not in json.dumps(created.diff)
    assert "pw-9" not in json.dumps(created.diff)


def test_lambda_tag_change(harness: Harness, role_arn: str) -> None:
    deploy(harness, function_arguments("alpha", role_arn))
    harness.reset()
    changed = deploy(harness, function_arguments("alpha", role_arn, tags={"owner": "team"}))

    assert changed.status is Status.CHANGED
    assert sorted(name for name, _ in harness.changing_calls()) == ["tag_resource", "untag_resource"]
    arn = changed.facts["arn"]
    assert boto3.client("lambda", region_name=REGION).list_tags(Resource=arn)["Tags"] == {"owner": "team"}


def test_lambda_check_mode_creates_nothing(harness: Harness, role_arn: str) -> None:
    result = deploy(harness, function_arguments("alpha", role_arn), check_mode=True)

    assert result.status is Status.CHANGED
    assert result.message == "would create function alpha"
    assert result.facts["arn"] is None
    assert harness.changing_calls() == []
    assert boto3.client("lambda", region_name=REGION).list_functions()["Functions"] == []
    assert not (harness.project / "build").exists()


def test_lambda_check_mode_reports_source_change(harness: Harness, role_arn: str) -> None:
    deploy(harness, function_arguments("alpha", role_arn))
    zip_before = (harness.project / "build" / "alpha" / "package.zip").read_bytes()
    (harness.project / "src" / "functions" / "alpha" / "handler.py").write_text(HANDLER + "\n# changed\n")

    harness.reset()
    result = deploy(harness, function_arguments("alpha", role_arn), check_mode=True)

    assert result.status is Status.CHANGED
    assert harness.changing_calls() == []
    assert (harness.project / "build" / "alpha" / "package.zip").read_bytes() == zip_before


def test_lambda_absent(harness: Harness, role_arn: str) -> None:
    deploy(harness, function_arguments("alpha", role_arn))

    checked = deploy(harness, {"name": "alpha", "state": "absent"}, check_mode=True)
    assert checked.status is Status.CHANGED
    assert boto3.client("lambda", region_name=REGION).get_function(FunctionName="alpha")

    removed = deploy(harness, {"name": "alpha", "state": "absent"})
    assert removed.status is Status.CHANGED
    assert boto3.client("lambda", region_name=REGION).list_functions()["Functions"] == []

    again = deploy(harness, {"name": "alpha", "state": "absent"})
    assert again.status is Status.OK


def test_lambda_missing_arguments(harness: Harness, role_arn: str) -> None:
    with pytest.raises(ConfigError, match="missing handler, role"):
        deploy(harness, {"name": "alpha", "source": "src/functions/alpha"})


def test_lambda_missing_source_folder(harness: Harness, role_arn: str) -> None:
    with pytest.raises(ConfigError, match="not found"):
        deploy(harness, function_arguments("alpha", role_arn, source="src/functions/missing"))


# ---- packaging ----


@pytest.fixture
def pip_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Replace pip with a recorder that installs one fake package into the --target folder."""
    calls: list[list[str]] = []

    def fake_pip(command: list[str]) -> None:
        calls.append(command)
        target = Path(command[command.index("--target") + 1])
        (target / "fakepkg").mkdir(parents=True)
        (target / "fakepkg" / "__init__.py").write_text("VERSION = 1\n")

    monkeypatch.setattr(_packaging, "run_pip", fake_pip)
    return calls


def make_inputs(project: Path, requirements: Path | None = None, target: str = "aws") -> BuildInputs:
    return BuildInputs(source=project / "src" / "functions" / "alpha", packages=(project / "src" / "common",),
                       requirements=requirements, runtime="python3.11", target=target,
                       build_python=Path("/opt/emulator/bin/python"))


def test_zip_is_deterministic(harness: Harness) -> None:
    inputs = make_inputs(harness.project)
    first = build_package(inputs, harness.project / "one")
    handler = harness.project / "src" / "functions" / "alpha" / "handler.py"
    os.utime(handler, (1_000_000, 1_000_000))
    second = build_package(inputs, harness.project / "two")

    assert first.zip_path.read_bytes() == second.zip_path.read_bytes()
    assert first.code_sha256 == second.code_sha256
    with zipfile.ZipFile(first.zip_path) as archive:
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644


def test_zip_skips_bytecode(harness: Harness) -> None:
    cache = harness.project / "src" / "functions" / "alpha" / "__pycache__"
    cache.mkdir()
    (cache / "handler.cpython-311.pyc").write_bytes(b"\0")
    package = build_package(make_inputs(harness.project), harness.project / "out")
    with zipfile.ZipFile(package.zip_path) as archive:
        assert not [name for name in archive.namelist() if "__pycache__" in name]


def test_build_reuses_zip_without_pip(harness: Harness, pip_calls: list[list[str]]) -> None:
    requirements = harness.project / "requirements.txt"
    requirements.write_text("requests==2.32.3\n")
    inputs = make_inputs(harness.project, requirements)

    first = build_package(inputs, harness.project / "out")
    assert first.rebuilt
    assert len(pip_calls) == 1
    with zipfile.ZipFile(first.zip_path) as archive:
        assert "fakepkg/__init__.py" in archive.namelist()

    second = build_package(inputs, harness.project / "out")
    assert not second.rebuilt
    assert len(pip_calls) == 1
    assert second.code_sha256 == first.code_sha256

    requirements.write_text("requests==2.32.4\n")
    third = build_package(inputs, harness.project / "out")
    assert third.rebuilt
    assert len(pip_calls) == 2


def test_build_digest_covers_runtime_and_target(harness: Harness, pip_calls: list[list[str]]) -> None:
    out = harness.project / "out"
    first = build_package(make_inputs(harness.project), out)
    local = build_package(make_inputs(harness.project, target="local"), out)
    assert local.input_digest != first.input_digest
    assert local.rebuilt


def test_build_skips_pip_for_empty_requirements(harness: Harness, pip_calls: list[list[str]]) -> None:
    requirements = harness.project / "requirements.txt"
    requirements.write_text("# nothing yet\n\n")
    build_package(make_inputs(harness.project, requirements), harness.project / "out")
    assert pip_calls == []


def test_pip_command_per_target(harness: Harness) -> None:
    requirements = harness.project / "requirements.txt"
    aws_command = pip_command(make_inputs(harness.project, requirements), requirements, Path("/tmp/deps"))
    assert aws_command[0] == sys.executable
    assert aws_command[aws_command.index("--platform") + 1] == "manylinux2014_x86_64"
    assert aws_command[aws_command.index("--python-version") + 1] == "3.11"
    assert "--only-binary=:all:" in aws_command

    local_command = pip_command(make_inputs(harness.project, requirements, "local"), requirements,
                                Path("/tmp/deps"))
    assert local_command[:3] == ["/opt/emulator/bin/python", "-m", "pip"]
    assert "--platform" not in local_command


def test_pip_failure_shows_stderr_tail() -> None:
    script = "import sys; sys.stderr.write('no matching distribution\\n'); sys.exit(1)"
    failing = [sys.executable, "-c", script]
    with pytest.raises(BuildError, match="no matching distribution"):
        _packaging.run_pip(failing)


# ---- api_gateway ----


def api_arguments(**overrides: Any) -> dict[str, Any]:
    arguments = {
        "name": "tutor-api",
        "description": "tutor API",
        "stage": "test",
        "routes": [
            {"path": "/api/auth/register", "method": "POST", "function": "alpha"},
            {"path": "/api/health", "method": "get", "function": "beta"},
            {"path": "/api/{proxy+}", "method": "ANY", "function": "alpha"},
        ],
    }
    arguments.update(overrides)
    return arguments


@pytest.fixture
def functions(harness: Harness, role_arn: str) -> dict[str, str]:
    """Deploy functions alpha and beta and return their ARNs, forgetting the calls that made them."""
    arns = {}
    for name in ("alpha", "beta"):
        arns[name] = deploy(harness, function_arguments(name, role_arn)).facts["arn"]
    harness.reset()
    return arns


def apply_api(harness: Harness, arguments: dict[str, Any], check_mode: bool = False) -> Any:
    return ApiGateway().run(arguments, harness.context(check_mode))


def test_api_create_then_ok(harness: Harness, functions: dict[str, str]) -> None:
    created = apply_api(harness, api_arguments())
    assert created.status is Status.CHANGED

    api_id = created.facts["id"]
    assert created.facts["stage"] == "test"
    assert created.facts["invoke_url"] == f"https://{api_id}.execute-api.{REGION}.amazonaws.com/test"
    invoke_url = created.facts["invoke_url"]
    assert created.facts["urls"]["POST /api/auth/register"] == f"{invoke_url}/api/auth/register"
    assert created.facts["urls"]["ANY /api/{proxy+}"] == f"{invoke_url}/api/{{proxy+}}"

    apigateway = boto3.client("apigateway", region_name=REGION)
    paths = {item["path"]: item for item in apigateway.get_resources(restApiId=api_id)["items"]}
    assert set(paths) == {"/", "/api", "/api/auth", "/api/auth/register", "/api/health", "/api/{proxy+}"}
    integration = apigateway.get_integration(restApiId=api_id, resourceId=paths["/api/health"]["id"],
                                             httpMethod="GET")
    assert integration["type"] == "AWS_PROXY"
    assert integration["uri"] == (f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
                                  f"{functions['beta']}/invocations")
    assert apigateway.get_stage(restApiId=api_id, stageName="test")["deploymentId"]

    policy = json.loads(boto3.client("lambda", region_name=REGION).get_policy(FunctionName="alpha")["Policy"])
    statement = policy["Statement"][0]
    assert statement["Sid"] == f"apigateway-{api_id}"
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(f":{api_id}/*")

    harness.reset()
    again = apply_api(harness, api_arguments())
    assert again.status is Status.OK
    assert harness.changing_calls() == []
    assert again.facts == created.facts


def test_api_route_change_redeploys(harness: Harness, functions: dict[str, str]) -> None:
    created = apply_api(harness, api_arguments())
    harness.reset()
    routes = [
        {"path": "/api/auth/register", "method": "POST", "function": "beta"},
        {"path": "/api/health", "method": "GET", "function": "beta"},
    ]
    changed = apply_api(harness, api_arguments(routes=routes))

    assert changed.status is Status.CHANGED
    names = [name for name, _ in harness.changing_calls()]
    assert "put_integration" in names
    assert "delete_resource" in names
    assert names.count("create_deployment") == 1
    assert "create_rest_api" not in names

    apigateway = boto3.client("apigateway", region_name=REGION)
    paths = {item["path"] for item in apigateway.get_resources(restApiId=created.facts["id"])["items"]}
    assert "/api/{proxy+}" not in paths

    harness.reset()
    assert apply_api(harness, api_arguments(routes=routes)).status is Status.OK
    assert harness.changing_calls() == []


def test_api_description_change_keeps_deployment(harness: Harness, functions: dict[str, str]) -> None:
    apply_api(harness, api_arguments())
    harness.reset()
    changed = apply_api(harness, api_arguments(description="new text"))
    assert changed.status is Status.CHANGED
    assert [name for name, _ in harness.changing_calls()] == ["update_rest_api"]


def test_api_check_mode_creates_nothing(harness: Harness, functions: dict[str, str]) -> None:
    result = apply_api(harness, api_arguments(), check_mode=True)
    assert result.status is Status.CHANGED
    assert result.facts["id"] is None
    assert harness.changing_calls() == []
    assert boto3.client("apigateway", region_name=REGION).get_rest_apis()["items"] == []


def test_api_check_mode_reports_new_route(harness: Harness, functions: dict[str, str]) -> None:
    apply_api(harness, api_arguments())
    routes = [*api_arguments()["routes"], {"path": "/api/quiz", "method": "GET", "function": "beta"}]
    harness.reset()
    result = apply_api(harness, api_arguments(routes=routes), check_mode=True)
    assert result.status is Status.CHANGED
    assert "route GET /api/quiz" in result.message
    assert harness.changing_calls() == []


def test_api_rejects_unknown_function(harness: Harness, functions: dict[str, str]) -> None:
    routes = [{"path": "/x", "method": "GET", "function": "missing"}]
    with pytest.raises(ConfigError, match="'missing'"):
        apply_api(harness, api_arguments(routes=routes))


def test_api_rejects_bad_method(harness: Harness, functions: dict[str, str]) -> None:
    routes = [{"path": "/x", "method": "FETCH", "function": "alpha"}]
    with pytest.raises(ConfigError, match="FETCH"):
        apply_api(harness, api_arguments(routes=routes))


def test_api_absent(harness: Harness, functions: dict[str, str]) -> None:
    apply_api(harness, api_arguments())
    removed = apply_api(harness, {"name": "tutor-api", "state": "absent"})
    assert removed.status is Status.CHANGED
    assert boto3.client("apigateway", region_name=REGION).get_rest_apis()["items"] == []
    assert apply_api(harness, {"name": "tutor-api", "state": "absent"}).status is Status.OK


def test_api_local_urls(tmp_path: Path) -> None:
    context = ModuleContext(target=Target("local", REGION, "http://127.0.0.1:4566"), check_mode=False,
                            project_dir=tmp_path, build_dir=tmp_path, client=lambda service: None)
    function_arn = "arn:aws:lambda:us-east-1:000000000000:function:health"
    raw_routes = [{"path": "/api/health", "method": "GET", "function": function_arn}]
    routes = ApiGateway().resolve_routes(None, raw_routes, check_mode=False)
    facts = ApiGateway().facts(context, "abc123", "tutor-api", "local", routes)
    assert facts["invoke_url"] == "http://127.0.0.1:4566/restapis/abc123/local/_user_request_"
    assert facts["urls"] == {
        "GET /api/health": "http://127.0.0.1:4566/restapis/abc123/local/_user_request_/api/health"}


# ---- cognito_user_pool ----


def pool_arguments(**overrides: Any) -> dict[str, Any]:
    arguments = {
        "name": "tutor-users",
        "username_attributes": ["email"],
        "password_policy": {"MinimumLength": 8, "RequireSymbols": False},
        "email_verification_subject": "Your code",
        "email_verification_message": "Your code is {####}",
        "client": {"name": "tutor-web"},
    }
    arguments.update(overrides)
    return arguments


def apply_pool(harness: Harness, arguments: dict[str, Any], check_mode: bool = False) -> Any:
    return CognitoUserPool().run(arguments, harness.context(check_mode))


def test_pool_create_then_ok(harness: Harness, aws: None) -> None:
    created = apply_pool(harness, pool_arguments())
    assert created.status is Status.CHANGED
    assert created.facts["name"] == "tutor-users"
    assert created.facts["arn"].endswith(created.facts["id"])

    idp = boto3.client("cognito-idp", region_name=REGION)
    pool = idp.describe_user_pool(UserPoolId=created.facts["id"])["UserPool"]
    assert pool["AutoVerifiedAttributes"] == ["email"]
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["Policies"]["PasswordPolicy"]["RequireSymbols"] is False
    assert pool["EmailVerificationSubject"] == "Your code"
    app_client = idp.describe_user_pool_client(UserPoolId=created.facts["id"],
                                               ClientId=created.facts["client_id"])["UserPoolClient"]
    assert sorted(app_client["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"]
    assert "ClientSecret" not in app_client

    harness.reset()
    again = apply_pool(harness, pool_arguments())
    assert again.status is Status.OK
    assert harness.changing_calls() == []
    assert again.facts == created.facts


def test_pool_policy_change_updates_pool(harness: Harness, aws: None) -> None:
    created = apply_pool(harness, pool_arguments())
    harness.reset()
    policy = {"min_length": 12, "require_symbols": False}
    changed = apply_pool(harness, pool_arguments(password_policy=policy))

    assert changed.status is Status.CHANGED
    assert [name for name, _ in harness.changing_calls()] == ["update_user_pool"]
    assert changed.diff["before"]["pool"]["password_policy"]["MinimumLength"] == 8
    assert changed.diff["after"]["pool"]["password_policy"]["MinimumLength"] == 12
    pool = boto3.client("cognito-idp", region_name=REGION).describe_user_pool(
        UserPoolId=created.facts["id"])["UserPool"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 12
    assert pool["EmailVerificationSubject"] == "Your code"


def test_pool_client_flows_change(harness: Harness, aws: None) -> None:
    apply_pool(harness, pool_arguments())
    harness.reset()
    flows = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    changed = apply_pool(harness, pool_arguments(client={"name": "tutor-web", "explicit_auth_flows": flows}))

    assert changed.status is Status.CHANGED
    changing = harness.changing_calls()
    assert [name for name, _ in changing] == ["update_user_pool_client"]
    assert sorted(changing[0][1]["ExplicitAuthFlows"]) == sorted(flows)


def test_pool_trigger_grants_invoke(harness: Harness, role_arn: str) -> None:
    function_arn = deploy(harness, function_arguments("alpha", role_arn)).facts["arn"]
    created = apply_pool(harness, pool_arguments(lambda_triggers={"PostConfirmation": "alpha"}))

    pool = boto3.client("cognito-idp", region_name=REGION).describe_user_pool(
        UserPoolId=created.facts["id"])["UserPool"]
    assert pool["LambdaConfig"]["PostConfirmation"] == function_arn
    policy = json.loads(boto3.client("lambda", region_name=REGION).get_policy(FunctionName="alpha")["Policy"])
    statement = policy["Statement"][0]
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == created.facts["arn"]

    harness.reset()
    again = apply_pool(harness, pool_arguments(lambda_triggers={"PostConfirmation": function_arn}))
    assert again.status is Status.OK
    assert harness.changing_calls() == []


def test_pool_check_mode_creates_nothing(harness: Harness, aws: None) -> None:
    result = apply_pool(harness, pool_arguments(), check_mode=True)
    assert result.status is Status.CHANGED
    assert result.facts["id"] is None
    assert harness.changing_calls() == []
    assert boto3.client("cognito-idp", region_name=REGION).list_user_pools(MaxResults=10)["UserPools"] == []


def test_pool_username_attributes_fixed(harness: Harness, aws: None) -> None:
    apply_pool(harness, pool_arguments())
    with pytest.raises(ConfigError, match="username_attributes"):
        apply_pool(harness, pool_arguments(username_attributes=[]))


def test_pool_rejects_message_without_code(harness: Harness, aws: None) -> None:
    with pytest.raises(ConfigError, match=r"\{####\}"):
        apply_pool(harness, pool_arguments(email_verification_message="Welcome"))


def test_pool_absent(harness: Harness, aws: None) -> None:
    apply_pool(harness, pool_arguments())
    removed = apply_pool(harness, {"name": "tutor-users", "state": "absent"})
    assert removed.status is Status.CHANGED
    assert boto3.client("cognito-idp", region_name=REGION).list_user_pools(MaxResults=10)["UserPools"] == []
    assert apply_pool(harness, {"name": "tutor-users", "state": "absent"}).status is Status.OK
