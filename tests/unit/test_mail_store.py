"""Tests of the mail catcher's SQLite message store."""

from __future__ import annotations

import stat
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from localaws.errors import ConfigError
from localaws.mail.store import DATABASE_NAME, MessageStore, StoreError


def make_raw(
    subject: str = "Hello",
    sender: str = "Ann <ann@example.com>",
    to: str = "bob@example.com",
    body: str = "Plain body",
    cc: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc is not None:
        message["Cc"] = cc
    message["Subject"] = subject
    message.set_content(body)
    return message.as_bytes(policy=SMTP)


@pytest.fixture
def store(tmp_path: Path) -> MessageStore:
    return MessageStore(tmp_path / "mail")


def test_store_file_mode_is_0600(store: MessageStore) -> None:
    mode = stat.S_IMODE(store.path.stat().st_mode)

    assert store.path.name == DATABASE_NAME
    assert mode == 0o600


def test_add_then_get_round_trips(store: MessageStore) -> None:
    raw = make_raw()

    added = store.add("ann@example.com", ["bob@example.com", "eve@example.com"], "client", raw)
    loaded = store.get(added.id)

    assert added.id.endswith("@localaws")
    assert loaded == added
    assert loaded is not None
    assert loaded.raw == raw
    assert loaded.rcpt_tos == ("bob@example.com", "eve@example.com")
    assert loaded.helo == "client"
    assert loaded.created.tzinfo is not None


def test_get_unknown_id_returns_none(store: MessageStore) -> None:
    assert store.get("missing@localaws") is None


def test_list_is_newest_first_and_paged(store: MessageStore) -> None:
    ids = [store.add("a@example.com", ["b@example.com"], "h", make_raw(f"n{i}")).id for i in range(5)]

    assert [m.id for m in store.list_messages(0, 50)] == ids[::-1]
    assert [m.id for m in store.list_messages(1, 2)] == [ids[3], ids[2]]
    assert store.list_messages(10, 5) == []
    assert store.count() == 5


def test_messages_survive_reopen(tmp_path: Path) -> None:
    first = MessageStore(tmp_path / "mail")
    added = first.add("a@example.com", ["b@example.com"], "h", make_raw())
    first.close()

    second = MessageStore(tmp_path / "mail")

    assert second.get(added.id) == added
    assert second.count() == 1


@pytest.mark.parametrize(
    ("kind", "query", "expected"),
    [
        ("to", "BOB@EXAMPLE", ["bob"]),
        ("to", "carol@example.com", ["carol"]),
        ("to", "Zoë", ["bob"]),
        ("to", "envelope-only@example.com", ["carol"]),
        ("from", "ann@", ["bob", "carol"]),
        ("from", "Mallory", ["carol"]),
        ("from", "bob@example.com", []),
        ("containing", "SECRET WORD", ["carol"]),
        ("containing", "école", ["bob"]),
        ("containing", "Subject: For Bob", ["bob"]),
    ],
)
def test_search_matches_case_insensitively(
    store: MessageStore, kind: str, query: str, expected: list[str]
) -> None:
    ids = {
        "bob": store.add(
            "ann@example.com",
            ["bob@example.com"],
            "h",
            make_raw("For Bob", to="Zoë <bob@example.com>", body="Bienvenue à l\u2019école"),
        ).id,
        "carol": store.add(
            "ann@example.com",
            ["envelope-only@example.com"],
            "h",
            make_raw(
                "For Carol",
                sender="Mallory <ann@example.com>",
                to="other@example.com",
                cc="Carol@Example.com",
                body="the secret word",
            ),
        ).id,
    }

    found, total = store.search(kind, query)

    assert [m.id for m in found] == [ids[name] for name in ["carol", "bob"] if name in expected]
    assert total == len(expected)


def test_search_pages_and_counts_all_matches(store: MessageStore) -> None:
    ids = [store.add("a@example.com", ["x@example.com"], "h", make_raw()).id for _ in range(4)]

    found, total = store.search("to", "x@example.com", start=1, limit=2)

    assert [m.id for m in found] == [ids[2], ids[1]]
    assert total == 4


def test_search_rejects_unknown_kind(store: MessageStore) -> None:
    with pytest.raises(ConfigError, match="Invalid search kind 'subject'"):
        store.search("subject", "x")


def test_delete_one_and_all(store: MessageStore) -> None:
    first = store.add("a@example.com", ["b@example.com"], "h", make_raw())
    store.add("a@example.com", ["b@example.com"], "h", make_raw())
    store.add("a@example.com", ["b@example.com"], "h", make_raw())

    assert store.delete(first.id) is True
    assert store.delete(first.id) is False
    assert store.get(first.id) is None
    assert store.delete_all() == 2
    assert store.count() == 0


def test_store_keeps_undecodable_bytes(store: MessageStore) -> None:
    raw = b"Subject: broken\r\n\r\n\xff\xfe latin-1 \xe9\r\n"

    added = store.add("", ["b@example.com"], "h", raw)

    stored = store.get(added.id)
    assert stored is not None
    assert stored.raw == raw
    assert stored.mail_from == ""


def test_store_rejects_file_that_is_not_sqlite(tmp_path: Path) -> None:
    directory = tmp_path / "mail"
    directory.mkdir()
    (directory / DATABASE_NAME).write_bytes(b"this is not a database" * 100)

    with pytest.raises(StoreError, match="--store-dir"):
        MessageStore(directory)
