"""Cognito PostConfirmation trigger: writes the confirmed user's row to the `users` table."""

from __future__ import annotations

import logging
from typing import Any

from user_records import upsert_confirmed_user

from shared.database import get_db_cursor
from shared.logging_setup import configure_logging

configure_logging()
logger = logging.getLogger(__name__)

# Cognito also sends PostConfirmation_ConfirmForgotPassword, after a password reset of a
# user who already has a row, so only sign-up confirmations write one.
SIGN_UP_TRIGGER = "PostConfirmation_ConfirmSignUp"


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Insert or activate the confirmed user's row, then return the event as Cognito expects.

    A database error propagates, so on AWS the confirmation call fails and the
    client can retry. The insert is idempotent, because the auth function's confirm
    route writes the same row where Cognito does not invoke this trigger.
    """
    trigger = event.get("triggerSource")
    attributes = (event.get("request") or {}).get("userAttributes") or {}
    sub = attributes.get("sub")
    email = attributes.get("email")
    if trigger != SIGN_UP_TRIGGER:
        logger.info("Ignoring trigger %s", trigger)
        return event
    if not sub or not email:
        logger.warning("PostConfirmation event for user %s has no sub or email, so no row was written",
                       event.get("userName"))
        return event

    with get_db_cursor() as cursor:
        user_id = upsert_confirmed_user(cursor, sub, email, attributes.get("name", ""))
    logger.info("Saved users row %s for Cognito user %s", user_id, sub)
    return event
