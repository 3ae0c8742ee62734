"""SMTP side of the mail catcher: an aiosmtpd handler that stores every message."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP

from localaws.errors import ToolkitError
from localaws.mail.store import MessageStore

logger = logging.getLogger(__name__)

# Size of the DATA section, after base64 encoding of attachments. aiosmtpd
# replies 552 to a larger message.
MAX_MESSAGE_BYTES = 25 * 1024 * 1024
SERVER_HOSTNAME = "localaws"


class StoringHandler:
    """aiosmtpd handler that accepts every recipient and stores each message."""

    def __init__(self, store: MessageStore) -> None:
        self._store = store

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        """Store the message and reply 250, or 451 if the store fails."""
        raw = envelope.original_content
        if raw is None:
            content = envelope.content
            raw = content.encode("utf-8") if isinstance(content, str) else content or b""
        recipients: list[str] = list(envelope.rcpt_tos)
        try:
            message = await asyncio.to_thread(
                self._store.add,
                envelope.mail_from or "",
                recipients,
                session.host_name or "",
                raw,
            )
        except ToolkitError as error:
            logger.error(
                "Rejected a message from %s to %d recipient(s): %s",
                envelope.mail_from,
                len(recipients),
                error,
            )
            return "451 Requested action aborted: the message store failed"
        except Exception:
            # aiosmtpd would reply 500 with the exception text and log nothing here.
            logger.exception(
                "Failed to store a message from %s to %d recipient(s)",
                envelope.mail_from,
                len(recipients),
            )
            return "451 Requested action aborted: local error in processing"

        logger.info(
            "Received message %s from %s to %d recipient(s), %d bytes",
            message.id,
            message.mail_from,
            len(recipients),
            len(raw),
        )
        return f"250 Message accepted as {message.id}"


async def start_smtp_server(store: MessageStore, host: str, port: int) -> asyncio.Server:
    """Listen for SMTP on `host`:`port` in the running event loop.

    The server accepts SMTPUTF8 and 8BITMIME and messages up to
    `MAX_MESSAGE_BYTES`. Raises `OSError` if the address cannot be bound.
    """
    loop = asyncio.get_running_loop()
    handler = StoringHandler(store)

    def create_protocol() -> SMTP:
        return SMTP(
            handler,
            hostname=SERVER_HOSTNAME,
            enable_SMTPUTF8=True,
            decode_data=False,
            data_size_limit=MAX_MESSAGE_BYTES,
            loop=loop,
        )

    return await loop.create_server(create_protocol, host, port)
