"""The env file reader follows docker compose's env_file rules and locates errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from localaws.errors import FileLineError
from localaws.settings.envfile import quote_env_value, read_env_file, write_private_file


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env.test"
    path.write_text(text, encoding="utf-8")
    return path


def values(path: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    return {key: value for key, (value, _) in read_env_file(path, environ or {}).items()}


def test_comments_blank_lines_and_export(tmp_path: Path) -> None:
    path = write(tmp_path, "# comment\n\nA=1\nexport B=two\nC=three # trailing comment\n")
    assert values(path) == {"A": "1", "B": "two", "C": "three"}


def test_quotes_are_removed(tmp_path: Path) -> None:
    path = write(tmp_path, "A='single quoted'\nB=\"double quoted\"\nC=\"line\\nbreak\"\n")
    result = values(path)
    assert result["A"] == "single quoted"
    assert result["B"] == "double quoted"
    assert result["C"] == "line\nbreak"


def test_dollar_in_single_quotes_stays_literal(tmp_path: Path) -> None:
    path = write(tmp_path, "HOME_DIR=/home/me\nA='$HOME_DIR and ${HOME_DIR}'\n")
    assert values(path)["A"] == "$HOME_DIR and ${HOME_DIR}"


def test_interpolation_outside_single_quotes(tmp_path: Path) -> None:
    path = write(tmp_path, "BASE=/srv\nA=$BASE/a\nB=\"${BASE}/b\"\nC=${MISSING:-fallback}\nD=$$BASE\n")
    result = values(path)
    assert result["A"] == "/srv/a"
    assert result["B"] == "/srv/b"
    assert result["C"] == "fallback"
    assert result["D"] == "$BASE"


def test_interpolation_reads_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "A=${FROM_ENV}\n")
    assert values(path, {"FROM_ENV": "yes"})["A"] == "yes"


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "A=1\nB=2\nthis is not an assignment\n")
    with pytest.raises(FileLineError) as caught:
        read_env_file(path, {})
    assert caught.value.line == 3
    assert f"{path}:3" in str(caught.value)


def test_unclosed_brace_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "A=1\nB=${OPEN\n")
    with pytest.raises(FileLineError) as caught:
        read_env_file(path, {})
    assert caught.value.line == 2


def test_line_numbers_are_recorded(tmp_path: Path) -> None:
    path = write(tmp_path, "# header\n\nA=1\n\nB=2\n")
    parsed = read_env_file(path, {})
    assert parsed["A"] == ("1", 3)
    assert parsed["B"] == ("2", 5)


@pytest.mark.parametrize("value", [
    "plain", "p@ss#w%rd:/x", "with space", "$dollar", "it's", 'dq"inside', "back\\slash", "new\nline",
    "ends with #", "'", "",
])
def test_quoted_values_read_back_identical(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"KEY={quote_env_value(value)}\n")
    assert values(path)["KEY"] == value


def test_private_file_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "secret.env"
    write_private_file(path, "A=1\n")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == "A=1\n"
