"""Migration files are found in version order, named strictly and checksummed (no server)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from localaws.database.migrations import AppliedMigration, Migration, checksum, compare, discover
from localaws.errors import MigrationError

PROJECT = Path(__file__).resolve().parents[2]


def write(folder: Path, name: str, text: str = "select 1;\n") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def applied_row(migration: Migration, digest: str | None = None) -> AppliedMigration:
    return AppliedMigration(
        migration.version, migration.name, digest or migration.checksum,
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_discover_orders_by_number(tmp_path: Path) -> None:
    for name in ("010_tenth.sql", "002_second.sql", "001_first.sql", "0003_third.sql"):
        write(tmp_path, name)

    migrations = discover(tmp_path)

    assert [migration.version for migration in migrations] == [1, 2, 3, 10]
    assert [migration.name for migration in migrations] == ["first", "second", "third", "tenth"]
    assert migrations[3].path == tmp_path / "010_tenth.sql"
    assert migrations[3].filename == "010_tenth.sql"


def test_discover_skips_other_files(tmp_path: Path) -> None:
    write(tmp_path, "001_first.sql")
    write(tmp_path, "README.md", "notes")
    write(tmp_path, ".002_editor_backup.sql")
    write(tmp_path, "003_old.sql~")
    (tmp_path / "004_folder.sql").mkdir()

    assert [migration.filename for migration in discover(tmp_path)] == ["001_first.sql"]


def test_discover_empty_folder(tmp_path: Path) -> None:
    assert discover(tmp_path) == []


def test_discover_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="does not exist"):
        discover(tmp_path / "absent")


@pytest.mark.parametrize(
    "name",
    ["1_short.sql", "01_short.sql", "001-dash.sql", "001_.sql", "abc.sql",
     "001_with space.sql", "001_ümlaut.sql", "v001_prefix.sql", "001_name.SQL.sql"],
)
def test_discover_rejects_bad_name(tmp_path: Path, name: str) -> None:
    write(tmp_path, name)

    with pytest.raises(MigrationError, match="invalid migration file name") as raised:
        discover(tmp_path)
    assert name in str(raised.value)
    assert "NNN_name.sql" in str(raised.value)


def test_discover_rejects_version_zero(tmp_path: Path) -> None:
    write(tmp_path, "000_nothing.sql")

    with pytest.raises(MigrationError, match=r"000_nothing\.sql"):
        discover(tmp_path)


def test_discover_rejects_duplicate_version(tmp_path: Path) -> None:
    write(tmp_path, "001_first.sql")
    write(tmp_path, "0001_again.sql")

    with pytest.raises(MigrationError, match="both have version 1") as raised:
        discover(tmp_path)
    assert "001_first.sql" in str(raised.value)
    assert "0001_again.sql" in str(raised.value)


def test_checksum_is_sha256_of_content(tmp_path: Path) -> None:
    path = write(tmp_path, "001_first.sql", "create table a (id int);\n")

    assert checksum(path) == hashlib.sha256(b"create table a (id int);\n").hexdigest()
    assert discover(tmp_path)[0].checksum == checksum(path)


def test_checksum_ignores_crlf(tmp_path: Path) -> None:
    unix = tmp_path / "unix.sql"
    windows = tmp_path / "windows.sql"
    unix.write_bytes(b"create table a (id int);\nselect 1;\n")
    windows.write_bytes(b"create table a (id int);\r\nselect 1;\r\n")

    assert checksum(unix) == checksum(windows)


def test_checksum_changes_with_content(tmp_path: Path) -> None:
    path = write(tmp_path, "001_first.sql", "create table a (id int);\n")
    before = checksum(path)
    path.write_text("create table a (id bigint);\n")

    assert checksum(path) != before


def test_read_sql_drops_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "001_first.sql").write_bytes(b"\xef\xbb\xbfselect 1;\n")

    assert discover(tmp_path)[0].read_sql() == "select 1;\n"


def test_read_sql_rejects_invalid_utf8(tmp_path: Path) -> None:
    (tmp_path / "001_first.sql").write_bytes(b"select '\xff';\n")

    with pytest.raises(MigrationError, match=r"001_first\.sql is not valid UTF-8"):
        discover(tmp_path)[0].read_sql()


def test_project_migrations_are_valid() -> None:
    migrations = discover(PROJECT / "sql")

    assert migrations[0].filename == "001_initial_schema.sql"
    assert [migration.version for migration in migrations] == list(range(1, len(migrations) + 1))
    for migration in migrations:
        text = migration.read_sql().lower()
        assert "\\connect" not in text
        assert "begin;" not in text
        assert "commit;" not in text


def test_compare_sorts_pending(tmp_path: Path) -> None:
    write(tmp_path, "001_first.sql")
    write(tmp_path, "002_second.sql")
    migrations = discover(tmp_path)

    result = compare(migrations, [applied_row(migrations[0])])

    assert result.pending == [migrations[1]]
    assert result.changed == []
    assert result.missing == []
    assert result.problems() == []
    assert result.next_version == 3


def test_compare_reports_changed_file(tmp_path: Path) -> None:
    write(tmp_path, "001_first.sql")
    migrations = discover(tmp_path)

    result = compare(migrations, [applied_row(migrations[0], digest="0" * 64)])

    assert result.changed == [(migrations[0], result.applied[0])]
    assert result.pending == []
    assert len(result.problems()) == 1
    assert str(tmp_path / "001_first.sql") in result.problems()[0]
    assert "002_<name>.sql" in result.problems()[0]
    assert "2026-01-02 03:04:05" in result.problems()[0]


def test_compare_reports_missing_file(tmp_path: Path) -> None:
    write(tmp_path, "001_first.sql")
    migrations = discover(tmp_path)
    missing_row = AppliedMigration(2, "second", "a" * 64, datetime(2026, 1, 2, tzinfo=UTC))

    result = compare(migrations, [applied_row(migrations[0]), missing_row])

    assert result.missing == [missing_row]
    assert result.next_version == 3
    assert "002_second.sql" in result.problems()[0]
    assert "missing" in result.problems()[0]
