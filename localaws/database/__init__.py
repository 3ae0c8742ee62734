"""PostgreSQL for the project: private cluster, application role and database, migrations."""

from localaws.database.admin import (
    Change,
    ensure_database,
    ensure_role,
    require_server,
    server_answers,
)
from localaws.database.cluster import bin_dir, ensure_cluster, server_command, socket_dir
from localaws.database.migrations import Migration, MigrationStatus, discover, migrate, status
from localaws.database.setup import SetupResult, check_login, setup_database

__all__ = [
    "Change",
    "Migration",
    "MigrationStatus",
    "SetupResult",
    "bin_dir",
    "check_login",
    "discover",
    "ensure_cluster",
    "ensure_database",
    "ensure_role",
    "migrate",
    "require_server",
    "server_answers",
    "server_command",
    "setup_database",
    "socket_dir",
    "status",
]
