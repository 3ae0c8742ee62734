"""Exception tree of the toolkit.

Every error a user can cause or fix derives from `ToolkitError`. Its message
states what failed, on which value, and what to do next. The task layer prints
it without a traceback and exits with status 1.
"""

from __future__ import annotations

from pathlib import Path


class ToolkitError(Exception):
    """Base class of every error the toolkit reports to its user."""


class ConfigError(ToolkitError, ValueError):
    """A setting, settings file or template is invalid."""


class FileLineError(ConfigError):
    """An error in a user-edited file, located by path and line number."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        location = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{location}: {message}")


class PortInUseError(ToolkitError):
    """A port the stack needs is held by another process."""


class ServiceError(ToolkitError):
    """A service failed to start, stop or become ready."""


class DependencyError(ToolkitError):
    """A program or package the toolkit needs is missing."""


class DatabaseError(ToolkitError):
    """A database operation failed."""


class MigrationError(DatabaseError):
    """A migration failed or differs from the version already applied."""


class PlaybookError(ConfigError):
    """A playbook is invalid or cannot start; `problems` lists each problem as `file:line: message`."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        self.problems = problems
        super().__init__(message)
