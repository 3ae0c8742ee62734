"""The time rotation tasks take as now, which the ROTATION_CLOCK setting can move for tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

OFFSET_PATTERN = re.compile(r"^([+-])((?:\d+[dhms])+)$")
OFFSET_PART = re.compile(r"(\d+)([dhms])")
UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_clock(value: str) -> datetime | timedelta | None:
    """Parse a ROTATION_CLOCK value: None for the real time, a fixed time, or an offset from it.

    Raises ValueError, naming the accepted forms, when the value matches none of them.
    """
    text = value.strip()
    if not text:
        return None
    match = OFFSET_PATTERN.match(text)
    if match:
        seconds = sum(int(number) * UNIT_SECONDS[unit] for number, unit in OFFSET_PART.findall(match[2]))
        return timedelta(seconds=seconds if match[1] == "+" else -seconds)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("expected an ISO 8601 timestamp such as 2030-01-01T00:00:00Z or an offset "
                         "such as +3d, +1d12h or -30m") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def now(clock_setting: str = "") -> datetime:
    """Return the current time in UTC, as ROTATION_CLOCK sets it."""
    parsed = parse_clock(clock_setting)
    real = datetime.now(UTC)
    if parsed is None:
        return real
    if isinstance(parsed, timedelta):
        return real + parsed
    return parsed.astimezone(UTC)
