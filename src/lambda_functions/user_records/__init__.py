"""Rows of the `users` table for Cognito users, shared by the auth, post_confirmation and me functions.

The functions that use this package list its folder under `shared` in playbooks/vars/common.yml,
so it sits at the root of their zips and imports as `user_records`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

# The CHECK constraint users_status_check allows 'pending', 'active' and 'disabled'.
ACTIVE_STATUS = "active"
PROFILE_COLUMNS = ("id", "cognito_sub", "email", "display_name", "status", "created_at", "updated_at")

UPSERT_CONFIRMED_USER = """
    insert into users (cognito_sub, email, display_name, status)
    values (%(cognito_sub)s, %(email)s, %(display_name)s, %(status)s)
    on conflict (cognito_sub) do update
        set email = excluded.email,
            status = excluded.status,
            display_name = case when users.display_name = '' then excluded.display_name
                                else users.display_name end
    returning id
"""

SELECT_PROFILE = f"""
    select {', '.join(PROFILE_COLUMNS)} from users where cognito_sub = %(cognito_sub)s
"""  # noqa: S608 - the column names are constants, and the value is a bound parameter.


def upsert_confirmed_user(cursor: Any, cognito_sub: str, email: str, display_name: str = "") -> int:
    """Insert or activate the row of a confirmed Cognito user and return its id.

    Safe to repeat for one user, because the PostConfirmation trigger and the
    confirm route may both write it. A display name the user already has is kept.
    An existing row with the same email (in any case) but another `cognito_sub` makes
    the insert fail with `psycopg.errors.UniqueViolation` on users_email_lower_key.
    """
    cursor.execute(UPSERT_CONFIRMED_USER, {
        "cognito_sub": cognito_sub,
        "email": email,
        "display_name": display_name,
        "status": ACTIVE_STATUS,
    })
    row = cursor.fetchone()
    return int(row["id"])


def find_profile(cursor: Any, cognito_sub: str) -> dict[str, Any] | None:
    """Return the user's row as JSON-ready values (timestamps in ISO 8601), or None without a row."""
    cursor.execute(SELECT_PROFILE, {"cognito_sub": cognito_sub})
    row = cursor.fetchone()
    if row is None:
        return None
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}
