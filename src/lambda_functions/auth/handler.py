"""Authentication routes of the tutor system's API, backed by a Cognito user pool.

Takes API Gateway proxy events and returns proxy responses with JSON bodies.
Errors have the body `{"error": code, "message": text}`. Passwords, codes and
tokens are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
import botocore.exceptions
import psycopg
from user_records import upsert_confirmed_user

from shared.database import get_db_cursor
from shared.logging_setup import configure_logging

configure_logging()
logger = logging.getLogger(__name__)

# A basic check (one @, a dot in the domain, no spaces), because Cognito validates the address again.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_LENGTH = 254
# The Cognito API limits passwords to 256 characters (PasswordType in botocore's service model).
MAX_PASSWORD_LENGTH = 256
MAX_NAME_LENGTH = 200
JSON_HEADERS = {"Content-Type": "application/json"}
POLICY_LABELS = (
    ("RequireUppercase", "an uppercase letter"),
    ("RequireLowercase", "a lowercase letter"),
    ("RequireNumbers", "a number"),
    ("RequireSymbols", "a symbol"),
)


class ApiError(Exception):
    """A request failed with an HTTP status and an error code for the client."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def json_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    """Build an API Gateway proxy response with a JSON body."""
    return {"statusCode": status, "headers": JSON_HEADERS, "body": json.dumps(body)}


def error_response(error: ApiError) -> dict[str, Any]:
    return json_response(error.status, {"error": error.code, "message": error.message, **error.details})


@cache
def cognito() -> Any:
    """Return the Cognito client, created once per container."""
    return boto3.client("cognito-idp")


def client_id() -> str:
    value = os.environ.get("COGNITO_CLIENT_ID", "")
    if not value:
        raise ApiError(500, "configuration_error", "COGNITO_CLIENT_ID is not set on this function.")
    return value


def user_pool_id() -> str:
    value = os.environ.get("COGNITO_USER_POOL_ID", "")
    if not value:
        raise ApiError(500, "configuration_error", "COGNITO_USER_POOL_ID is not set on this function.")
    return value


def parse_body(event: dict[str, Any]) -> dict[str, Any]:
    """Return the request's JSON object, raising ApiError 400 for a body that is not one."""
    raw = event.get("body") or ""
    if event.get("isBase64Encoded") and raw:
        try:
            raw = base64.b64decode(raw).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(400, "invalid_json",
                           "The request body is not valid base64-encoded UTF-8.") from None
    if not raw.strip():
        raise ApiError(400, "invalid_json", "The request body is empty. Send a JSON object.")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ApiError(400, "invalid_json", f"The request body is not valid JSON: {error.msg} "
                       f"at line {error.lineno} column {error.colno}.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return body


def required_text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ApiError(400, "missing_field", f"The field {field!r} is required.")
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"The field {field!r} must be a string.")
    return value


def email_field(body: dict[str, Any]) -> str:
    """Return the request's email address, trimmed and lower-cased, or raise ApiError 400."""
    email = required_text(body, "email").strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.match(email):
        raise ApiError(400, "invalid_email", "The email address is invalid. Use the form name@example.com.")
    return email


def password_field(body: dict[str, Any], field: str = "password") -> str:
    password = required_text(body, field)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ApiError(400, "weak_password",
                       f"The password is too long. Use at most {MAX_PASSWORD_LENGTH} characters.")
    return password


def code_field(body: dict[str, Any]) -> str:
    code = required_text(body, "code").strip()
    if not code.isdigit():
        raise ApiError(400, "invalid_code", "The code is invalid. Enter the digits from the email.")
    return code


def password_policy() -> dict[str, Any] | None:
    """Return the user pool's password policy, or None when it cannot be read."""
    try:
        pool = cognito().describe_user_pool(UserPoolId=user_pool_id())["UserPool"]
    except (ApiError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        logger.warning("Reading the password policy failed: %s", error)
        return None
    return dict((pool.get("Policies") or {}).get("PasswordPolicy") or {})


def describe_policy(policy: dict[str, Any]) -> str:
    """Describe a PasswordPolicy in a sentence, e.g. 'at least 8 characters, with a number'."""
    rules = [label for field, label in POLICY_LABELS if policy.get(field)]
    text = f"at least {policy.get('MinimumLength', 8)} characters"
    if rules:
        text += ", with " + ", ".join(rules)
    return text


def weak_password_error(cognito_message: str) -> ApiError:
    """Return the 400 error for a password the pool's policy rejects, naming the policy."""
    policy = password_policy()
    if policy is None:
        return ApiError(400, "weak_password", cognito_message)
    return ApiError(400, "weak_password", f"The password is too weak: use {describe_policy(policy)}.",
                    policy={
                        "minimum_length": policy.get("MinimumLength"),
                        "require_uppercase": bool(policy.get("RequireUppercase")),
                        "require_lowercase": bool(policy.get("RequireLowercase")),
                        "require_numbers": bool(policy.get("RequireNumbers")),
                        "require_symbols": bool(policy.get("RequireSymbols")),
                    },
                    detail=cognito_message)


def cognito_error(error: botocore.exceptions.ClientError, operation: str) -> ApiError:
    """Translate a Cognito error into the API error a client can act on."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    message = str(error.response.get("Error", {}).get("Message", ""))
    if code == "UsernameExistsException":
        return ApiError(409, "user_exists", "An account with this email address already exists. Log in "
                        "or reset the password.")
    if code == "InvalidPasswordException":
        return weak_password_error(message)
    if code == "CodeMismatchException":
        return ApiError(400, "invalid_code", "The code is invalid. Check the latest email and try again.")
    if code == "ExpiredCodeException":
        return ApiError(400, "expired_code", "The code has expired. Request a new one.")
    if code == "UserNotConfirmedException":
        return ApiError(403, "user_not_confirmed", "The email address is not confirmed yet. Enter the code "
                        "from the verification email, or request a new one.")
    if code == "UserNotFoundException" and operation == "login":
        return ApiError(401, "invalid_credentials", "The email address or password is wrong.")
    if code == "UserNotFoundException":
        return ApiError(404, "user_not_found", "No account has this email address. Register first.")
    if code == "NotAuthorizedException" and operation == "login":
        return ApiError(401, "invalid_credentials", "The email address or password is wrong.")
    if code == "NotAuthorizedException" and operation == "confirm":
        return ApiError(409, "already_confirmed", "This account is already confirmed. Log in.")
    if code in ("TooManyRequestsException", "LimitExceededException", "TooManyFailedAttemptsException"):
        return ApiError(429, "too_many_requests", "Too many attempts. Wait a few minutes and try again.")
    if code == "InvalidParameterException":
        return ApiError(400, "invalid_request", message or "A field of the request is invalid.")
    logger.error("Cognito %s failed with %s: %s", operation, code or type(error).__name__, message)
    return ApiError(502, "auth_service_error", "The authentication service failed. Try again later.")


def call_cognito(operation: str, method: Callable[..., Any], **request: Any) -> dict[str, Any]:
    try:
        return dict(method(**request))
    except botocore.exceptions.ClientError as error:
        raise cognito_error(error, operation) from None
    except botocore.exceptions.BotoCoreError as error:
        logger.error("Cognito %s could not be called: %s", operation, error)
        raise ApiError(502, "auth_service_error", "The authentication service is unreachable. Try again "
                       "later.") from None


def register(body: dict[str, Any]) -> dict[str, Any]:
    email = email_field(body)
    password = password_field(body)
    attributes = [{"Name": "email", "Value": email}]
    name = body.get("name")
    if name is not None:
        if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
            raise ApiError(400, "invalid_field", f"The field 'name' must be a string of at most "
                           f"{MAX_NAME_LENGTH} characters.")
        if name.strip():
            attributes.append({"Name": "name", "Value": name.strip()})
    response = call_cognito("register", cognito().sign_up, ClientId=client_id(), Username=email,
                            Password=password, UserAttributes=attributes)
    logger.info("Registered user %s", response.get("UserSub"))
    delivery = response.get("CodeDeliveryDetails") or {}
    return json_response(200, {
        "message": "Registered. Enter the code sent to the email address to confirm the account.",
        "user_sub": response.get("UserSub"),
        "user_confirmed": bool(response.get("UserConfirmed")),
        "code_delivery": {"destination": delivery.get("Destination"),
                          "medium": delivery.get("DeliveryMedium")} if delivery else None,
    })


def confirm(body: dict[str, Any]) -> dict[str, Any]:
    email = email_field(body)
    code = code_field(body)
    try:
        call_cognito("confirm", cognito().confirm_sign_up, ClientId=client_id(), Username=email,
                     ConfirmationCode=code)
    except ApiError as error:
        # Writing the row again lets a client repair a confirmation whose row failed to save.
        if error.code == "already_confirmed":
            save_user_row(email)
        raise
    save_user_row(email)
    return json_response(200, {"message": "The account is confirmed. Log in."})


def save_user_row(email: str) -> None:
    """Write the confirmed user's row to `users`.

    NOTE: MiniStack 1.5.33 does not invoke the PostConfirmation trigger on
    ConfirmSignUp, so this route writes the row itself. On AWS the trigger has
    written it already, and the upsert changes nothing.
    """
    user = call_cognito("confirm", cognito().admin_get_user, UserPoolId=user_pool_id(), Username=email)
    attributes = {item["Name"]: item["Value"] for item in user.get("UserAttributes", [])}
    sub = attributes.get("sub") or str(user.get("Username"))
    try:
        with get_db_cursor() as cursor:
            upsert_confirmed_user(cursor, sub, attributes.get("email", email), attributes.get("name", ""))
    except psycopg.errors.UniqueViolation:
        logger.error("User %s is confirmed, but another row of users has the same email", sub)
        raise ApiError(409, "profile_conflict", "The account is confirmed, but its profile conflicts with "
                       "another account's email address. Contact support.") from None
    except psycopg.Error as error:
        logger.error("User %s is confirmed, but writing the users row failed: %s", sub, error)
        raise ApiError(503, "database_unavailable", "The account is confirmed, but saving its profile "
                       "failed. Send the same request again later.") from None
    logger.info("Confirmed user %s and saved the users row", sub)


def login(body: dict[str, Any]) -> dict[str, Any]:
    email = email_field(body)
    password = required_text(body, "password")
    response = call_cognito("login", cognito().initiate_auth, ClientId=client_id(),
                            AuthFlow="USER_PASSWORD_AUTH",
                            AuthParameters={"USERNAME": email, "PASSWORD": password})
    result = response.get("AuthenticationResult")
    if not result:
        challenge = response.get("ChallengeName", "an unknown challenge")
        raise ApiError(403, "challenge_required", f"Logging in needs {challenge}, which this API does not "
                       "support yet.")
    return json_response(200, {
        "access_token": result.get("AccessToken"),
        "id_token": result.get("IdToken"),
        "refresh_token": result.get("RefreshToken"),
        "token_type": result.get("TokenType", "Bearer"),
        "expires_in": result.get("ExpiresIn"),
    })


def resend(body: dict[str, Any]) -> dict[str, Any]:
    email = email_field(body)
    call_cognito("resend", cognito().resend_confirmation_code, ClientId=client_id(), Username=email)
    return json_response(200, {"message": "A new code was sent to the email address."})


def forgot_password(body: dict[str, Any]) -> dict[str, Any]:
    email = email_field(body)
    call_cognito("forgot-password", cognito().forgot_password, ClientId=client_id(), Username=email)
    return json_response(200, {"message": "A password reset code was sent to the email address."})


def reset_password(body: dict[str, Any]) -> dict[str, Any]:
    email = email_field(body)
    code = code_field(body)
    password = password_field(body)
    call_cognito("reset-password", cognito().confirm_forgot_password, ClientId=client_id(), Username=email,
                 ConfirmationCode=code, Password=password)
    return json_response(200, {"message": "The password is changed. Log in with the new password."})


ROUTES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "register": register,
    "confirm": confirm,
    "login": login,
    "resend": resend,
    "forgot-password": forgot_password,
    "reset-password": reset_password,
}


def route_name(event: dict[str, Any]) -> str | None:
    """Return the route after `/auth/` in the request path, e.g. `login`, or None for other paths."""
    path = str(event.get("path") or "").rstrip("/")
    _head, separator, name = path.rpartition("/auth/")
    if not separator or "/" in name:
        return None
    return name


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Route an API Gateway proxy request to the auth operation its path names."""
    name = route_name(event)
    method = str(event.get("httpMethod") or "").upper()
    try:
        if name not in ROUTES:
            raise ApiError(404, "not_found", f"No route {method} {event.get('path')!r}. The auth routes are "
                           + ", ".join(f"POST /api/auth/{route}" for route in ROUTES) + ".")
        if method != "POST":
            raise ApiError(405, "method_not_allowed", f"Use POST for /api/auth/{name}.")
        return ROUTES[name](parse_body(event))
    except ApiError as error:
        if error.status >= 500:
            logger.error("%s %s failed: %s", method, event.get("path"), error.message)
        else:
            logger.info("%s %s returned %d %s", method, event.get("path"), error.status, error.code)
        return error_response(error)
