"""Database tasks."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from localaws.collections._base import SET_HELP, load_settings, reports_errors, say
from localaws.database.setup import setup_database


@task(iterable=["set_"], help={"set_": SET_HELP})
@reports_errors
def setup(c: Context, set_: list[str] | None = None) -> None:
    """Create the application role and database, and apply pending migrations from sql/."""
    settings = load_settings(c, set_ or ())
    result = setup_database(settings, settings.project_dir / "sql")
    for line in result.lines(settings):
        say(line)


collection = Collection("db", setup)
