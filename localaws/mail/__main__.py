"""Run the mail catcher: SMTP and MailHog's HTTP API in one asyncio process.

    python -m localaws.mail --bind 127.0.0.1 --smtp-port 1025 --http-port 8025 --store-dir PATH

Stops cleanly with exit status 0 on SIGTERM or SIGINT. Exits with status 1 and
a message on standard error if a port is in use or the store cannot be opened.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from localaws.errors import PortInUseError, ServiceError, ToolkitError
from localaws.mail.api import create_app
from localaws.mail.smtp import start_smtp_server
from localaws.mail.store import MessageStore

logger = logging.getLogger("localaws.mail")

# Seconds that open HTTP and SMTP connections get to finish after a stop signal.
SHUTDOWN_GRACE_SECONDS = 0.5

T = TypeVar("T")


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m localaws.mail",
        description="Catch mail over SMTP and serve it through MailHog's HTTP API.",
    )
    parser.add_argument("--bind", default="127.0.0.1", help="IP address to listen on (default: %(default)s)")
    parser.add_argument("--smtp-port", type=int, default=1025, help="SMTP port (default: %(default)s)")
    parser.add_argument("--http-port", type=int, default=8025, help="HTTP API port (default: %(default)s)")
    parser.add_argument(
        "--store-dir",
        type=Path,
        required=True,
        help="directory of the message database, created if missing",
    )
    return parser.parse_args(argv)


async def serve(bind: str, smtp_port: int, http_port: int, store_dir: Path) -> None:
    """Serve SMTP and HTTP until SIGTERM or SIGINT arrives."""
    store = MessageStore(store_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, _request_stop, stop, signal_number)

    smtp_server: asyncio.Server | None = None
    runner = web.AppRunner(create_app(store), shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
    try:
        smtp_server = await _bind(
            "SMTP", "--smtp-port", bind, smtp_port, start_smtp_server(store, bind, smtp_port)
        )
        await runner.setup()
        site = web.TCPSite(runner, bind, http_port)
        await _bind("HTTP", "--http-port", bind, http_port, site.start())

        logger.info(
            "Mail catcher started: SMTP on %s:%d, HTTP on http://%s:%d/, store %s",
            bind,
            _bound_port(smtp_server.sockets[0].getsockname()),
            bind,
            _bound_port(runner.addresses[0]),
            store.path,
        )
        await stop.wait()
    finally:
        if smtp_server is not None:
            smtp_server.close()
        await runner.cleanup()
        store.close()
    logger.info("Mail catcher stopped")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the mail catcher and return the process exit status."""
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiosmtpd logs every SMTP command at INFO; the handler logs one line per message.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(arguments.bind, arguments.smtp_port, arguments.http_port, arguments.store_dir))
    except ToolkitError as error:
        logger.error("%s", error)
        return 1
    return 0


def _request_stop(stop: asyncio.Event, signal_number: int) -> None:
    logger.info("Received %s, stopping", signal.Signals(signal_number).name)
    stop.set()


async def _bind(service: str, option: str, host: str, port: int, starting: Awaitable[T]) -> T:
    try:
        return await starting
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"Cannot start the {service} server: port {port} on {host} is in use by another"
                f" process. Stop that process or pass {option} with a free port."
            ) from error
        raise ServiceError(
            f"Cannot start the {service} server on {host}:{port}: {error.strerror}."
            f" Check --bind and {option}."
        ) from error


def _bound_port(address: object) -> int:
    """Return the port of a socket address (IPv4 or IPv6 tuple)."""
    if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
        return address[1]
    raise ServiceError(f"Unexpected listening address {address!r}.")


if __name__ == "__main__":
    sys.exit(main())
