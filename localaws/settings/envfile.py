"""Read and write `.env` files with docker compose's `env_file` rules.

python-dotenv parses the lines. This module adds two rules of compose that
dotenv lacks. A malformed line is an error naming the file and the line,
where dotenv only warns. `${VAR}` interpolation skips single-quoted values, so
a `$` inside single quotes stays literal.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from dotenv.parser import parse_stream

from localaws.errors import FileLineError

# `$$` is a literal dollar; `${NAME}`, `${NAME:-default}`, `${NAME-default}` and `$NAME`
# are interpolated, as in compose.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_UNCLOSED_BRACE = re.compile(r"(?<!\$)\$\{[^}]*$")


def read_env_file(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, tuple[str, int]]:
    """Parse an env file into `{key: (value, line)}`.

    Raises `FileLineError` on a line that is not `KEY=VALUE`, a comment or blank.
    """
    environ = os.environ if environ is None else environ
    text = path.read_text(encoding="utf-8")
    values: dict[str, tuple[str, int]] = {}

    for binding in parse_stream(io.StringIO(text)):
        line = _statement_line(binding.original.string, binding.original.line)
        if binding.error:
            statement = binding.original.string.strip().splitlines()[0]
            raise FileLineError(
                path,
                line,
                f"invalid line {statement!r}: expected KEY=VALUE, a comment or a blank line. "
                "Fix or remove the line.",
            )
        if binding.key is None:
            continue
        value = binding.value or ""
        if not _is_single_quoted(binding.original.string):
            value = _interpolate(value, path, line, {**environ, **{k: v for k, (v, _) in values.items()}})
        values[binding.key] = (value, line)

    return values


def update_env_text(path: Path, text: str, values: Mapping[str, str],
                    environ: Mapping[str, str] | None = None) -> str:
    """Return `text` with each key of `values` set, touching nothing else.

    A key whose current value already equals the wanted one keeps its line as
    written (quotes, `${VAR}` references, inline comment). A changed key's
    statement is replaced in place; a missing key is appended. Comments, blank
    lines and unknown keys stay as they are.
    """
    current = read_env_file(path, environ) if path.exists() else {}
    pending = {key: value for key, value in values.items() if key not in current or current[key][0] != value}
    if not pending:
        return text

    pieces = []
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        if binding.key is not None and binding.key in pending:
            body = original.lstrip("\n")
            leading = original[: len(original) - len(body)]
            pieces.append(f"{leading}{binding.key}={quote_env_value(pending.pop(binding.key))}\n")
        else:
            pieces.append(original)

    updated = "".join(pieces)
    if pending:
        if updated and not updated.endswith("\n"):
            updated += "\n"
        updated += "\n# Added by the toolkit.\n"
        updated += "".join(f"{key}={quote_env_value(value)}\n" for key, value in pending.items())
    return updated


def _statement_line(original: str, first_line: int) -> int:
    # python-dotenv counts from the first blank line it folds into the statement.
    skipped = 0
    for text in original.splitlines():
        if text.strip():
            break
        skipped += 1
    return first_line + skipped


def _is_single_quoted(statement: str) -> bool:
    _, _, raw_value = statement.partition("=")
    return raw_value.lstrip().startswith("'")


def _interpolate(value: str, path: Path, line: int, scope: Mapping[str, str]) -> str:
    if _UNCLOSED_BRACE.search(value):
        raise FileLineError(
            path, line, f"invalid interpolation in {value!r}: '${{' has no closing '}}'. "
            "Close the brace, or single-quote the value to keep '$' literal.",
        )

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        current = scope.get(name)
        if match["op"] == ":-" and not current:
            return match["default"]
        if match["op"] == "-" and current is None:
            return match["default"]
        return current or ""

    return _VARIABLE.sub(substitute, value)


def quote_env_value(value: str) -> str:
    """Quote a value so that compose and python-dotenv read it back unchanged.

    Single quotes keep `$`, `#` and spaces literal; a value containing a single
    quote or a newline is double-quoted with backslash escapes instead.
    """
    if "'" not in value and "\n" not in value and "\\" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("$", "$$")
    return f'"{escaped}"'


def write_private_file(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable and writable by the owner only.

    The content goes to a temporary file in the same folder first, so an
    interrupted write leaves the previous file intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
