"""The PostgreSQL side of rotating the database secret on the `local` target.

The rotation Lambda changes the application role's password through an administrator role whose
credentials are in `<database secret>-admin`. The playbooks store that secret with a generated
password, and this module creates or updates the role to match it, because the playbooks cannot reach
PostgreSQL. After a rotation the new password also goes into the env file, so `db.setup`, `verify` and
DATABASE_URL keep using the password the role has.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from psycopg import sql

from localaws.database.admin import Change, run_admin_sql
from localaws.database.passwords import scram_secret, secret_matches
from localaws.errors import ConfigError
from localaws.settings import Settings
from localaws.settings.envfile import update_env_text, write_private_file

ADMIN_SUFFIX = "-admin"
# Since PostgreSQL 16 a CREATEROLE role may change only the passwords of roles it has ADMIN OPTION on.
ADMIN_OPTION_VERSION = 160000


def admin_secret_name(database_secret: str) -> str:
    return database_secret + ADMIN_SUFFIX


def ensure_admin_role(settings: Settings, admin: dict[str, Any]) -> Change:
    """Create or update the administrator role of the admin secret: LOGIN, CREATEROLE and its password."""
    username = admin.get("username")
    password = admin.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise ConfigError("the database administrator secret lacks username or password. "
                          "Run `invoke resources.setup` to store it.")
    role = sql.Identifier(username)
    output = run_admin_sql(settings, sql.SQL(
        "select json_build_object('login', rolcanlogin, 'createrole', rolcreaterole, 'secret', rolpassword) "
        "from pg_authid where rolname = {};\n"
    ).format(sql.Literal(username)).as_string()).strip()
    current: dict[str, Any] | None = json.loads(output) if output else None

    change = Change.UNCHANGED
    if current is None:
        run_admin_sql(settings, sql.SQL("create role {} login createrole password {};\n").format(
            role, sql.Literal(scram_secret(password))).as_string())
        change = Change.CREATED
    else:
        options: list[sql.Composable] = []
        if not current.get("login"):
            options.append(sql.SQL("login"))
        if not current.get("createrole"):
            options.append(sql.SQL("createrole"))
        stored = current.get("secret")
        if not secret_matches(stored if isinstance(stored, str) else None, password):
            options.append(sql.SQL("password {}").format(sql.Literal(scram_secret(password))))
        if options:
            run_admin_sql(settings, sql.SQL("alter role {} {};\n").format(
                role, sql.SQL(" ").join(options)).as_string())
            change = Change.UPDATED

    if server_version(settings) >= ADMIN_OPTION_VERSION:
        run_admin_sql(settings, sql.SQL("grant {} to {} with admin option;\n").format(
            sql.Identifier(settings.db_user), role).as_string())
    return change


def server_version(settings: Settings) -> int:
    return int(run_admin_sql(settings, "show server_version_num;\n").strip())


def store_database_password(settings: Settings, password: str, report: Callable[[str], None]) -> None:
    """Write the rotated password to the env file as DB_PASSWORD, with the DATABASE_URL that follows."""
    if not settings.env_file.exists():
        return
    source = settings.source_of("DB_PASSWORD")
    if source in ("environment variable", "task flag"):
        report(f"DB_PASSWORD comes from the {source}, which still holds the old password: "
               "unset it, since the env file now holds the rotated one")
    updated = settings.replace(db_password=password)
    values = {"DB_PASSWORD": password}
    if settings.db_mode == "direct":
        values["DATABASE_URL"] = updated.database_url
    text = settings.env_file.read_text(encoding="utf-8")
    new_text = update_env_text(settings.env_file, text, values)
    if new_text != text:
        write_private_file(settings.env_file, new_text)
