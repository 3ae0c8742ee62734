"""Format log records as one JSON object per line, which CloudWatch Logs Insights can query by field."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

# Attributes that the Lambda Python runtime, or a caller's `extra=`, may set on a record.
CONTEXT_ATTRIBUTES = ("aws_request_id", "function_name", "user_id", "route")


class JsonFormatter(logging.Formatter):
    """Formatter that writes time, level, logger, message and any context attributes as JSON."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a single-line JSON object."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for attribute in CONTEXT_ATTRIBUTES:
            value = getattr(record, attribute, None)
            if value is not None:
                entry[attribute] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str | None = None) -> None:
    """Install JsonFormatter on the root logger's handlers and set the level, LOG_LEVEL by default.

    Lambda's runtime has already installed a handler on the root logger, so that handler is reused
    instead of adding a second one that would print every line twice.
    """
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())

    name = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
    if name not in logging.getLevelNamesMapping():
        raise ValueError(f"Invalid log level {name!r}: expected DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    root.setLevel(name)
