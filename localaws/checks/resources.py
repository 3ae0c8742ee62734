"""Resource checks of `invoke verify`: each playbook resource exists, is configured, and works.

The playbooks run in check mode: a task that would change nothing proves the
resource is configured as its playbook describes. Then each resource that the
application uses at run time gets one real call that proves it works.
"""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions

from localaws.checks.readiness import CheckResult, aws_client
from localaws.errors import ToolkitError
from localaws.playbook import CollectingReporter, RunOptions, Status, TaskResult
from localaws.provisioning import apply_playbook
from localaws.runtime.health import http_get
from localaws.settings import Settings

FIX = "run `invoke resources.setup`"
Probe = Callable[[Settings, dict[str, Any]], str]


def _kms_key(settings: Settings, facts: dict[str, Any]) -> str:
    kms = aws_client(settings, "kms")
    key = kms.describe_key(KeyId=facts["alias"])["KeyMetadata"]
    if key["KeyState"] != "Enabled":
        raise ToolkitError(f"key {key['KeyId']} is {key['KeyState']}")
    if not kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]:
        raise ToolkitError(f"key rotation is off for {facts['alias']}")
    return f"{facts['alias']} resolves to enabled key {key['KeyId']}, rotation on"


def _secret(settings: Settings, facts: dict[str, Any]) -> str:
    value = aws_client(settings, "secretsmanager").get_secret_value(SecretId=facts["name"])
    json.loads(value["SecretString"])
    return f"{facts['name']} decrypts to a JSON document"


def _lambda_function(settings: Settings, facts: dict[str, Any]) -> str:
    client = aws_client(settings, "lambda")
    configuration = client.get_function(FunctionName=facts["name"])["Configuration"]
    if configuration.get("State", "Active") != "Active":
        raise ToolkitError(f"{facts['name']} is {configuration['State']}")
    response = client.invoke(FunctionName=facts["name"], Payload=b"{}")
    if response.get("FunctionError"):
        payload = response["Payload"].read().decode("utf-8", "replace")[:300]
        raise ToolkitError(f"{facts['name']} raised {response['FunctionError']}: {payload}")
    return f"{facts['name']} is Active and answered an invocation"


def _api_gateway(settings: Settings, facts: dict[str, Any]) -> str:
    urls = {route: url for route, url in (facts.get("urls") or {}).items()
            if route.startswith("GET ") and "{" not in route}
    if not urls:
        return f"stage {facts.get('stage')} deployed; no GET route to call"
    for route, url in urls.items():
        try:
            status, _ = http_get(url, timeout=10)
        except (OSError, urllib.error.URLError) as error:
            raise ToolkitError(f"{route} ({url}) did not respond: {error}") from None
        if status >= 500:
            raise ToolkitError(f"{route} ({url}) returned HTTP {status}")
    return f"stage {facts.get('stage')} responded on {', '.join(urls)}"


def _cognito_user_pool(settings: Settings, facts: dict[str, Any]) -> str:
    pool = aws_client(settings, "cognito-idp").describe_user_pool(UserPoolId=facts["id"])["UserPool"]
    if "email" not in pool.get("AutoVerifiedAttributes", []):
        raise ToolkitError(f"user pool {facts['name']} does not verify email addresses")
    return f"user pool {facts['name']} verifies email addresses"


PROBES: dict[str, Probe] = {
    "kms_key": _kms_key,
    "secret": _secret,
    "lambda_function": _lambda_function,
    "api_gateway": _api_gateway,
    "cognito_user_pool": _cognito_user_pool,
}


def _entries(result: TaskResult) -> Iterator[tuple[str, Status, str, dict[str, Any]]]:
    if result.items:
        for item in result.items:
            yield f"{result.task} [{item.item}]", item.status, item.message, item.facts
    else:
        yield result.task, result.status, result.message, result.facts


def check_resources(settings: Settings) -> list[CheckResult]:
    """Check every resource of playbooks/site.yml on the emulator; change nothing."""
    collector = CollectingReporter()
    try:
        apply_playbook(settings, "local", RunOptions(check=True), confirm=lambda _: False,
                       reporter=collector)
    except ToolkitError as error:
        return [CheckResult("resources", False, str(error), FIX)]

    checks = []
    for result in collector.results:
        for name, status, message, facts in _entries(result):
            if status is not Status.OK:
                checks.append(CheckResult(f"resource {name}", False, message or str(status), FIX))
                continue
            probe = PROBES.get(result.module)
            if probe is None:
                checks.append(CheckResult(f"resource {name}", True, message or "as configured"))
                continue
            try:
                detail = probe(settings, facts)
            except (ToolkitError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
                    KeyError, ValueError) as error:
                checks.append(CheckResult(f"resource {name}", False, str(error), FIX))
            else:
                checks.append(CheckResult(f"resource {name}", True, detail))
    return checks
