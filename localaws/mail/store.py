"""SQLite store of the messages the mail catcher receives.

One file, `messages.sqlite3`, in the store directory contains every message: its
raw bytes as received, the SMTP envelope, the HELO name and the time of
receipt. Messages survive a restart until they are deleted through the API.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from localaws.errors import ConfigError, ServiceError
from localaws.mail.mime import decode_header, decode_message, parse_message, restore_8bit

DATABASE_NAME = "messages.sqlite3"
ID_DOMAIN = "localaws"
SCHEMA_VERSION = 1

SearchKind = Literal["to", "from", "containing"]
SEARCH_KINDS: tuple[SearchKind, ...] = ("to", "from", "containing")

# The *_search columns contain lowercased text built once at insert time, so a
# search never parses stored messages. `to_search` and `from_search` contain the
# envelope addresses and the raw and decoded To/Cc or From header values.
# `content_search` contains the decoded headers and text parts, because a base64
# or quoted-printable body cannot be searched in the raw message.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    helo TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt_tos TEXT NOT NULL,
    raw BLOB NOT NULL,
    to_search TEXT NOT NULL,
    from_search TEXT NOT NULL,
    content_search TEXT NOT NULL
);
"""

_COLUMNS = "id, created, helo, mail_from, rcpt_tos, raw"


class StoreError(ServiceError):
    """The message store cannot be opened, read or written."""


@dataclass(frozen=True)
class StoredMessage:
    """A message as received over SMTP, with its envelope."""

    id: str
    created: datetime
    helo: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


class MessageStore:
    """Thread-safe message store in an SQLite file inside `directory`.

    The API calls the store from worker threads, so one connection is shared
    behind a lock. SQLite serialises writers anyway, and a lock keeps a single
    connection valid across threads.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / DATABASE_NAME
        self._lock = threading.Lock()
        self._connection = _open_database(directory, self.path)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._connection.close()

    def add(self, mail_from: str, rcpt_tos: Sequence[str], helo: str, raw: bytes) -> StoredMessage:
        """Insert a received message and return it with its new ID and time."""
        message = StoredMessage(
            id=f"{uuid.uuid4()}@{ID_DOMAIN}",
            created=datetime.now(UTC),
            helo=helo,
            mail_from=mail_from,
            rcpt_tos=tuple(rcpt_tos),
            raw=raw,
        )
        to_search, from_search, content_search = _search_texts(message)
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO messages (id, created, helo, mail_from, rcpt_tos, raw,"
                " to_search, from_search, content_search)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.id,
                    message.created.isoformat(),
                    message.helo,
                    message.mail_from,
                    "\n".join(message.rcpt_tos),
                    message.raw,
                    to_search,
                    from_search,
                    content_search,
                ),
            )
        return message

    def count(self) -> int:
        """Return the number of stored messages."""
        with self._transaction() as connection:
            row = connection.execute("SELECT COUNT(*) FROM messages").fetchone()
        return int(row[0])

    def list_messages(self, start: int = 0, limit: int = 50) -> list[StoredMessage]:
        """Return up to `limit` messages, newest first, skipping the `start` newest."""
        with self._transaction() as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM messages ORDER BY seq DESC LIMIT ? OFFSET ?",  # noqa: S608
                (limit, start),
            ).fetchall()
        return [_message_from_row(row) for row in rows]

    def search(
        self, kind: str, query: str, start: int = 0, limit: int = 50
    ) -> tuple[list[StoredMessage], int]:
        """Find messages whose recipients, sender or content contain `query`.

        Matching is a case-insensitive substring test. `to` and `from` look at
        the envelope and at the To/Cc or From header, raw and decoded.
        `containing` looks at the raw message and at its decoded headers and
        text parts. Returns the page of matches, newest first, and the total
        number of matches.
        """
        column = _search_column(kind)
        needle = query.lower()
        if column == "content_search":
            condition = "(instr(content_search, :needle) > 0 OR contains_ci(raw, :needle))"
        else:
            condition = f"instr({column}, :needle) > 0"
        parameters = {"needle": needle, "limit": limit, "start": start}
        with self._transaction() as connection:
            total_row = connection.execute(
                f"SELECT COUNT(*) FROM messages WHERE {condition}",  # noqa: S608
                parameters,
            ).fetchone()
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE {condition}"  # noqa: S608
                " ORDER BY seq DESC LIMIT :limit OFFSET :start",
                parameters,
            ).fetchall()
        return [_message_from_row(row) for row in rows], int(total_row[0])

    def get(self, message_id: str) -> StoredMessage | None:
        """Return the message with `message_id`, or None if there is none."""
        with self._transaction() as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE id = ?",  # noqa: S608
                (message_id,),
            ).fetchone()
        return None if row is None else _message_from_row(row)

    def delete(self, message_id: str) -> bool:
        """Delete the message with `message_id` and return whether it existed."""
        with self._transaction() as connection:
            cursor = connection.execute("DELETE FROM messages WHERE id = ?", (message_id,))
        return cursor.rowcount > 0

    def delete_all(self) -> int:
        """Delete every message and return how many were deleted."""
        with self._transaction() as connection:
            cursor = connection.execute("DELETE FROM messages")
        return cursor.rowcount

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with self._connection:
                    yield self._connection
            except sqlite3.Error as error:
                raise StoreError(
                    f"Message store {self.path} failed: {error}. Check that the file is"
                    " readable and writable and the disk is not full, or delete the file"
                    " to start with an empty store."
                ) from error


def _open_database(directory: Path, path: Path) -> sqlite3.Connection:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Create the file before SQLite does, so it never exists with the
        # umask's permissions. SQLite gives its journal files the same mode.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(descriptor)
        os.chmod(path, 0o600)
    except OSError as error:
        raise StoreError(
            f"Cannot create the message store {path}: {error.strerror}."
            " Pass --store-dir with a directory you can write to."
        ) from error

    try:
        connection = sqlite3.connect(path, check_same_thread=False)
        connection.create_function("contains_ci", 2, _contains_ci, deterministic=True)
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            connection.close()
            raise StoreError(
                f"Message store {path} has schema version {version}, but this version of"
                f" localaws reads version {SCHEMA_VERSION}. Delete the file or pass"
                " --store-dir with another directory."
            )
        with connection:
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except sqlite3.DatabaseError as error:
        raise StoreError(
            f"Cannot open the message store {path}: {error}. If the file is not an"
            " SQLite database, move it away or pass --store-dir with another directory."
        ) from error
    return connection


def _contains_ci(haystack: bytes | str | None, needle: str) -> bool:
    if haystack is None:
        return False
    text = haystack.decode("utf-8", errors="replace") if isinstance(haystack, bytes) else haystack
    return needle in text.lower()


def _search_column(kind: str) -> str:
    if kind not in SEARCH_KINDS:
        raise ConfigError(f"Invalid search kind {kind!r}: use one of {', '.join(SEARCH_KINDS)}.")
    return {"to": "to_search", "from": "from_search", "containing": "content_search"}[kind]


def _message_from_row(row: tuple[str, str, str, str, str, bytes]) -> StoredMessage:
    message_id, created, helo, mail_from, rcpt_tos, raw = row
    return StoredMessage(
        id=message_id,
        created=datetime.fromisoformat(created),
        helo=helo,
        mail_from=mail_from,
        rcpt_tos=tuple(rcpt_tos.split("\n")) if rcpt_tos else (),
        raw=bytes(raw),
    )


def _search_texts(message: StoredMessage) -> tuple[str, str, str]:
    parsed = parse_message(message.raw)
    to_parts = [*message.rcpt_tos]
    from_parts = [message.mail_from]
    content_parts: list[str] = []
    for name, raw_value in parsed.raw_items():
        values = [restore_8bit(raw_value), decode_header(parsed, name, raw_value)]
        if name.lower() in ("to", "cc"):
            to_parts.extend(values)
        elif name.lower() == "from":
            from_parts.extend(values)
        content_parts.append(values[1])

    decoded = decode_message(message.raw)
    content_parts.extend(decoded.text_bodies)
    content_parts.extend(decoded.html_bodies)
    return (
        "\n".join(to_parts).lower(),
        "\n".join(from_parts).lower(),
        "\n".join(content_parts).lower(),
    )
