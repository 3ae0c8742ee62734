"""Client of the tutor system's sign-up API on a private stack, for the integration and e2e tests."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import boto3
import botocore.config

from localaws.mail.client import MailCatcherClient
from localaws.playbook import CollectingReporter, RunOptions
from localaws.provisioning import apply_playbook
from localaws.settings import Settings

MAIL_WAIT_SECONDS = 15.0
HTTP_TIMEOUT_SECONDS = 60
PASSWORD = "Tutor-Passw0rd"


def unique_email(prefix: str) -> str:
    """Return an address no earlier test used, so tests sharing a stack do not collide."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def api_urls(settings: Settings) -> dict[str, str]:
    """Return each route's URL ("POST /api/auth/login" to URL) from a check-mode run of the playbooks."""
    collector = CollectingReporter()
    apply_playbook(settings, "local", RunOptions(check=True), confirm=lambda _: False, reporter=collector)
    for result in collector.results:
        if result.module == "api_gateway":
            return dict(result.facts["urls"])
    raise AssertionError("the playbooks have no api_gateway task, so the API has no URLs")


class SignupApi:
    """Call the API's routes over HTTP and the Lambda functions directly, on one stack."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.urls = api_urls(settings)
        self.mail = MailCatcherClient(settings.mail_api_url)
        self.lambda_client = boto3.session.Session().client(
            "lambda",
            endpoint_url=settings.aws_endpoint_url,
            region_name=settings.aws_region,
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=settings.aws_secret_access_key,
            config=botocore.config.Config(read_timeout=HTTP_TIMEOUT_SECONDS, retries={"max_attempts": 1}),
        )

    def request(self, route: str, body: dict[str, Any] | bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        """Send a request to `route` (e.g. "POST /api/auth/login") and return the status and JSON body."""
        method = route.split(" ", 1)[0]
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        request = urllib.request.Request(self.urls[route], data=data, method=method,  # noqa: S310
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def register(self, email: str, password: str = PASSWORD, name: str = "") -> tuple[int, dict[str, Any]]:
        body = {"email": email, "password": password}
        if name:
            body["name"] = name
        return self.request("POST /api/auth/register", body)

    def confirm(self, email: str, code: str) -> tuple[int, dict[str, Any]]:
        return self.request("POST /api/auth/confirm", {"email": email, "code": code})

    def login(self, email: str, password: str = PASSWORD) -> tuple[int, dict[str, Any]]:
        return self.request("POST /api/auth/login", {"email": email, "password": password})

    def me(self, token: str | None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return self.request("GET /api/me", headers=headers)

    def function_name(self, short_name: str) -> str:
        return f"tutor-system-{self.settings.environment}-{short_name}"

    def invoke(self, short_name: str, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke a function of the stack directly and return its result, failing on a function error."""
        response = self.lambda_client.invoke(FunctionName=self.function_name(short_name),
                                             Payload=json.dumps(event).encode())
        payload = response["Payload"].read().decode()
        assert "FunctionError" not in response, payload
        return dict(json.loads(payload))

    def wait_for_code(self, email: str, previous: str | None = None) -> str:
        """Return the code of the newest mail to `email`, waiting until one other than `previous` arrives."""
        deadline = time.monotonic() + MAIL_WAIT_SECONDS
        while True:
            code = self.mail.latest_code(email)
            if code is not None and code != previous:
                return code
            if time.monotonic() > deadline:
                raise AssertionError(f"no code mailed to {email} within {MAIL_WAIT_SECONDS:.0f} s")
            time.sleep(0.2)

    def messages_to(self, email: str) -> list[dict[str, Any]]:
        return self.mail.search("to", email)
