"""Read the tutor system's secrets from AWS Secrets Manager, with a cache and an environment fallback.

Configuration comes from environment variables only:

- `ENVIRONMENT` (default `local`) names the default secrets `tutor-system/<ENVIRONMENT>/database` and
  `tutor-system/<ENVIRONMENT>/jwt`; `DB_SECRET_NAME` and `JWT_SECRET_NAME` override them.
- `SECRETS_CACHE_TTL_SECONDS` (default 300) is how long a secret's value is reused; 0 disables the cache.
- `SECRETS_CONNECT_TIMEOUT_SECONDS` (default 3) and `SECRETS_READ_TIMEOUT_SECONDS` (default 5) bound
  each request, so an unreachable endpoint falls back quickly.
- `DB_MODE` (default `direct`): with `rds`, the database's host and port come from the endpoint of
  the RDS instance `DB_INSTANCE_IDENTIFIER` (DescribeDBInstances), the other credentials from the secret.
- `DB_HOST`, `DB_PORT` (default 5432), `DB_NAME`, `DB_USER` and `DB_PASSWORD` are the database
  credentials used only when Secrets Manager cannot be reached.

boto3 itself reads the endpoint (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`), the region,
the credentials and the retry settings (`AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

logger = logging.getLogger(__name__)

# CreateSecret's Name: 1 to 512 characters from this set (Secrets Manager API reference).
SECRET_NAME_PATTERN = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
NAMING_RULE = "a secret name is 1 to 512 characters from ASCII letters, digits and /_+=.@-"
# SecretString's maximum length in the Secrets Manager API reference.
MAX_SECRET_STRING_LENGTH = 65536

DEFAULT_ENVIRONMENT = "local"
DEFAULT_CACHE_TTL_SECONDS = 300.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 3.0
DEFAULT_READ_TIMEOUT_SECONDS = 5.0
DEFAULT_DB_PORT = 5432
DEFAULT_JWT_ALGORITHM = "HS256"
DEFAULT_JWT_EXPIRATION_HOURS = 24

REQUIRED_DATABASE_KEYS = ("host", "dbname", "username", "password")
REQUIRED_FALLBACK_VARIABLES = ("DB_HOST", "DB_NAME", "DB_USER", "DB_PASSWORD")

# Errors that mean the endpoint cannot be reached, as opposed to an error response from Secrets Manager.
UNREACHABLE_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)

CredentialsSource = Literal["secretsmanager", "environment"]


class SecretsError(Exception):
    """Base class of the errors raised while reading or storing a secret."""


class InvalidSecretNameError(SecretsError, ValueError):
    """A secret name that Secrets Manager would reject."""


class InvalidSecretValueError(SecretsError, ValueError):
    """A secret whose value is not the JSON object the caller expects."""


class SecretNotFoundError(SecretsError):
    """A secret that does not exist in Secrets Manager."""


class SecretDecryptionError(SecretsError):
    """A secret that Secrets Manager cannot decrypt with its KMS key."""


class SecretsUnavailableError(SecretsError):
    """A request that failed because the Secrets Manager endpoint cannot be reached."""


class DatabaseCredentialsError(SecretsUnavailableError):
    """Secrets Manager is unreachable and the fallback environment variables are incomplete."""


class DatabaseInstanceError(SecretsError):
    """In rds mode, the RDS instance that gives the database's host and port cannot be read."""


@dataclass(frozen=True)
class DatabaseCredentials:
    """PostgreSQL connection settings, with the password left out of repr."""

    host: str
    port: int
    dbname: str
    username: str
    password: str = field(repr=False)
    source: CredentialsSource = "secretsmanager"


@dataclass(frozen=True)
class JwtConfig:
    """JWT signing settings, with the keys left out of repr."""

    secret_key: str = field(repr=False)
    algorithm: str = DEFAULT_JWT_ALGORITHM
    expiration_hours: int = DEFAULT_JWT_EXPIRATION_HOURS
    # Keys replaced by rotation, still accepted when verifying tokens issued before it.
    previous_secret_keys: tuple[str, ...] = field(default=(), repr=False)

    @property
    def verification_keys(self) -> tuple[str, ...]:
        """Keys to try when verifying a token: the current one first, then the previous ones."""
        return (self.secret_key, *self.previous_secret_keys)


@dataclass
class _CacheEntry:
    value: dict[str, Any]
    expires_at: float


def validate_secret_name(name: str) -> None:
    """Raise InvalidSecretNameError unless `name` follows Secrets Manager's naming rule."""
    if not isinstance(name, str) or SECRET_NAME_PATTERN.fullmatch(name) is None:
        displayed_name = name
        if isinstance(name, str) and len(name) > 80:
            displayed_name = f"{name[:80]}... ({len(name)} characters)"
        raise InvalidSecretNameError(f"Invalid secret name {displayed_name!r}: {NAMING_RULE}.")


class SecretsClient:
    """Secrets Manager reader that caches each secret's value for a TTL, shareable between threads."""

    def __init__(
        self,
        client: Any = None,
        *,
        ttl_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
        rds_client: Any = None,
    ) -> None:
        """Create a reader. `client` and `rds_client` are boto3 clients, created on first use when None."""
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._client = client
        self._rds_client = rds_client
        self._clock = clock
        self._ttl = (
            _read_seconds(self._environ, "SECRETS_CACHE_TTL_SECONDS", DEFAULT_CACHE_TTL_SECONDS)
            if ttl_seconds is None
            else ttl_seconds
        )
        if self._ttl < 0:
            raise ValueError(f"Invalid cache TTL {self._ttl}: it must be 0 or more seconds.")
        self._cache: dict[str, _CacheEntry] = {}
        self._lock = threading.Lock()
        self._using_fallback = False

    @property
    def environment(self) -> str:
        """Deployment environment that names the default secrets, from ENVIRONMENT."""
        return self._environ.get("ENVIRONMENT") or DEFAULT_ENVIRONMENT

    @property
    def database_secret_name(self) -> str:
        """Name of the database secret, from DB_SECRET_NAME or the environment's default."""
        return self._environ.get("DB_SECRET_NAME") or f"tutor-system/{self.environment}/database"

    @property
    def jwt_secret_name(self) -> str:
        """Name of the JWT secret, from JWT_SECRET_NAME or the environment's default."""
        return self._environ.get("JWT_SECRET_NAME") or f"tutor-system/{self.environment}/jwt"

    @property
    def boto_client(self) -> Any:
        """Boto3 Secrets Manager client, created on first use from boto3's standard settings."""
        with self._lock:
            if self._client is None:
                # A session of its own, because boto3's default session is not thread-safe.
                self._client = boto3.session.Session().client("secretsmanager", config=self._config())
            return self._client

    def _config(self) -> Config:
        return Config(
            connect_timeout=_read_seconds(
                self._environ, "SECRETS_CONNECT_TIMEOUT_SECONDS", DEFAULT_CONNECT_TIMEOUT_SECONDS
            ),
            read_timeout=_read_seconds(
                self._environ, "SECRETS_READ_TIMEOUT_SECONDS", DEFAULT_READ_TIMEOUT_SECONDS
            ),
        )

    def get_secret(self, name: str) -> dict[str, Any]:
        """Return the JSON object stored in secret `name`, from the cache while its TTL lasts."""
        validate_secret_name(name)
        with self._lock:
            entry = self._cache.get(name)
            if entry is not None and self._clock() < entry.expires_at:
                return copy.deepcopy(entry.value)

        value = self._fetch(name)
        with self._lock:
            self._cache[name] = _CacheEntry(value=value, expires_at=self._clock() + self._ttl)
        return copy.deepcopy(value)

    def put_secret(self, name: str, value: Mapping[str, Any]) -> None:
        """Store `value` as JSON in secret `name`, creating the secret when it does not exist."""
        validate_secret_name(name)
        secret_string = json.dumps(dict(value))
        if len(secret_string) > MAX_SECRET_STRING_LENGTH:
            raise InvalidSecretValueError(
                f"Secret {name!r} is {len(secret_string)} characters as JSON, "
                f"but Secrets Manager stores at most {MAX_SECRET_STRING_LENGTH}."
            )

        client = self.boto_client
        try:
            with self._translate_errors(name, "store"):
                try:
                    client.create_secret(Name=name, SecretString=secret_string)
                except ClientError as exc:
                    if _error_code(exc) != "ResourceExistsException":
                        raise
                    client.put_secret_value(SecretId=name, SecretString=secret_string)
        finally:
            self.invalidate(name)

    def invalidate(self, name: str | None = None) -> None:
        """Drop secret `name` from the cache, or every cached secret when `name` is None."""
        with self._lock:
            if name is None:
                self._cache.clear()
            else:
                self._cache.pop(name, None)

    def get_database_credentials(self) -> DatabaseCredentials:
        """Read the database secret, or the DB_* environment variables when Secrets Manager is unreachable."""
        name = self.database_secret_name
        try:
            value = self.get_secret(name)
        except SecretsUnavailableError as exc:
            return self._database_credentials_from_environment(name, exc)

        if self._using_fallback:
            self._using_fallback = False
            logger.info(
                "Secrets Manager is reachable again, so database credentials come from secret %s", name
            )
        credentials = _database_credentials_from_secret(name, value)
        if self._environ.get("DB_MODE", "direct") == "rds":
            host, port = self._rds_endpoint()
            credentials = dataclasses.replace(credentials, host=host, port=port)
        return credentials

    def _rds_endpoint(self) -> tuple[str, int]:
        """Return the address and port of the RDS instance named by DB_INSTANCE_IDENTIFIER."""
        identifier = self._environ.get("DB_INSTANCE_IDENTIFIER")
        if not identifier:
            raise DatabaseInstanceError(
                "DB_MODE is rds but DB_INSTANCE_IDENTIFIER is not set. Set it to the RDS instance's "
                "identifier, such as tutor-system-local-db, or set DB_MODE to direct."
            )
        with self._lock:
            if self._rds_client is None:
                self._rds_client = boto3.session.Session().client("rds", config=self._config())
            rds = self._rds_client
        try:
            instances = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        except ClientError as exc:
            raise DatabaseInstanceError(
                f"Cannot read RDS instance {identifier!r}: {exc}. Run `invoke resources.setup` to "
                "create it, or set DB_MODE to direct."
            ) from exc
        endpoint = (instances[0].get("Endpoint") or {}) if instances else {}
        if not endpoint.get("Address") or not endpoint.get("Port"):
            raise DatabaseInstanceError(
                f"RDS instance {identifier!r} reports no endpoint yet. Wait until it is available."
            )
        port = _port(endpoint["Port"], f"endpoint port of RDS instance {identifier!r}")
        return str(endpoint["Address"]), port

    def get_jwt_config(self) -> JwtConfig:
        """Read the JWT secret: signing key, algorithm, token lifetime and any keys replaced by rotation."""
        name = self.jwt_secret_name
        value = self.get_secret(name)
        secret_key = value.get("secret_key")
        if not isinstance(secret_key, str) or not secret_key:
            raise InvalidSecretValueError(f"Secret {name!r} has no non-empty string 'secret_key'.")

        algorithm = value.get("algorithm", DEFAULT_JWT_ALGORITHM)
        if not isinstance(algorithm, str) or not algorithm:
            raise InvalidSecretValueError(f"Secret {name!r} has no non-empty string 'algorithm'.")

        previous = value.get("previous_secret_keys", [])
        if not isinstance(previous, list) or not all(isinstance(key, str) for key in previous):
            raise InvalidSecretValueError(
                f"Secret {name!r} has a 'previous_secret_keys' that is not a list of strings."
            )

        return JwtConfig(
            secret_key=secret_key,
            algorithm=algorithm,
            expiration_hours=_positive_int(
                value.get("expiration_hours", DEFAULT_JWT_EXPIRATION_HOURS),
                f"'expiration_hours' of secret {name!r}",
            ),
            previous_secret_keys=tuple(previous),
        )

    def _fetch(self, name: str) -> dict[str, Any]:
        client = self.boto_client
        with self._translate_errors(name, "read"):
            response = client.get_secret_value(SecretId=name)
        return _parse_secret_value(name, response)

    @contextmanager
    def _translate_errors(self, name: str, action: str) -> Iterator[None]:
        """Turn boto errors about secret `name` into this module's errors, saying what to do next."""
        try:
            yield
        except UNREACHABLE_ERRORS as exc:
            raise SecretsUnavailableError(
                f"Cannot {action} secret {name!r}: "
                f"Secrets Manager at {self._endpoint()} is unreachable ({exc})."
            ) from exc
        except ClientError as exc:
            code = _error_code(exc)
            if code == "ResourceNotFoundException":
                raise SecretNotFoundError(
                    f"Secret {name!r} not found in Secrets Manager at {self._endpoint()}. "
                    "Run `invoke resources.setup` to create it."
                ) from exc
            if code == "DecryptionFailureException":
                raise SecretDecryptionError(
                    f"Cannot decrypt secret {name!r}. Check that its KMS key exists and is enabled, "
                    "and that the function's role has kms:Decrypt permission on that key."
                ) from exc
            raise

    def _endpoint(self) -> str:
        return str(getattr(getattr(self._client, "meta", None), "endpoint_url", "unknown endpoint"))

    def _database_credentials_from_environment(
        self, name: str, error: SecretsUnavailableError
    ) -> DatabaseCredentials:
        missing = [variable for variable in REQUIRED_FALLBACK_VARIABLES if variable not in self._environ]
        if missing:
            raise DatabaseCredentialsError(
                f"{error} The fallback environment variables {', '.join(missing)} are not set either. "
                "Set them, or make Secrets Manager reachable."
            ) from error

        if not self._using_fallback:
            self._using_fallback = True
            logger.warning(
                "Secrets Manager at %s is unreachable (%s), so database credentials for secret %s "
                "come from the DB_* environment variables until it responds again",
                self._endpoint(),
                type(error.__cause__).__name__,
                name,
            )
        return DatabaseCredentials(
            host=self._environ["DB_HOST"],
            port=_port(self._environ.get("DB_PORT", str(DEFAULT_DB_PORT)), "environment variable DB_PORT"),
            dbname=self._environ["DB_NAME"],
            username=self._environ["DB_USER"],
            password=self._environ["DB_PASSWORD"],
            source="environment",
        )


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _parse_secret_value(name: str, response: Mapping[str, Any]) -> dict[str, Any]:
    """Decode the JSON object in a GetSecretValue response. Error messages never quote the value."""
    raw = response.get("SecretString")
    if raw is None:
        binary = response.get("SecretBinary")
        if binary is None:
            raise InvalidSecretValueError(f"Secret {name!r} has neither SecretString nor SecretBinary.")
        try:
            raw = bytes(binary).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidSecretValueError(f"Secret {name!r} has a SecretBinary that is not UTF-8.") from None

    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        # `from None`, because the decode error keeps the whole secret in its `doc` attribute.
        raise InvalidSecretValueError(
            f"Secret {name!r} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})."
        ) from None
    if not isinstance(value, dict):
        raise InvalidSecretValueError(
            f"Secret {name!r} contains JSON that is not an object. Store a JSON object."
        )
    return value


def _database_credentials_from_secret(name: str, value: Mapping[str, Any]) -> DatabaseCredentials:
    missing = [key for key in REQUIRED_DATABASE_KEYS if value.get(key) in (None, "")]
    if missing:
        raise InvalidSecretValueError(
            f"Secret {name!r} is missing the keys {', '.join(missing)}. "
            "The expected JSON object has engine, host, port, dbname, username and password."
        )
    return DatabaseCredentials(
        host=str(value["host"]),
        port=_port(value.get("port", DEFAULT_DB_PORT), f"'port' of secret {name!r}"),
        dbname=str(value["dbname"]),
        username=str(value["username"]),
        password=str(value["password"]),
        source="secretsmanager",
    )


def _positive_int(raw: object, description: str) -> int:
    # bool is an int subclass, and True must not pass as 1.
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise InvalidSecretValueError(
            f"Invalid {description}: expected a positive integer, got {type(raw).__name__}."
        )
    try:
        number = int(raw)
    except ValueError:
        raise InvalidSecretValueError(
            f"Invalid {description} {raw!r}: expected a positive integer."
        ) from None
    if number <= 0:
        raise InvalidSecretValueError(f"Invalid {description} {number}: expected a positive integer.")
    return number


def _port(raw: object, description: str) -> int:
    port = _positive_int(raw, description)
    if port > 65535:
        raise InvalidSecretValueError(f"Invalid {description} {port}: a TCP port is 1 to 65535.")
    return port


def _read_seconds(environ: Mapping[str, str], variable: str, default: float) -> float:
    raw = environ.get(variable)
    if raw is None or raw.strip() == "":
        return default
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"Invalid {variable} {raw!r}: expected a number of seconds.") from None
    if seconds < 0:
        raise ValueError(f"Invalid {variable} {raw!r}: expected 0 or more seconds.")
    return seconds


_default_client: SecretsClient | None = None
_default_client_lock = threading.Lock()


def get_client() -> SecretsClient:
    """Return the process-wide SecretsClient, creating it on first use so warm invocations share its cache."""
    global _default_client
    with _default_client_lock:
        if _default_client is None:
            _default_client = SecretsClient()
        return _default_client


def reset_client() -> None:
    """Forget the process-wide SecretsClient, so the next get_client() reads the environment again."""
    global _default_client
    with _default_client_lock:
        _default_client = None


def get_database_credentials() -> DatabaseCredentials:
    """Read the database credentials through the process-wide client."""
    return get_client().get_database_credentials()


def get_jwt_config() -> JwtConfig:
    """Read the JWT settings through the process-wide client."""
    return get_client().get_jwt_config()
