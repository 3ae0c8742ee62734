"""Tasks that read and clear the mail catcher."""

from __future__ import annotations

import email.header
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from localaws.collections._base import load_settings, print_json, reports_errors, say
from localaws.errors import ConfigError, ToolkitError
from localaws.mail.client import MailCatcherClient


def _client(c: Context) -> MailCatcherClient:
    return MailCatcherClient(load_settings(c).mail_api_url)


def _header(message: dict[str, Any], name: str) -> str:
    values = message.get("Content", {}).get("Headers", {}).get(name) or [""]
    return str(email.header.make_header(email.header.decode_header(values[0])))


def _print_messages(messages: list[dict[str, Any]]) -> None:
    if not messages:
        say("no messages")
        return
    for message in messages:
        recipients = ", ".join(f"{to['Mailbox']}@{to['Domain']}" for to in message.get("To") or [])
        say(f"{message['Created'][:19]}  {_header(message, 'From'):<32}  to {recipients:<32}  "
            f"{_header(message, 'Subject')}")
    say(f"{len(messages)} {'message' if len(messages) == 1 else 'messages'}")


@task(help={"limit": "Maximum number of messages to show, newest first; default 20.",
            "json": "Print MailHog's JSON objects."})
@reports_errors
def list_(c: Context, limit: int = 20, json: bool = False) -> None:
    """List the messages the mail catcher holds, newest first."""
    messages = _client(c).list_messages(limit)
    if json:
        print_json(messages)
    else:
        _print_messages(messages)


@task(help={
    "to": "Match the recipient address (substring).",
    "from_": "Match the sender address (substring).",
    "containing": "Match anywhere in the raw message.",
    "json": "Print MailHog's JSON objects.",
})
@reports_errors
def search(c: Context, to: str | None = None, from_: str | None = None, containing: str | None = None,
           json: bool = False) -> None:
    """Search messages by recipient, sender or content, as MailHog's search does."""
    criteria = {"to": to, "from": from_, "containing": containing}
    chosen = {kind: query for kind, query in criteria.items() if query}
    if len(chosen) != 1:
        raise ConfigError("give exactly one of --to, --from or --containing.")
    [(kind, query)] = chosen.items()
    messages = _client(c).search(kind, query)
    if json:
        print_json(messages)
    else:
        _print_messages(messages)


@task
@reports_errors
def clear(c: Context) -> None:
    """Delete every message the mail catcher holds."""
    _client(c).delete_all()
    say("all messages deleted")


@task(help={"to": "Recipient address whose latest code to print."})
@reports_errors
def code(c: Context, to: str) -> None:
    """Print the latest 6-digit code sent to an address, for confirming sign-ups."""
    found = _client(c).latest_code(to)
    if found is None:
        raise ToolkitError(f"no 6-digit code found in mail to {to}. Check the address with "
                           "`invoke email.list`, or wait for the mail and run again.")
    say(found)


collection = Collection("email", search, clear, code)
collection.add_task(list_, name="list")
