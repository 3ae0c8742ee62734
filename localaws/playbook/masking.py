"""Replace secret argument values in everything the engine reports."""

from __future__ import annotations

import re
from typing import Any

from localaws.playbook.modules.base import MASK

# Shorter values would mask unrelated text, such as every "1" in a message.
MIN_SECRET_LENGTH = 4
_SENSITIVE_KEY = re.compile(r"pass|secret|token|key|credential|private", re.IGNORECASE)


class Masker:
    """The secret values seen so far in a run, and the means to hide them in text and data."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, value: Any) -> None:
        """Remember a secret argument's rendered value; lists add each item.

        In a mapping only the values under sensitive keys (password, secret,
        token, key, credential) are secrets. The others, such as a host or a
        port beside a password, would otherwise mask the same text everywhere.
        """
        if isinstance(value, dict):
            for key, item in value.items():
                if _SENSITIVE_KEY.search(str(key)):
                    self.add(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self.add(item)
        elif value is not None and not isinstance(value, bool):
            text = str(value)
            if len(text) >= MIN_SECRET_LENGTH:
                self._secrets.add(text)

    def text(self, text: str) -> str:
        """Return `text` with every known secret replaced by the mask, longest secrets first."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def data(self, value: Any) -> Any:
        """Return a copy of `value` with every string inside it masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.data(key): self.data(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(item) for item in value]
        if value is not None and not isinstance(value, (bool, int, float)):
            return self.text(str(value))
        if isinstance(value, (int, float)) and not isinstance(value, bool) and str(value) in self._secrets:
            return MASK
        return value
