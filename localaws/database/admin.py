"""Administrator steps: the application role, its database and server checks.

The steps log in as the superuser through the server's Unix socket with peer
authentication, so they need no superuser password. psql runs as the
postgres OS user when this process is root, otherwise as the current user,
and reads its SQL from stdin so that no secret appears on a command line.
"""

from __future__ import annotations

import enum
import json
import os
import re
import shutil
import subprocess
from typing import NoReturn

import psutil
from psycopg import sql

from localaws.database.cluster import (
    as_server_user,
    find_program,
    socket_dir,
    superuser_name,
)
from localaws.database.passwords import scram_secret, secret_matches
from localaws.errors import DatabaseError, DependencyError, ServiceError
from localaws.settings import Settings

PSQL_TIMEOUT_SECONDS = 120
READY_TIMEOUT_SECONDS = 3


class Change(enum.StrEnum):
    """Outcome of an idempotent step, for progress output."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def run_admin_sql(settings: Settings, script: str) -> str:
    """Run `script` with psql as the superuser on the selected server and return its output.

    Output is unaligned and without headers (`-At`). psql stops at the first
    error, which raises DatabaseError with psql's message.
    """
    psql = find_program("psql", settings.postgres_bin_dir)
    command = [
        str(psql), "-X", "-v", "ON_ERROR_STOP=1",
        "-h", str(socket_dir(settings)), "-p", str(settings.db_port),
        "-U", superuser_name(), "-d", "postgres", "-At", "-f", "-",
    ]
    environment = dict(os.environ, PGCONNECT_TIMEOUT="10", PGAPPNAME="localaws-admin")

    try:
        result = subprocess.run(
            as_server_user(command), input=script, capture_output=True, text=True,
            check=False, timeout=PSQL_TIMEOUT_SECONDS, env=environment, cwd="/",
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(
            f"psql as {superuser_name()} on socket {socket_dir(settings)} port {settings.db_port} "
            f"timed out after {PSQL_TIMEOUT_SECONDS} s. Check that the server is not stuck "
            "(for example waiting on a lock held by another session) and run this again."
        ) from None
    if result.returncode != 0:
        details = result.stderr.strip() or f"exit status {result.returncode}"
        raise DatabaseError(
            f"psql as superuser {superuser_name()} through socket {socket_dir(settings)} "
            f"port {settings.db_port} failed: {details}. Check that this server is the one "
            f"POSTGRES_SERVER={settings.postgres_server} selects and that peer authentication "
            "is enabled for local connections in its pg_hba.conf."
        )
    return result.stdout


def _query_json(settings: Settings, query: sql.Composable) -> dict[str, object] | None:
    """Run a query that returns at most one JSON object, and return it decoded."""
    output = run_admin_sql(settings, query.as_string() + ";\n").strip()
    if not output:
        return None
    decoded = json.loads(output)
    if not isinstance(decoded, dict):
        raise DatabaseError(f"psql returned {output!r} where a JSON object was expected.")
    return decoded


def ensure_role(settings: Settings) -> Change:
    """Create or update the login role `db_user` with the password `db_password`.

    The password is sent as its SCRAM-SHA-256 secret. A role that exists is
    changed only where it differs: no LOGIN, another password, or an expired
    VALID UNTIL.
    """
    role = sql.Identifier(settings.db_user)
    current = _query_json(settings, sql.SQL(
        "select json_build_object("
        "'login', rolcanlogin, 'secret', rolpassword, "
        "'expired', coalesce(rolvaliduntil < now(), false)) "
        "from pg_authid where rolname = {}"
    ).format(sql.Literal(settings.db_user)))

    if current is None:
        statement = sql.SQL("create role {} login password {}").format(
            role, sql.Literal(scram_secret(settings.db_password)),
        )
        run_admin_sql(settings, statement.as_string() + ";\n")
        return Change.CREATED

    options: list[sql.Composable] = []
    if not current.get("login"):
        options.append(sql.SQL("login"))
    secret = current.get("secret")
    if not secret_matches(secret if isinstance(secret, str) else None, settings.db_password):
        secret_literal = sql.Literal(scram_secret(settings.db_password))
        options.append(sql.SQL("password {}").format(secret_literal))
    if current.get("expired"):
        options.append(sql.SQL("valid until 'infinity'"))
    if not options:
        return Change.UNCHANGED

    statement = sql.SQL("alter role {} {}").format(role, sql.SQL(" ").join(options))
    run_admin_sql(settings, statement.as_string() + ";\n")
    return Change.UPDATED


def ensure_database(settings: Settings) -> Change:
    """Create the database `db_name` owned by `db_user` unless it exists.

    Raises DatabaseError when the database exists with another owner, because
    the application role could then not create tables in it.
    """
    current = _query_json(settings, sql.SQL(
        "select json_build_object('owner', pg_get_userbyid(datdba)) "
        "from pg_database where datname = {}"
    ).format(sql.Literal(settings.db_name)))

    if current is None:
        statement = sql.SQL("create database {} owner {}").format(
            sql.Identifier(settings.db_name), sql.Identifier(settings.db_user),
        )
        run_admin_sql(settings, statement.as_string() + ";\n")
        return Change.CREATED

    owner = current.get("owner")
    if owner != settings.db_user:
        fix = sql.SQL("alter database {} owner to {}").format(
            sql.Identifier(settings.db_name), sql.Identifier(settings.db_user),
        ).as_string()
        raise DatabaseError(
            f"database {settings.db_name!r} exists but belongs to role {owner!r}, not to "
            f"{settings.db_user!r}, so the migrations could not create tables in it. "
            f"Run `{fix};` as a superuser if the database is meant for this project, "
            "or set DB_NAME to another database."
        )
    return Change.UNCHANGED


def server_answers(host: str, port: int, configured_bin_dir: str = "") -> bool:
    """Return whether a PostgreSQL server accepts connections at `host` and `port`.

    `host` is a host name, an IP address or a Unix socket folder, as for
    pg_isready. A server that is starting or shutting down does not count.
    """
    pg_isready = find_program("pg_isready", configured_bin_dir)
    result = subprocess.run(
        [str(pg_isready), "-q", "-h", host, "-p", str(port), "-t", str(READY_TIMEOUT_SECONDS)],
        capture_output=True, check=False, timeout=READY_TIMEOUT_SECONDS + 10,
    )
    return result.returncode == 0


def describe_listener(port: int) -> str | None:
    """Describe the process that listens on TCP `port`, or return None when none does.

    Processes of other users show only as a pid, or not at all, unless this
    process runs as root.
    """
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    pids = sorted(
        {
            connection.pid
            for connection in connections
            if connection.status == psutil.CONN_LISTEN
            and connection.laddr
            and connection.laddr.port == port
        },
        key=lambda pid: -1 if pid is None else pid,
    )
    if not pids:
        return None

    descriptions = []
    for pid in pids:
        if pid is None:
            descriptions.append("a process of another user")
            continue
        try:
            process = psutil.Process(pid)
            command = " ".join(process.cmdline()) or process.name()
            descriptions.append(f"pid {pid} ({process.username()}: {command})")
        except psutil.Error:
            descriptions.append(f"pid {pid}")
    return ", ".join(descriptions)


def system_cluster_name(settings: Settings) -> tuple[str, str]:
    """Return the version and name of the Debian cluster on the system port, such as ("15", "main").

    pg_lsclusters (Debian's postgresql-common) provides them. Without it, or
    when no cluster uses the port, the version is that of the newest
    installed binaries and the name is "main".
    """
    lister = shutil.which("pg_lsclusters")
    if lister is not None:
        output = subprocess.run(
            [lister, "--no-header"], capture_output=True, text=True, check=False, timeout=30,
        ).stdout
        for line in output.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2] == str(settings.postgres_system_port):
                return fields[0], fields[1]

    try:
        folder = find_program("postgres", settings.postgres_bin_dir).parent
    except DependencyError:
        return "<version>", "main"
    match = re.search(r"/postgresql/(\d+(?:\.\d+)?)/bin$", str(folder))
    return (match.group(1) if match else "<version>"), "main"


def require_server(settings: Settings) -> None:
    """Raise ServiceError unless the selected server accepts connections on its socket and on TCP.

    The admin steps use the socket and the application uses TCP, so both
    must work. The message explains how to start the server or which process holds its port.
    """
    folder = socket_dir(settings)
    port = settings.db_port
    host = settings.db_host
    on_socket = server_answers(str(folder), port, settings.postgres_bin_dir)
    on_tcp = server_answers(host, port, settings.postgres_bin_dir)
    if on_socket and on_tcp:
        return

    listener = describe_listener(port)
    held_by = f" Port {port} is held by {listener}." if listener else ""
    if settings.postgres_server == "container":
        _raise_private_cluster_down(settings, on_socket, on_tcp, held_by)
    _raise_system_server_down(settings, on_socket, on_tcp, held_by)


def _raise_system_server_down(
    settings: Settings, on_socket: bool, on_tcp: bool, held_by: str
) -> NoReturn:
    folder = socket_dir(settings)
    port = settings.db_port
    if not on_socket and not on_tcp:
        version, name = system_cluster_name(settings)
        raise ServiceError(
            f"no PostgreSQL server accepts connections on port {port} (socket folder {folder}, "
            f"host {settings.db_host}), where POSTGRES_SERVER=system expects the machine's "
            f"server.{held_by} Start it with `pg_ctlcluster {version} {name} start` or "
            "`service postgresql start`, or set POSTGRES_SERVER=container to use a private "
            f"cluster in {settings.state_dir / 'postgres'}."
        )
    if on_tcp:
        raise ServiceError(
            f"a server accepts connections on {settings.db_host}:{port} but has no socket in {folder}, "
            f"so the admin steps cannot reach it with peer authentication.{held_by} "
            "Set POSTGRES_SYSTEM_SOCKET_DIR to that server's unix_socket_directories, "
            "or set POSTGRES_SYSTEM_PORT to the port of the machine's server."
        )
    raise ServiceError(
        f"the server on socket {folder} port {port} does not accept TCP connections on "
        f"{settings.db_host}, which the application uses. Add {settings.db_host} to "
        "listen_addresses in its postgresql.conf and restart it, or set SERVICES_BIND_HOST "
        "to an address it listens on."
    )


def _raise_private_cluster_down(
    settings: Settings, on_socket: bool, on_tcp: bool, held_by: str
) -> NoReturn:
    folder = socket_dir(settings)
    port = settings.db_port
    if not on_socket and not on_tcp:
        raise ServiceError(
            f"the private cluster does not accept connections on socket {folder} port {port}.{held_by} "
            "Start it with `invoke stack.up` and run this again."
        )
    if on_tcp:
        raise ServiceError(
            f"another server accepts connections on {settings.db_host}:{port}, the private cluster's port, "
            f"and has no socket in {folder}.{held_by} Stop it, or set POSTGRES_PRIVATE_PORT "
            "to a free port."
        )
    raise ServiceError(
        f"the private cluster accepts connections on socket {folder} but not on "
        f"{settings.db_host}:{port}. "
        "It was probably started with another listen_addresses, so restart it with the "
        "current settings."
    )
