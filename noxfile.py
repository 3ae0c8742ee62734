"""Test sessions: `nox -s unit` needs no services, `nox -s integration` starts what it needs."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "unit", "integration", "e2e"]
nox.options.reuse_existing_virtualenvs = True


def install(session: nox.Session, extras: str = "test") -> None:
    """Install the toolkit with `extras` into the session's virtualenv."""
    session.install("-e", f".[{extras}]")


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Check style with ruff and types with mypy."""
    install(session, "lint")
    session.run("ruff", "check", "localaws", "src", "tests", "tasks.py", "noxfile.py", "benchmarks")
    session.run("mypy")


@nox.session(python="3.11")
def unit(session: nox.Session) -> None:
    """Run the unit tests: no services, moto's in-process mock for AWS."""
    install(session)
    session.run("pytest", "tests/unit", *session.posargs)


@nox.session(python="3.11")
def integration(session: nox.Session) -> None:
    """Run the integration tests against real services that the tests start and stop."""
    install(session)
    session.run("pytest", "-m", "integration", "tests/integration", *session.posargs)


@nox.session(python="3.11")
def e2e(session: nox.Session) -> None:
    """Run the end-to-end flows on a stack they start and stop, with the emulator checking codes."""
    install(session)
    session.run("pytest", "-m", "e2e", "tests/e2e", *session.posargs)
