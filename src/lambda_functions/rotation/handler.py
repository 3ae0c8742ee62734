"""Rotate the tutor system's database and JWT secrets in the four steps Secrets Manager calls.

Secrets Manager invokes the function with `{SecretId, ClientRequestToken, Step}` for the steps
createSecret, setSecret, testSecret and finishSecret, in that order, and retries a failed step with the
same token, so each step checks what an earlier run already did. On the `local` target the toolkit's
rotation driver (`localaws.rotation`) invokes the steps instead, because the emulator does not.

The kind of secret follows from its value: a `secret_key` key makes it a JWT signing secret, `username`
and `password` keys a PostgreSQL login. The database password is changed through the administrator
secret, `<secret name>-admin` unless DB_ADMIN_SECRET_NAME names another, whose role has CREATEROLE.

Each step logs `secret=<name> step=<step> token=<token>` and never a secret value.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import boto3
import psycopg
from botocore.exceptions import ClientError
from psycopg import sql

from shared.logging_setup import configure_logging

configure_logging()
logger = logging.getLogger(__name__)

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
PENDING = "AWSPENDING"
CURRENT = "AWSCURRENT"
# Characters left out of generated values: they need quoting in URLs, env files or SQL literals.
EXCLUDED_CHARACTERS = "\"'\\/@:?#[]%`$&+,;="
DATABASE_PASSWORD_LENGTH = 32
JWT_KEY_LENGTH = 64
CONNECT_TIMEOUT_SECONDS = 5
# The local driver records the rotation policy in this tag because the emulator's RotateSecret
# would rotate at once instead of scheduling.
LOCAL_POLICY_TAG = "localaws:rotation-lambda"


class RotationError(Exception):
    """A rotation step cannot run on this secret or version."""


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    """Run one rotation step on the secret version named by the event's token.

    An empty event runs no step and returns at once, so a health check (`invoke verify` invokes every
    function with `{}`) proves that the function and its imports load.
    """
    if not event:
        logger.info("empty event: no rotation step requested")
        return {"result": "no step requested"}
    try:
        secret_id = event["SecretId"]
        token = event["ClientRequestToken"]
        step = event["Step"]
    except KeyError as error:
        raise RotationError(f"The event lacks {error.args[0]}: expected SecretId, ClientRequestToken "
                            "and Step.") from None
    if step not in STEPS:
        raise RotationError(f"Invalid step {step!r}: expected one of {', '.join(STEPS)}.")

    client = boto3.client("secretsmanager")
    metadata = client.describe_secret(SecretId=secret_id)
    name = metadata["Name"]
    log = StepLog(name, step, token)
    log.info("started")
    check_rotation_enabled(metadata)
    versions = metadata.get("VersionIdsToStages", {})
    stages = versions.get(token, [])
    if CURRENT in stages:
        log.info("version is already AWSCURRENT, nothing to do")
        return {"secret": name, "step": step, "token": token, "result": "already current"}
    # The local driver cannot create an empty AWSPENDING version as RotateSecret does, so
    # createSecret also accepts a token that has no version yet.
    if step != "createSecret" and PENDING not in stages:
        raise RotationError(f"Version {token} of secret {name} is not AWSPENDING, so {step} cannot "
                            "run on it. Start a new rotation.")

    current = read_json(client, name, stage=CURRENT)
    rotation = JwtRotation(client, name, token, log) if "secret_key" in current else \
        DatabaseRotation(client, name, token, log)
    getattr(rotation, STEP_METHODS[step])(current)
    log.info("finished")
    return {"secret": name, "step": step, "token": token, "result": "done"}


STEP_METHODS = {"createSecret": "create", "setSecret": "set", "testSecret": "test",
                "finishSecret": "finish"}


class StepLog:
    """Log lines that name the secret, step and token of the running step."""

    def __init__(self, name: str, step: str, token: str) -> None:
        self.prefix = f"secret={name} step={step} token={token}"

    def info(self, message: str) -> None:
        logger.info("%s: %s", self.prefix, message)


def check_rotation_enabled(metadata: dict[str, Any]) -> None:
    tags = {tag["Key"]: tag["Value"] for tag in metadata.get("Tags", [])}
    if not metadata.get("RotationEnabled") and LOCAL_POLICY_TAG not in tags:
        raise RotationError(f"Rotation is not enabled for secret {metadata['Name']}.")


def read_json(client: Any, name: str, *, stage: str, version_id: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"SecretId": name, "VersionStage": stage}
    if version_id is not None:
        request["VersionId"] = version_id
    text = client.get_secret_value(**request).get("SecretString")
    value = json.loads(text) if text else None
    if not isinstance(value, dict):
        raise RotationError(f"Secret {name} ({stage}) does not hold a JSON object.")
    return value


def random_value(client: Any, length: int) -> str:
    response = client.get_random_password(PasswordLength=length, ExcludeCharacters=EXCLUDED_CHARACTERS)
    return str(response["RandomPassword"])


class Rotation:
    """Steps shared by both kinds of secret: create the pending version and move the labels."""

    def __init__(self, client: Any, name: str, token: str, log: StepLog) -> None:
        self.client = client
        self.name = name
        self.token = token
        self.log = log

    def pending(self) -> dict[str, Any]:
        return read_json(self.client, self.name, stage=PENDING, version_id=self.token)

    def new_value(self, current: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def create(self, current: dict[str, Any]) -> None:
        """Put a new AWSPENDING version under the token unless an earlier run did."""
        try:
            self.pending()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
        else:
            self.log.info("pending version exists already")
            return
        self.client.put_secret_value(SecretId=self.name, ClientRequestToken=self.token,
                                     SecretString=json.dumps(self.new_value(current)),
                                     VersionStages=[PENDING])
        self.log.info("created the pending version")

    def set(self, current: dict[str, Any]) -> None:
        raise NotImplementedError

    def test(self, current: dict[str, Any]) -> None:
        raise NotImplementedError

    def finish(self, current: dict[str, Any]) -> None:
        """Move AWSCURRENT to the pending version; Secrets Manager gives the old one AWSPREVIOUS."""
        metadata = self.client.describe_secret(SecretId=self.name)
        current_version = next((version for version, stages in metadata["VersionIdsToStages"].items()
                                if CURRENT in stages), None)
        self.client.update_secret_version_stage(SecretId=self.name, VersionStage=CURRENT,
                                                MoveToVersionId=self.token,
                                                RemoveFromVersionId=current_version)
        self.log.info(f"moved AWSCURRENT from version {current_version} to {self.token}")


class DatabaseRotation(Rotation):
    """Single-user rotation of a PostgreSQL role's password."""

    def new_value(self, current: dict[str, Any]) -> dict[str, Any]:
        return {**current, "password": random_value(self.client, DATABASE_PASSWORD_LENGTH)}

    def set(self, current: dict[str, Any]) -> None:
        """Give the role the pending password, through the administrator role."""
        pending = self.pending()
        if can_log_in(pending):
            self.log.info("the pending password works already")
            return
        admin_name = os.environ.get("DB_ADMIN_SECRET_NAME") or f"{self.name}-admin"
        admin = read_json(self.client, admin_name, stage=CURRENT)
        with connect({**pending, "username": admin["username"], "password": admin["password"]}) as connection:
            # The server receives the SCRAM secret that libpq computes, never the password itself.
            encrypted = connection.pgconn.encrypt_password(
                pending["password"].encode(), pending["username"].encode(), b"scram-sha-256")
            connection.execute(sql.SQL("alter role {} with password {}").format(
                sql.Identifier(pending["username"]), sql.Literal(encrypted.decode())))
        self.log.info(f"set the pending password on role {pending['username']} "
                      f"as administrator {admin['username']}")

    def test(self, current: dict[str, Any]) -> None:
        """Log in with the pending credentials and run a query."""
        pending = self.pending()
        with connect(pending) as connection:
            connection.execute("select 1").fetchone()
        self.log.info(f"logged in as {pending['username']} with the pending password")


class JwtRotation(Rotation):
    """Rotation of the HS256 signing key, keeping the replaced key for verification."""

    def new_value(self, current: dict[str, Any]) -> dict[str, Any]:
        # Only the key that becomes AWSPREVIOUS stays valid: tokens live for expiration_hours, which
        # is shorter than the rotation interval.
        return {**current, "secret_key": random_value(self.client, JWT_KEY_LENGTH),
                "previous_secret_keys": [current["secret_key"]]}

    def set(self, current: dict[str, Any]) -> None:
        """Do nothing: the key lives only in the secret, so no other service has to change."""
        self.log.info("the key is stored only in the secret, so there is nothing to set")

    def test(self, current: dict[str, Any]) -> None:
        """Check that the pending key is new and long enough, and that the current key stays valid."""
        pending = self.pending()
        if pending.get("secret_key") == current["secret_key"]:
            raise RotationError(f"The pending signing key of secret {self.name} equals the current one.")
        if current["secret_key"] not in pending.get("previous_secret_keys", []):
            raise RotationError(f"The pending version of secret {self.name} does not keep the current "
                                "key in previous_secret_keys, so issued tokens would stop verifying.")
        if len(pending.get("secret_key", "")) < JWT_KEY_LENGTH:
            raise RotationError(f"The pending signing key of secret {self.name} is shorter than "
                                f"{JWT_KEY_LENGTH} characters.")
        self.log.info("the pending key is new and the current key stays in previous_secret_keys")


def connect(credentials: dict[str, Any]) -> psycopg.Connection[Any]:
    return psycopg.connect(host=credentials["host"], port=int(credentials.get("port") or 5432),
                           dbname=credentials["dbname"], user=credentials["username"],
                           password=credentials["password"], connect_timeout=CONNECT_TIMEOUT_SECONDS,
                           autocommit=True, application_name="secret-rotation")


def can_log_in(credentials: dict[str, Any]) -> bool:
    try:
        with connect(credentials) as connection:
            connection.execute("select 1")
    except psycopg.OperationalError:
        return False
    return True
