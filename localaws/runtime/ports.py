"""Check that the stack's ports are free, and name the process listening on a taken one."""

from __future__ import annotations

import errno
import socket
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import psutil

from localaws.errors import PortInUseError


@dataclass(frozen=True)
class PortClaim:
    """A port one of our services needs, with the setting that moves it."""

    service: str
    host: str
    port: int
    setting: str


@dataclass(frozen=True)
class PortHolder:
    """The process listening on a port, as far as the operating system reports it."""

    pid: int | None
    command: str

    def describe(self) -> str:
        if self.pid is None:
            return "a process this user cannot see (run as root or check with `ss -ltnp`)"
        return f"pid {self.pid} ({self.command})"


def port_is_free(host: str, port: int) -> bool:
    """Return whether a TCP listener could bind `host:port` now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def find_listener(port: int) -> PortHolder:
    """Find the process listening on TCP `port` on any address."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return PortHolder(None, "")

    for connection in connections:
        if connection.status != psutil.CONN_LISTEN or not connection.laddr:
            continue
        if connection.laddr.port != port:
            continue
        if connection.pid is None:
            return PortHolder(None, "")
        try:
            command = " ".join(psutil.Process(connection.pid).cmdline()) or "?"
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            command = "?"
        return PortHolder(connection.pid, command)
    return PortHolder(None, "")


def process_tree(pids: Iterable[int]) -> set[int]:
    """Return the given pids and all their descendants that still exist."""
    tree: set[int] = set()
    for pid in pids:
        try:
            process = psutil.Process(pid)
            tree.add(pid)
            tree.update(child.pid for child in process.children(recursive=True))
        except psutil.NoSuchProcess:
            continue
    return tree


# Environment variable set on every supervised program, naming its state folder, so a
# program left running after its supervisord died can still be found and stopped.
STATE_MARKER = "LOCALAWS_STATE_DIR"


@dataclass(frozen=True)
class Orphan:
    """A process of the stack found by its state-folder marker."""

    pid: int
    name: str


def find_orphans(state_dir: str) -> list[Orphan]:
    """Find the top-level processes whose environment carries this state folder's marker."""
    marked: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["pid", "name"]):
        try:
            if process.environ().get(STATE_MARKER) == state_dir:
                marked[process.pid] = process
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue

    orphans = []
    for pid, process in marked.items():
        try:
            if process.ppid() in marked:
                continue
            orphans.append(Orphan(pid, " ".join(process.cmdline()[:3]) or process.name()))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return orphans


def terminate(orphans: Collection[Orphan], timeout: float = 30.0) -> None:
    """Send SIGTERM to each process, then SIGKILL to those still alive after `timeout` seconds."""
    processes = []
    for orphan in orphans:
        try:
            process = psutil.Process(orphan.pid)
            process.terminate()
            processes.append(process)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        process.kill()


def check_ports(claims: Iterable[PortClaim], own_pids: Collection[int] = ()) -> None:
    """Raise `PortInUseError` naming every claimed port held by a process that is not ours.

    `own_pids` are processes of the running stack: a port they hold is expected.
    """
    problems = []
    for claim in claims:
        if port_is_free(claim.host, claim.port):
            continue
        holder = find_listener(claim.port)
        if holder.pid is not None and holder.pid in own_pids:
            continue
        problems.append(
            f"port {claim.port} on {claim.host}, needed by the {claim.service}, is in use by "
            f"{holder.describe()}. Stop that process, or move the {claim.service} to a free port "
            f"with `--set {claim.setting}=<port>` or {claim.setting} in the env file."
        )
    if problems:
        raise PortInUseError("\n".join(problems) + "\nNothing was started.")
