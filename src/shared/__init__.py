"""Library of the tutor system's Lambda functions: secrets, database access and logging."""

from shared.database import close_connection, get_connection, get_db_cursor, is_authentication_failure
from shared.logging_setup import JsonFormatter, configure_logging
from shared.secrets_client import (
    DatabaseCredentials,
    DatabaseCredentialsError,
    InvalidSecretNameError,
    InvalidSecretValueError,
    JwtConfig,
    SecretDecryptionError,
    SecretNotFoundError,
    SecretsClient,
    SecretsError,
    SecretsUnavailableError,
    get_client,
    get_database_credentials,
    get_jwt_config,
    reset_client,
    validate_secret_name,
)

__all__ = [
    "DatabaseCredentials",
    "DatabaseCredentialsError",
    "InvalidSecretNameError",
    "InvalidSecretValueError",
    "JsonFormatter",
    "JwtConfig",
    "SecretDecryptionError",
    "SecretNotFoundError",
    "SecretsClient",
    "SecretsError",
    "SecretsUnavailableError",
    "close_connection",
    "configure_logging",
    "get_client",
    "get_connection",
    "get_database_credentials",
    "get_db_cursor",
    "get_jwt_config",
    "is_authentication_failure",
    "reset_client",
    "validate_secret_name",
]
