"""Example of reading the database credentials through `shared`: counts the rows of `users`.

Invoke it directly (it has no API route). It returns where the credentials
came from and which database it reached, but never the password.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.database import get_db_cursor
from shared.logging_setup import configure_logging
from shared.secrets_client import get_database_credentials

configure_logging()
logger = logging.getLogger(__name__)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Count the users and describe the database and the source of its credentials."""
    credentials = get_database_credentials()
    with get_db_cursor() as cursor:
        cursor.execute("select count(*) as user_count from users")
        row = cursor.fetchone()
    # `count(*)` returns exactly one row.
    user_count = int(row["user_count"]) if row is not None else 0
    logger.info("Counted %d users in %s on %s:%s (credentials from %s)", user_count, credentials.dbname,
                credentials.host, credentials.port, credentials.source)
    return {
        "user_count": user_count,
        "credentials_source": credentials.source,
        "database": {"host": credentials.host, "port": int(credentials.port), "dbname": credentials.dbname},
    }
