"""Render the project's Jinja templates strictly.

An undefined variable is an error, and every error names the template file
and line, so a typo in `templates/` is found before anything is written.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from localaws.errors import FileLineError


def render_template(
    templates_dir: Path,
    name: str,
    context: Mapping[str, Any],
    filters: Mapping[str, Callable[..., Any]] | None = None,
) -> str:
    """Render `templates_dir/name` with `context`; raise `FileLineError` on any template error."""
    path = templates_dir / name
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - renders configuration files, not HTML.
    )
    environment.filters.update(filters or {})

    try:
        return environment.get_template(name).render(**context)
    except jinja2.TemplateNotFound:
        raise FileLineError(path, None, "template not found. Restore it from version control.") from None
    except jinja2.TemplateSyntaxError as error:
        raise FileLineError(error.filename or path, error.lineno, f"template syntax error: {error.message}. "
                            "Fix the template.") from None
    except jinja2.UndefinedError as error:
        raise FileLineError(path, _template_line(error, path), f"undefined variable: {error.message}. "
                            "Define it in the settings or fix its name in the template.") from None


def _template_line(error: BaseException, path: Path) -> int | None:
    """Find the template line in the traceback that Jinja rewrites to point into the template."""
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno
    return line
