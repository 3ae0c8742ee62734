"""Measure time-to-ready, re-run time and memory of the local stack.

Runs the real `invoke` tasks in subprocesses against a stack of its own
(private state folder, env file and free loopback ports), so a developer's
running environment is untouched. Prints medians over several runs, and the
ratio of the toolkit's warm start to a baseline measured in the same run:
the same three programs started by hand as plain subprocesses and polled
until they respond, with no supervisor, preflight or settings work.

It also times one whole sign-up through API Gateway (register, the code
from the mail catcher, confirm, login, /api/me), and measures provisioning:
`invoke resources.setup` on an empty emulator and again with nothing to
change, against the same resources created by `provision_with_awscli.sh`, a
plain script of AWS CLI calls, on the same emulator. Then `invoke db.switch`
in both directions on a database of 100,000 users, when the system server
responds on port 5432. The AWS CLI is installed on first use into a cached
virtualenv.

Usage: .venv/bin/python benchmarks/bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from localaws.database import cluster  # noqa: E402
from localaws.database.admin import run_admin_sql, server_answers  # noqa: E402
from localaws.runtime import emulator  # noqa: E402
from localaws.runtime.health import probe_emulator, probe_mail, probe_postgres  # noqa: E402
from localaws.runtime.supervisor import Supervisor  # noqa: E402
from localaws.settings import Settings, resolve_settings  # noqa: E402
from tests.e2e.signup_api import SignupApi, unique_email  # noqa: E402

INVOKE = str(Path(sys.executable).parent / "invoke")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TOOLKIT_STATE_DIR": str(root / "state"),
        "TOOLKIT_ENV_FILE": str(root / ".env.localstack"),
        "EMULATOR_PORT": str(free_port()),
        "MAIL_SMTP_PORT": str(free_port()),
        "MAIL_HTTP_PORT": str(free_port()),
        "POSTGRES_SERVER": "container",
        "POSTGRES_PRIVATE_PORT": str(free_port()),
    }


def invoke(env: dict[str, str], *arguments: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([INVOKE, *arguments], cwd=PROJECT, env=env, capture_output=True, text=True,
                            check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"invoke {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


class MemorySampler:
    """Sample the summed resident memory of supervisord and all its descendants."""

    def __init__(self, settings: Settings) -> None:
        self.supervisor = Supervisor(settings)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pid = self.supervisor.daemon_pid()
            if pid is not None:
                try:
                    root = psutil.Process(pid)
                    processes = [root, *root.children(recursive=True)]
                    total = sum(process.memory_info().rss for process in processes)
                    self.peak = max(self.peak, total)
                except psutil.NoSuchProcess:
                    pass
            self._stop.wait(0.1)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def wait_until(probes: list[Callable[[], bool]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(probe() for probe in probes):
        if time.monotonic() > deadline:
            raise SystemExit("baseline services did not become ready")
        time.sleep(0.05)


@contextmanager
def hand_started(settings: Settings) -> Iterator[float]:
    """Start the three programs as bare subprocesses, as one would by hand; yield the time to ready."""
    root = settings.state_dir
    logs = root / "baseline-logs"
    logs.mkdir(parents=True, exist_ok=True)
    postgres_user = "postgres" if os.geteuid() == 0 else None
    emulator_env = {
        **os.environ, "BIND_HOST": settings.bind_host, "GATEWAY_PORT": str(settings.emulator_port),
        "PERSIST_STATE": "1", "S3_PERSIST": "1", "STATE_DIR": str(root / "emulator" / "state"),
        "S3_DATA_DIR": str(root / "emulator" / "s3"), "TMPDIR": str(root / "emulator" / "tmp"),
    }
    mail_command = [sys.executable, "-m", "localaws.mail", "--bind", settings.bind_host,
                    "--smtp-port", str(settings.smtp_port), "--http-port", str(settings.mail_http_port),
                    "--store-dir", str(root / "mail")]

    started = time.perf_counter()
    processes = [
        subprocess.Popen(cluster.server_command(settings), user=postgres_user,
                         stdout=(logs / "postgres.log").open("w"), stderr=subprocess.STDOUT),
        subprocess.Popen([str(emulator.executable(settings))], env=emulator_env,
                         stdout=(logs / "emulator.log").open("w"), stderr=subprocess.STDOUT),
        subprocess.Popen(mail_command, cwd=PROJECT, stdout=(logs / "mail.log").open("w"),
                         stderr=subprocess.STDOUT),
    ]
    try:
        wait_until([
            lambda: probe_postgres(settings).healthy,
            lambda: probe_emulator(settings).healthy,
            lambda: probe_mail(settings).healthy,
        ])
        yield time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def awscli_environment() -> dict[str, str]:
    """Install the AWS CLI into a cached virtualenv once; return an environment with it on PATH."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "localaws" / "awscli-venv"
    if not (cache / "bin" / "aws").exists():
        subprocess.run([sys.executable, "-m", "venv", str(cache)], check=True)
        subprocess.run([str(cache / "bin" / "pip"), "install", "--quiet", "awscli"], check=True)
    return {**os.environ, "PATH": f"{cache / 'bin'}{os.pathsep}{os.environ['PATH']}"}


def reset_emulator(settings: Settings) -> None:
    url = f"{settings.aws_endpoint_url}/_ministack/reset"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - a loopback http URL.
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - a loopback http URL.
        pass


def provision_with_awscli(settings: Settings, cli_env: dict[str, str]) -> float:
    script_env = {
        **cli_env,
        **settings.aws_environment(),
        "ENVIRONMENT": settings.environment,
        "BUILD_DIR": str(settings.state_dir / "build" / "local"),
        "POSTGRES_SERVER": settings.postgres_server,
        "DB_PORT": str(settings.db_port),
        "DB_NAME": settings.db_name,
        "DB_USER": settings.db_user,
        # A throwaway value: the script passes it on a command line, visible to `ps`.
        "DB_PASSWORD": "benchmark-only-password",
    }
    started = time.perf_counter()
    subprocess.run(["bash", str(PROJECT / "benchmarks" / "provision_with_awscli.sh")], env=script_env,
                   check=True, capture_output=True)
    return time.perf_counter() - started


def measure_switch(root: Path, runs: int) -> tuple[list[float], list[float]] | None:
    """Time `db.switch` both ways on 100,000 users; return None when the system server is down."""
    if not server_answers("127.0.0.1", 5432):
        return None
    env = environment(root / "switch")
    env.pop("POSTGRES_SERVER")
    suffix = str(os.getpid())
    name, user = f"bench_switch_{suffix}", f"bench_switch_{suffix}_user"
    to_system: list[float] = []
    to_container: list[float] = []
    try:
        subprocess.run([INVOKE, "local-dev", "--set", "POSTGRES_SERVER=container", "--set", f"DB_NAME={name}",
                        "--set", f"DB_USER={user}"], cwd=PROJECT, env=env, capture_output=True, check=False)
        invoke(env, "db.setup")
        invoke(env, "db.shell", "--command",
               "insert into users (cognito_sub, email) "
               "select 'sub-' || g, 'user' || g || '@example.com' from generate_series(1, 100000) g")
        for _ in range(runs):
            to_system.append(invoke(env, "db.switch", "--to", "system", "--yes"))
            to_container.append(invoke(env, "db.switch", "--to", "container", "--yes"))
    finally:
        subprocess.run([INVOKE, "stack.down"], cwd=PROJECT, env=env, capture_output=True, check=False)
        settings = resolve_settings(PROJECT, {}, {}, env, write_env_file=False).replace(
            postgres_server="system", db_name=name, db_user=user)
        run_admin_sql(settings, f'drop database if exists "{name}" with (force);\n'
                                f'drop role if exists "{user}";\n')
    return to_system, to_container


def time_signup(api: SignupApi) -> float:
    """Time one whole sign-up through the API: register, code from the mail, confirm, login, /api/me."""
    email = unique_email("bench")
    started = time.perf_counter()
    steps = [api.register(email)]
    steps.append(api.confirm(email, api.wait_for_code(email)))
    status, body = api.login(email)
    steps.append((status, body))
    steps.append(api.me(body.get("access_token")))
    elapsed = time.perf_counter() - started
    failed = [(status, body) for status, body in steps if status != 200]
    if failed:
        raise SystemExit(f"sign-up flow failed: {failed}")
    return elapsed


def summary(values: list[float]) -> str:
    return (f"median {statistics.median(values):7.2f} s   min {min(values):6.2f} s   "
            f"max {max(values):6.2f} s   (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Runs per measurement; default 3.")
    arguments = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="localaws-bench-", dir="/tmp"))
    os.chmod(root, 0o711)  # noqa: S103 - traverse only, so the postgres user reaches its data folder.
    env = environment(root)
    cold: list[float] = []
    warm: list[float] = []
    verify: list[float] = []
    baseline: list[float] = []
    signup: list[float] = []
    provision_cold: list[float] = []
    provision_noop: list[float] = []
    provision_cli: list[float] = []

    try:
        for _ in range(arguments.runs):
            shutil.rmtree(root / "state", ignore_errors=True)
            cold.append(invoke(env, "local-dev"))
            invoke(env, "stack.down")

        settings = resolve_settings(PROJECT, {}, {}, env, write_env_file=False)
        sampler = MemorySampler(settings)
        with sampler:
            for _ in range(arguments.runs):
                warm.append(invoke(env, "stack.up"))
                verify.append(invoke(env, "verify"))
                invoke(env, "stack.down")
            invoke(env, "stack.up")
            for _ in range(arguments.runs):
                verify.append(invoke(env, "verify"))
            invoke(env, "stack.down")

        for _ in range(arguments.runs):
            with hand_started(settings) as elapsed:
                baseline.append(elapsed)

        cli_env = awscli_environment()
        invoke(env, "stack.up")
        for _ in range(arguments.runs):
            reset_emulator(settings)
            provision_cold.append(invoke(env, "resources.setup"))
            provision_noop.append(invoke(env, "resources.setup"))
            reset_emulator(settings)
            provision_cli.append(provision_with_awscli(settings, cli_env))
        reset_emulator(settings)
        invoke(env, "resources.setup")
        api = SignupApi(settings)
        for _ in range(arguments.runs):
            signup.append(time_signup(api))
        invoke(env, "stack.down")
        switch_times = measure_switch(root, arguments.runs)
    finally:
        subprocess.run([INVOKE, "stack.down"], cwd=PROJECT, env=env, capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)

    print(f"cold local-dev (state folder removed, pip cache warm)  {summary(cold)}")
    print(f"warm stack.up after stack.down                       {summary(warm)}")
    print(f"verify                                               {summary(verify)}")
    print(f"baseline: same programs started by hand to ready     {summary(baseline)}")
    ratio = statistics.median(warm) / statistics.median(baseline)
    print(f"ratio warm stack.up / baseline (medians)             {ratio:7.2f}")
    print(f"peak memory of the stack's processes together        {sampler.peak / 2**20:7.1f} MiB")
    print(f"resources.setup on an empty emulator                 {summary(provision_cold)}")
    print(f"resources.setup with nothing to change               {summary(provision_noop)}")
    print(f"same resources by a script of AWS CLI calls          {summary(provision_cli)}")
    ratio = statistics.median(provision_cli) / statistics.median(provision_cold)
    print(f"ratio AWS CLI script / resources.setup (medians)     {ratio:7.2f}")
    print(f"sign-up flow, register to /api/me                    {summary(signup)}")
    if switch_times is None:
        print("db.switch: skipped, the system server does not answer on 127.0.0.1:5432")
    else:
        print(f"db.switch container -> system, 100,000 users         {summary(switch_times[0])}")
        print(f"db.switch system -> container, 100,000 users         {summary(switch_times[1])}")


if __name__ == "__main__":
    main()
