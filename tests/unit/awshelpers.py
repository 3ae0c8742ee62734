"""A fake AWS environment for unit tests that run boto3 against moto's in-process mock."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest


def use_fake_aws(monkeypatch: pytest.MonkeyPatch, folder: Path, region: str,
                 cleared: Iterable[str] = ()) -> None:
    """Give boto3 fake credentials and `region`, and hide the machine's endpoints, profile and config files.

    `cleared` names further variables to remove for the test's duration.
    """
    endpoints = [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL")]
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", *endpoints, *cleared):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "aws-credentials"))
