"""Requests keep working while the database secret rotates: 50 threads query PostgreSQL during 5 rotations."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import psycopg
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from localaws.rotation.service import rotate_now
from localaws.settings import Settings
from shared import database
from shared.secrets_client import SecretsClient, SecretsError

from .rotationhelpers import reload_settings

pytestmark = pytest.mark.integration

WORKERS = 50
ROTATIONS = 5
CACHE_TTL_SECONDS = 0.5


class Counter:
    """Requests made and failed, with the first few errors, shared by the worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.failed = 0
        self.errors: list[str] = []

    def record(self, error: Exception | None) -> None:
        with self.lock:
            self.total += 1
            if error is not None:
                self.failed += 1
                if len(self.errors) < 5:
                    self.errors.append(f"{type(error).__name__}: {error}")


def request(secrets: SecretsClient) -> None:
    """Serve one request as a cold worker would: open a connection with the current secret and query."""
    with database.open_connection(secrets=secrets) as connection:
        row = connection.execute("select 1 as one").fetchone()
    assert row == {"one": 1}


def worker(secrets: SecretsClient, stop: threading.Event, counter: Counter) -> None:
    while not stop.is_set():
        try:
            request(secrets)
        except (psycopg.Error, SecretsError, BotoCoreError, ClientError, AssertionError) as error:
            counter.record(error)
        else:
            counter.record(None)


def secrets_client(settings: Settings) -> SecretsClient:
    client: Any = boto3.session.Session(
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        region_name=settings.aws_region,
    ).client("secretsmanager", endpoint_url=settings.aws_endpoint_url)
    return SecretsClient(client, ttl_seconds=CACHE_TTL_SECONDS, environ={"ENVIRONMENT": settings.environment})


def test_rotations_fail_no_requests(stack: Settings) -> None:
    settings = reload_settings(stack)
    secrets = secrets_client(settings)
    counter = Counter()
    stop = threading.Event()
    threads = [threading.Thread(target=worker, args=(secrets, stop, counter), daemon=True)
               for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    time.sleep(1)

    results = []
    try:
        for _ in range(ROTATIONS):
            results.extend(rotate_now(reload_settings(stack), ("database",), print))
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    print(f"requests: {counter.total} total, {counter.failed} failed during {ROTATIONS} rotations")
    assert all(result.succeeded for result in results), [result.describe() for result in results]
    assert len(results) == ROTATIONS
    assert counter.total > WORKERS * ROTATIONS
    assert counter.failed == 0, counter.errors
