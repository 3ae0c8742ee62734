"""The PostgreSQL binaries and the private cluster kept in the state folder.

The private cluster serves `POSTGRES_SERVER=container`: `ensure_cluster`
creates it once, and supervisord runs `server_command` in the foreground.
PostgreSQL refuses to run as root, so when the toolkit runs as root the
cluster's files belong to the `postgres` OS user and its programs run as that
user.
"""

from __future__ import annotations

import getpass
import glob
import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path

from localaws.errors import DependencyError, ServiceError
from localaws.settings import Settings

POSTGRES_OS_USER = "postgres"
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
INITDB_TIMEOUT_SECONDS = 300


def running_as_root() -> bool:
    """Return whether this process runs with the root user id."""
    return os.geteuid() == 0


def server_os_user() -> str:
    """Return the OS user that owns the private cluster and runs PostgreSQL programs."""
    return POSTGRES_OS_USER if running_as_root() else getpass.getuser()


def superuser_name() -> str:
    """Return the superuser role that the admin steps log in as.

    Peer authentication lets an OS user log in only as the role of the same
    name, so the role is the name of the OS user that runs psql.
    """
    return server_os_user()


def as_server_user(command: list[str]) -> list[str]:
    """Prefix `command` with `runuser` so that it runs as the postgres OS user when root."""
    if not running_as_root():
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        raise DependencyError(
            "runuser is missing. It runs PostgreSQL programs as the postgres OS user, because "
            "PostgreSQL refuses to run as root. Install the Debian package util-linux."
        )
    return [runuser, "-u", POSTGRES_OS_USER, "--", *command]


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin: compare versions as numbers so that 15 sorts after 9.6.
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def locate_bin_dir(configured: str = "") -> Path:
    """Find the folder of the PostgreSQL server programs (initdb, postgres, pg_ctl).

    `configured` is the POSTGRES_BIN_DIR setting. Without it, the newest
    /usr/lib/postgresql/*/bin wins, then the folder of `postgres` on PATH.
    Raises DependencyError when none has the server programs.
    """
    if configured:
        folder = Path(configured).expanduser()
        if not (folder / "postgres").is_file():
            raise DependencyError(
                f"POSTGRES_BIN_DIR={configured} contains no postgres program. "
                "Set POSTGRES_BIN_DIR to the folder of initdb and postgres "
                "(for example /usr/lib/postgresql/15/bin), or leave it empty to search for it."
            )
        return folder

    candidates = [
        Path(path) for path in glob.glob(DEBIAN_BIN_GLOB) if (Path(path) / "postgres").is_file()
    ]
    if candidates:
        return max(candidates, key=_version_key)

    on_path = shutil.which("postgres")
    if on_path is not None:
        return Path(on_path).resolve().parent

    raise DependencyError(
        f"the PostgreSQL server programs (initdb, postgres) are missing, because no "
        f"{DEBIAN_BIN_GLOB} folder contains them and postgres is not on PATH. "
        "Install the Debian package postgresql (apt-get install postgresql), "
        "or set POSTGRES_BIN_DIR to their folder."
    )


def bin_dir(settings: Settings) -> Path:
    """Find the folder of the PostgreSQL server programs for these settings."""
    return locate_bin_dir(settings.postgres_bin_dir)


def find_program(name: str, configured_bin_dir: str = "") -> Path:
    """Find a PostgreSQL program such as psql or pg_isready.

    The server's bin folder comes first, so client and server versions match,
    then PATH. Raises DependencyError when neither has it.
    """
    try:
        candidate = locate_bin_dir(configured_bin_dir) / name
    except DependencyError:
        candidate = None
    if candidate is not None and candidate.is_file():
        return candidate

    on_path = shutil.which(name)
    if on_path is not None:
        return Path(on_path)

    package = "postgresql" if name in ("initdb", "postgres", "pg_ctl") else "postgresql-client"
    raise DependencyError(
        f"the PostgreSQL program {name} is missing from the server's bin folder and from PATH. "
        f"Install the Debian package {package} (apt-get install {package}), "
        "or set POSTGRES_BIN_DIR to the folder that contains it."
    )


def server_major_version(folder: Path) -> str:
    """Return the major version of the postgres program in `folder`, such as "15"."""
    output = subprocess.run(
        [str(folder / "postgres"), "--version"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", output)
    if match is None:
        raise DependencyError(
            f"cannot read the version from `{folder / 'postgres'} --version` (output {output!r}). "
            "Set POSTGRES_BIN_DIR to the bin folder of a PostgreSQL installation."
        )
    return match.group(1)


def cluster_dir(settings: Settings) -> Path:
    """Return the folder of the private cluster, which contains its data and socket folders."""
    return settings.state_dir / "postgres"


def data_dir(settings: Settings) -> Path:
    """Return the data folder (PGDATA) of the private cluster."""
    return cluster_dir(settings) / "data"


def socket_dir(settings: Settings) -> Path:
    """Return the Unix socket folder of the server these settings select."""
    if settings.postgres_server == "container":
        return cluster_dir(settings) / "run"
    return Path(settings.postgres_system_socket_dir)


def server_command(settings: Settings) -> list[str]:
    """Return the command that runs the private cluster in the foreground.

    Run it as `server_os_user()`. PostgreSQL stops cleanly on SIGTERM (smart
    shutdown) or SIGINT (fast shutdown).
    """
    return [
        str(bin_dir(settings) / "postgres"),
        "-D", str(data_dir(settings)),
        "-p", str(settings.postgres_private_port),
        "-k", str(socket_dir(settings)),
        "-c", f"listen_addresses={settings.bind_host}",
    ]


def ensure_cluster(settings: Settings) -> bool:
    """Create the private cluster with initdb unless it exists; return whether it was created.

    The folders are created with mode 0700 and, when root, given to the postgres
    OS user. An existing cluster must match the major version of the binaries.
    """
    folder = bin_dir(settings)
    initdb = folder / "initdb"
    if not initdb.is_file():
        raise DependencyError(
            f"initdb is missing from {folder}. Install the Debian package postgresql "
            "(apt-get install postgresql), or set POSTGRES_BIN_DIR to a folder that contains it."
        )

    root = cluster_dir(settings)
    data = data_dir(settings)
    run = socket_dir(settings)
    _prepare_folders(root, data, run)

    version_file = data / "PG_VERSION"
    if version_file.is_file():
        _check_cluster_version(data, version_file.read_text(encoding="ascii").strip(), folder)
        return False
    if any(data.iterdir()):
        raise ServiceError(
            f"the private cluster's data folder {data} is not empty but contains no PG_VERSION, "
            "so it is not a PostgreSQL cluster and initdb cannot use it. "
            "Move its files elsewhere or delete the folder, then run this again."
        )

    command = [
        str(initdb), "-D", str(data),
        "--auth-local=peer", "--auth-host=scram-sha-256",
        "-U", superuser_name(), "--encoding=UTF8",
    ]
    locale = _utf8_c_locale()
    if locale is not None:
        # C.UTF-8 sorts by code point like C but lets lower() and upper() handle non-ASCII letters.
        command.append(f"--locale={locale}")

    try:
        result = subprocess.run(
            as_server_user(command), cwd=root, capture_output=True, text=True,
            check=False, timeout=INITDB_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(
            f"initdb of the private cluster in {data} timed out after {INITDB_TIMEOUT_SECONDS} s. "
            "Check that the disk is writable and not full, delete the folder and run this again."
        ) from None
    if result.returncode != 0:
        details = (result.stderr or result.stdout).strip()
        raise ServiceError(
            f"initdb of the private cluster in {data} failed with exit status "
            f"{result.returncode}: {details}. Fix the cause, delete {data} and run this again."
        )
    return True


def _prepare_folders(root: Path, data: Path, run: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    data.mkdir(exist_ok=True)
    run.mkdir(exist_ok=True)
    # postgres refuses to start unless only its owner (and optionally the group) can read PGDATA.
    # The application connects over TCP, so no other user needs the socket folder either.
    for path in (root, data, run):
        os.chmod(path, 0o700)
    if not running_as_root():
        return

    account = pwd.getpwnam(POSTGRES_OS_USER)
    for path in (root, data, run):
        if path.stat().st_uid != account.pw_uid:
            os.chown(path, account.pw_uid, account.pw_gid)
    _check_traversable(data, account)


def _check_traversable(path: Path, account: pwd.struct_passwd) -> None:
    groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
    for parent in reversed(path.parents):
        info = parent.stat()
        if info.st_uid == account.pw_uid:
            allowed = bool(info.st_mode & stat.S_IXUSR)
        elif info.st_gid in groups:
            allowed = bool(info.st_mode & stat.S_IXGRP)
        else:
            allowed = bool(info.st_mode & stat.S_IXOTH)
        if not allowed:
            owner = _user_name(info.st_uid)
            raise ServiceError(
                f"the {account.pw_name} OS user cannot enter {parent} "
                f"(mode {stat.S_IMODE(info.st_mode):04o}, owner {owner}), so PostgreSQL cannot "
                f"reach the private cluster in {path}. Run `chmod o+x {parent}`, or set "
                "TOOLKIT_STATE_DIR to a folder that the postgres user can reach."
            )


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _check_cluster_version(data: Path, cluster_version: str, folder: Path) -> None:
    binary_version = server_major_version(folder)
    if cluster_version != binary_version:
        raise ServiceError(
            f"the private cluster in {data} was created by PostgreSQL {cluster_version}, "
            f"but the programs in {folder} are PostgreSQL {binary_version} and cannot run it. "
            f"Set POSTGRES_BIN_DIR to /usr/lib/postgresql/{cluster_version}/bin, "
            f"or delete {data} to create a new, empty cluster."
        )


def _utf8_c_locale() -> str | None:
    locale_program = shutil.which("locale")
    if locale_program is None:
        return None
    listed = subprocess.run(
        [locale_program, "-a"], capture_output=True, text=True, check=False, timeout=30,
    ).stdout.split()
    for name in listed:
        if name.lower().replace("-", "") == "c.utf8":
            return name
    return None
