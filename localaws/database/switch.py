"""Move the application database between the system server and the private cluster.

`switch` runs its steps in order and announces each on one line before it
starts. The source database is only read. The env file is rewritten, in one
atomic replace, only after the copy is verified, so a failure or an
interruption before that step leaves the old setup working. Each step can be
repeated: a second run after an interrupted one recognises a target database
that the first run left half-restored and recreates it.

Switching to `system` keeps the private cluster running until the last step,
whose `stack.up` with the new settings stops it. Its data folder stays, so a
later switch back copies into it, after asking, because it then contains the
older data.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from localaws.database.admin import ensure_database, ensure_role, require_server
from localaws.database.cluster import (
    POSTGRES_OS_USER,
    find_program,
    running_as_root,
    socket_dir,
    superuser_name,
)
from localaws.database.maintenance import (
    TableFingerprint,
    application_rows,
    database_exists,
    drop_database,
    fingerprints,
    sequence_values,
)
from localaws.database.marker import write_marker
from localaws.database.migrations import migrate
from localaws.errors import ConfigError, DatabaseError, PortInUseError, ServiceError, ToolkitError
from localaws.runtime.ports import find_listener, port_is_free, process_tree
from localaws.settings import Settings

TARGETS = ("container", "system")

PREFLIGHT = "preflight"
PREPARE = "prepare target"
COPY = "copy data"
VERIFY = "verify"
SWITCH_SETTINGS = "switch settings"
UPDATE_RESOURCES = "update secret and RDS record"
RESTART = "restart services"
ALL_STEPS = (PREFLIGHT, PREPARE, COPY, VERIFY, SWITCH_SETTINGS, UPDATE_RESOURCES, RESTART)
DATA_STEPS = (COPY, VERIFY)
# Steps left when the env file already selects the target: an earlier run got past SWITCH_SETTINGS.
FINISHING_STEPS = (PREFLIGHT, UPDATE_RESOURCES, RESTART)

PROGRESS_FILE = "db-switch.json"
DUMP_FILE = "db-switch.dump"
TOOL_TIMEOUT_SECONDS = 3600

Report = Callable[[str], None]


class SwitchError(ToolkitError):
    """A step of `db.switch` failed; the message names the step and what to do."""


@dataclass(frozen=True)
class SwitchOptions:
    """Request of one switch: the target server, whether to copy data, whether to ask first."""

    target: str
    copy_data: bool = True
    assume_yes: bool = False


@dataclass(frozen=True)
class SwitchHooks:
    """Callbacks the switch needs from its caller: output, questions, settings, services, playbooks."""

    report: Report
    confirm: Callable[[str], bool]
    # Resolves the settings with these task flags and writes them to the env file.
    resolve: Callable[[Mapping[str, str]], Settings]
    # Starts the services of these settings and waits until they are ready (the runtime's `up`).
    start_services: Callable[[Settings], None]
    # Applies a playbook of `playbooks/` to the emulator and returns one line per task.
    apply_playbook: Callable[[Settings, str], list[str]]
    # Returns a problem with the emulator, or None when it responds.
    emulator_problem: Callable[[Settings], str | None]


def plan_steps(current_server: str, target: str, copy_data: bool) -> list[str]:
    """Return the steps to run, in order, for switching from `current_server` to `target`."""
    if current_server == target:
        return list(FINISHING_STEPS)
    return [step for step in ALL_STEPS if copy_data or step not in DATA_STEPS]


def compare_tables(source: Mapping[str, TableFingerprint],
                   target: Mapping[str, TableFingerprint]) -> list[str]:
    """Describe every table whose row count or checksum differs, or that exists on one side only."""
    differences = []
    for name in sorted(set(source) | set(target)):
        if name not in target:
            differences.append(f"{name} is missing in the target")
        elif name not in source:
            differences.append(f"{name} exists only in the target")
        elif source[name].rows != target[name].rows:
            differences.append(f"{name} has {source[name].rows} rows in the source, {target[name].rows} "
                               "in the target")
        elif source[name].checksum != target[name].checksum:
            differences.append(f"{name} has the same row count but other contents")
    return differences


def compare_sequences(source: Mapping[str, int | None], target: Mapping[str, int | None]) -> list[str]:
    """Describe every sequence whose last value differs between source and target."""
    return [
        f"sequence {name} is at {source.get(name)} in the source, {target.get(name)} in the target"
        for name in sorted(set(source) | set(target))
        if source.get(name) != target.get(name)
    ]


def describe_server(settings: Settings) -> str:
    kind = "private cluster" if settings.postgres_server == "container" else "system server"
    return f"{kind} on {settings.db_host}:{settings.db_port}"


def failure_message(step: str, number: int, total: int, error: Exception, source: Settings,
                    target: str) -> str:
    """Explain which step failed, what still works and how to continue."""
    again = f"`invoke db.switch --to {target}`"
    settings_unchanged = ALL_STEPS.index(step) <= ALL_STEPS.index(SWITCH_SETTINGS)
    if settings_unchanged and source.postgres_server != target:
        state = (f"The settings still select POSTGRES_SERVER={source.postgres_server} "
                 f"({describe_server(source)}), whose database was only read, so the old setup "
                 f"keeps working. Fix the cause and run {again} again.")
    else:
        state = (f"The settings already select POSTGRES_SERVER={target}. Fix the cause and run "
                 f"{again} again to finish the remaining steps.")
    return f"step {number}/{total} ({step}) failed: {error}\n{state}"


def own_cluster_pids(settings: Settings) -> set[int]:
    """Return the pids of the private cluster that this state folder's supervisord runs."""
    from localaws.runtime.supervisor import Supervisor

    records = Supervisor(settings).processes()
    return process_tree(record["pid"] for record in records if record["name"] == "postgres" and record["pid"])


def check_private_port(settings: Settings, report: Report) -> None:
    """Raise PortInUseError when a process other than this stack's private cluster listens on its port."""
    port = settings.postgres_private_port
    if port_is_free(settings.bind_host, port):
        return
    holder = find_listener(port)
    if holder.pid is not None and holder.pid in own_cluster_pids(settings):
        report(f"the private cluster already runs on port {port} (pid {holder.pid})")
        return
    raise PortInUseError(
        f"port {port} on {settings.bind_host}, where POSTGRES_PRIVATE_PORT puts the private cluster, "
        f"is in use by {holder.describe()}. Nothing was changed. Stop that process, or set "
        f"POSTGRES_PRIVATE_PORT to a free port in {settings.env_file} and run this again."
    )


class Progress:
    """The file that marks a copy in progress, so that a later run recognises a half-restored target."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.state_dir / "run" / PROGRESS_FILE

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, data: dict[str, Any]) -> None:
        from localaws.settings.envfile import write_private_file

        write_private_file(self.path, json.dumps(data))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def copy_key(settings: Settings) -> dict[str, Any]:
    """Identify a target database in the progress file: server, port and name."""
    return {"server": settings.postgres_server, "port": settings.db_port, "database": settings.db_name}


def stop_leftover_tools(progress: dict[str, Any], report: Report) -> None:
    """Stop pg_dump or pg_restore processes that an interrupted run left behind."""
    for entry in progress.get("tools", []):
        try:
            process = psutil.Process(int(entry["pid"]))
            if process.name() != entry["name"] or process.create_time() != entry["created"]:
                continue
            report(f"stopping {entry['name']} (pid {process.pid}), left running by an interrupted switch")
            process.terminate()
            process.wait(timeout=30)
        except (psutil.Error, KeyError, ValueError, TypeError):
            continue


class Switch:
    """One run of `db.switch`: the settings on both sides and the state shared by the steps."""

    def __init__(self, settings: Settings, options: SwitchOptions, hooks: SwitchHooks) -> None:
        if options.target not in TARGETS:
            raise ConfigError(f"invalid target {options.target!r}: expected one of {', '.join(TARGETS)}.")
        self.source = settings
        self.target = settings.replace(postgres_server=options.target)
        self.options = options
        self.hooks = hooks
        self.report = hooks.report
        self.progress = Progress(settings)
        self.identical = False
        self.switched: Settings | None = None
        self.steps = plan_steps(settings.postgres_server, options.target, options.copy_data)
        self.finishing = settings.postgres_server == options.target

    def run(self) -> Settings:
        """Run every step in order; raise SwitchError naming the step that failed."""
        actions: dict[str, Callable[[], None]] = {
            PREFLIGHT: self.preflight,
            PREPARE: self.prepare_target,
            COPY: self.copy_data,
            VERIFY: self.verify,
            SWITCH_SETTINGS: self.switch_settings,
            UPDATE_RESOURCES: self.update_resources,
            RESTART: self.restart_services,
        }
        total = len(self.steps)
        for number, step in enumerate(self.steps, 1):
            self.report(f"==> step {number}/{total}: {step}")
            try:
                actions[step]()
            except ToolkitError as error:
                raise SwitchError(failure_message(step, number, total, error, self.source,
                                                  self.options.target)) from error
        return self.switched or self.target

    # Steps.

    def preflight(self) -> None:
        if self.source.source_of("POSTGRES_SERVER") == "environment variable":
            raise ConfigError(
                "POSTGRES_SERVER is set in the environment, which overrides the env file that "
                "db.switch rewrites. Unset it (`unset POSTGRES_SERVER`) and run this again."
            )
        problem = self.hooks.emulator_problem(self.source)
        if problem is not None:
            raise ServiceError(f"{problem}. The secret and the RDS record are updated in the "
                               "emulator, so start it with `invoke stack.up` first.")
        if self.finishing:
            self.report(f"the settings already select POSTGRES_SERVER={self.options.target}; "
                        "running the remaining steps")
            require_server(self.target)
            return

        if self.options.copy_data:
            for program in ("pg_dump", "pg_restore"):
                find_program(program, self.source.postgres_bin_dir)
        if self.options.target == "container":
            check_private_port(self.target, self.report)
        else:
            require_server(self.target)
        if self.options.copy_data:
            require_server(self.source)
            if not database_exists(self.source):
                raise DatabaseError(
                    f"the source database {self.source.db_name!r} does not exist on the "
                    f"{describe_server(self.source)}, so there is nothing to copy. Run `invoke db.setup`, "
                    "or pass --no-data to start with an empty database."
                )
        self.report(f"source: {describe_server(self.source)}, database {self.source.db_name}")
        self.report(f"target: {describe_server(self.target)}, database {self.target.db_name}")

    def prepare_target(self) -> None:
        if self.options.target == "container":
            self.hooks.start_services(self.target)
        require_server(self.target)
        self.report(f"role {self.target.db_user}: {ensure_role(self.target)}")
        if not self.options.copy_data:
            self.report(f"database {self.target.db_name}: {ensure_database(self.target)}")
            write_marker(self.target)
            self._migrate()
            return
        self._prepare_empty_database()

    def copy_data(self) -> None:
        if self.identical:
            self.report("skipped: the target already contains the same data")
            return
        self.progress.write({**copy_key(self.target), "tools": []})
        run_dir = self.source.state_dir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        dump = run_dir / DUMP_FILE
        try:
            with _private_file(dump, "wb") as output:
                self._run_tool(self.source, "pg_dump", ["-Fc", "-d", self.source.db_name], stdout=output)
            self.report(f"pg_dump: {dump.stat().st_size} bytes from {describe_server(self.source)}")
            with dump.open("rb") as dumped:
                self._run_tool(self.target, "pg_restore",
                               ["--exit-on-error", "--single-transaction", "-d", self.target.db_name],
                               stdin=dumped)
            self.report(f"pg_restore: restored into {describe_server(self.target)}")
        finally:
            dump.unlink(missing_ok=True)
        self._migrate()

    def verify(self) -> None:
        source_tables = fingerprints(self.source)
        target_tables = fingerprints(self.target)
        differences = compare_tables(source_tables, target_tables)
        differences += compare_sequences(sequence_values(self.source), sequence_values(self.target))
        if differences:
            raise DatabaseError(
                "the target differs from the source: " + "; ".join(differences) + ". Run db.switch "
                "again, which recreates the target database and copies again."
            )
        rows = sum(table.rows for table in source_tables.values())
        self.report(f"{len(source_tables)} tables with {rows} rows have the same row count and checksum "
                    "in source and target")
        write_marker(self.target)
        self.progress.clear()

    def switch_settings(self) -> None:
        self.switched = self.hooks.resolve({"POSTGRES_SERVER": self.options.target})
        if self.switched.postgres_server != self.options.target:
            raise ConfigError(
                f"POSTGRES_SERVER is still {self.switched.postgres_server!r} after rewriting "
                f"{self.switched.env_file} (from {self.switched.source_of('POSTGRES_SERVER')}). "
                "Remove the setting from that place and run this again."
            )
        self.report(f"{self.switched.env_file}: POSTGRES_SERVER={self.switched.postgres_server}, "
                    f"DB_PORT={self.switched.db_port}")

    def update_resources(self) -> None:
        settings = self.switched or self.target
        for playbook in ("secrets.yml", "database.yml"):
            for line in self.hooks.apply_playbook(settings, playbook):
                self.report(line)

    def restart_services(self) -> None:
        settings = self.switched or self.target
        self.hooks.start_services(settings)
        for line in self.hooks.apply_playbook(settings, "site.yml"):
            self.report(line)
        self.report("Lambda functions read the database secret at their cold start. A function whose "
                    "environment changed gets a new worker; restart the emulator (`invoke stack.down` "
                    "then `invoke stack.up`) if one still uses the old port.")

    # Helpers.

    def _migrate(self) -> None:
        applied = migrate(self.target, self.target.project_dir / "sql")
        names = ", ".join(migration.filename for migration in applied) or "none pending"
        self.report(f"migrations: {names}")

    def _create_database(self) -> None:
        change = ensure_database(self.target)
        write_marker(self.target)
        self.report(f"database {self.target.db_name}: {change}")

    def _recreate_database(self, reason: str) -> None:
        self.report(f"database {self.target.db_name}: {reason}; dropping and creating it again")
        drop_database(self.target)
        self._create_database()

    def _prepare_empty_database(self) -> None:
        """Leave the target database empty for the copy, unless it already contains the source's data."""
        progress = self.progress.read()
        if progress:
            stop_leftover_tools(progress, self.report)
        if not database_exists(self.target):
            self._create_database()
            return
        if {key: progress.get(key) for key in copy_key(self.target)} == copy_key(self.target):
            self._recreate_database("left half-restored by an interrupted copy")
            return

        target_tables = fingerprints(self.target)
        rows = application_rows(target_tables)
        if rows == 0:
            self._recreate_database("it contains no application rows")
            return
        source_tables = fingerprints(self.source)
        differences = compare_tables(source_tables, target_tables)
        differences += compare_sequences(sequence_values(self.source), sequence_values(self.target))
        if not differences:
            self.identical = True
            self.report(f"database {self.target.db_name}: already contains the same data as the source")
            return

        where = f"{self.target.db_name!r} on the {describe_server(self.target)}"
        question = (f"The target database {where} contains {rows} application rows that differ from the "
                    "source. Replace them with the source's data?\n")
        if not (self.options.assume_yes or self.hooks.confirm(question)):
            raise DatabaseError(
                f"the target database {where} already contains {rows} application rows that differ "
                f"from the source ({'; '.join(differences[:3])}). Nothing was changed. Pass --yes to "
                "replace them with the source's data, or set DB_NAME to another database."
            )
        self._recreate_database("replacing its data with the source's")

    def _run_tool(self, settings: Settings, name: str, arguments: list[str],
                  stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> None:
        """Run pg_dump or pg_restore as the superuser through the server's socket."""
        program = find_program(name, settings.postgres_bin_dir)
        command = [str(program), "-h", str(socket_dir(settings)), "-p", str(settings.db_port),
                   "-U", superuser_name(), *arguments]
        environment = {**os.environ, "PGAPPNAME": "localaws-switch", "PGCONNECT_TIMEOUT": "10"}
        process = subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                                   env=environment, cwd="/", **_server_user())
        self._record_tool(process.pid, name)
        try:
            _, errors = process.communicate(timeout=TOOL_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise ServiceError(f"{name} timed out after {TOOL_TIMEOUT_SECONDS} s") from None
        if process.returncode != 0:
            details = errors.decode("utf-8", "replace").strip() or f"exit status {process.returncode}"
            raise DatabaseError(f"{name} failed on the {describe_server(settings)}: {details}")

    def _record_tool(self, pid: int, name: str) -> None:
        data = self.progress.read()
        try:
            created = psutil.Process(pid).create_time()
        except psutil.Error:
            return
        data.setdefault("tools", []).append({"pid": pid, "name": name, "created": created})
        self.progress.write(data)


def _server_user() -> dict[str, Any]:
    """Return the Popen arguments that run a program as the postgres OS user when this process is root."""
    if not running_as_root():
        return {}
    return {"user": POSTGRES_OS_USER, "group": POSTGRES_OS_USER, "extra_groups": []}


def _private_file(path: Path, mode: str) -> IO[bytes]:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(descriptor, mode)


def switch(settings: Settings, options: SwitchOptions, hooks: SwitchHooks) -> Settings:
    """Move the application database to `options.target` and return the new settings."""
    return Switch(settings, options, hooks).run()
