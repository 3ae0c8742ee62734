"""`GET /api/me`: the signed-in user's Cognito identity and `users` row.

The access token from `Authorization: Bearer <token>` is validated by Cognito's
GetUser call, which works the same on AWS and on the emulator and needs no
signature keys here. Tokens are never logged.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import Any

import boto3
import botocore.exceptions
import psycopg
from user_records import find_profile

from shared.database import get_db_cursor
from shared.logging_setup import configure_logging

configure_logging()
logger = logging.getLogger(__name__)

JSON_HEADERS = {"Content-Type": "application/json"}
EXPIRED_LOGIN_MESSAGE = "The access token is invalid or expired. Log in again."
# Cognito's GetUser returns these error codes for a malformed, expired or revoked token.
INVALID_TOKEN_CODES = frozenset({"NotAuthorizedException", "InvalidParameterException",
                                 "UserNotFoundException", "UserNotConfirmedException"})


def json_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    """Build an API Gateway proxy response with a JSON body."""
    return {"statusCode": status, "headers": JSON_HEADERS, "body": json.dumps(body)}


def error_response(status: int, code: str, message: str) -> dict[str, Any]:
    response = json_response(status, {"error": code, "message": message})
    if status == 401:
        response["headers"] = {**JSON_HEADERS, "WWW-Authenticate": "Bearer"}
    return response


@cache
def cognito() -> Any:
    """Return the Cognito client, created once per container."""
    return boto3.client("cognito-idp")


def bearer_token(event: dict[str, Any]) -> str | None:
    """Return the token of the request's `Authorization: Bearer` header, or None without one."""
    headers = {str(key).lower(): value for key, value in (event.get("headers") or {}).items()}
    value = str(headers.get("authorization") or "").strip()
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Return the user of the access token with their profile row, or 401 for a missing or invalid token."""
    method = str(event.get("httpMethod") or "GET").upper()
    if method != "GET":
        return error_response(405, "method_not_allowed", "Use GET for /api/me.")
    token = bearer_token(event)
    if token is None:
        return error_response(401, "missing_token", "Send the access token from /api/auth/login in the "
                              "header 'Authorization: Bearer <token>'.")

    try:
        user = cognito().get_user(AccessToken=token)
    except botocore.exceptions.ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in INVALID_TOKEN_CODES:
            return error_response(401, "invalid_token", EXPIRED_LOGIN_MESSAGE)
        logger.error("Cognito GetUser failed with %s", code)
        return error_response(502, "auth_service_error",
                              "The authentication service failed. Try again later.")
    except botocore.exceptions.ParamValidationError:
        return error_response(401, "invalid_token", EXPIRED_LOGIN_MESSAGE)
    except botocore.exceptions.BotoCoreError as error:
        logger.error("Cognito GetUser could not be called: %s", error)
        return error_response(502, "auth_service_error", "The authentication service is unreachable. Try "
                              "again later.")

    attributes = {item["Name"]: item["Value"] for item in user.get("UserAttributes", [])}
    sub = attributes.get("sub") or str(user.get("Username"))
    try:
        with get_db_cursor() as cursor:
            profile = find_profile(cursor, sub)
    except psycopg.Error as error:
        logger.error("Reading the users row of %s failed: %s", sub, error)
        return error_response(503, "database_unavailable", "Reading the profile failed. Try again later.")

    return json_response(200, {
        "sub": sub,
        "email": attributes.get("email"),
        "email_verified": attributes.get("email_verified", "false").lower() == "true",
        "profile": profile,
    })
