"""HS256 JSON Web Tokens (RFC 7519), enough to check that rotation keeps issued tokens valid.

Built on hmac and hashlib so the toolkit needs no JWT package for two operations.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any

HEADER = {"alg": "HS256", "typ": "JWT"}


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: str, signing_input: str) -> str:
    return _encode(hmac.digest(key.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256))


def sign(claims: dict[str, Any], key: str) -> str:
    """Return a compact HS256 token of `claims` signed with `key`."""
    header = _encode(json.dumps(HEADER, separators=(",", ":")).encode())
    payload = _encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{_signature(key, signing_input)}"


def verify(token: str, keys: Iterable[str]) -> dict[str, Any] | None:
    """Return the token's claims when one of `keys` verifies its HS256 signature, else None.

    Only the signature and the algorithm are checked, not `exp` or other claims.
    """
    try:
        header, payload, signature = token.split(".")
        if json.loads(_decode(header)).get("alg") != "HS256":
            return None
        claims = json.loads(_decode(payload))
    except (ValueError, AttributeError):
        return None
    signing_input = f"{header}.{payload}"
    if any(hmac.compare_digest(_signature(key, signing_input), signature) for key in keys):
        return claims if isinstance(claims, dict) else None
    return None
