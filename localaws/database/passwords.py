"""SCRAM-SHA-256 password secrets in the format PostgreSQL stores in pg_authid.

The admin steps send PostgreSQL a secret computed here instead of the
password, so the password never reaches the server, its statement log or
psql's error output. The same code checks whether a stored secret matches a
password, which makes setting the password idempotent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import stringprep
import unicodedata

# PostgreSQL's iteration count. PostgreSQL 10 to 15 always use it, and PostgreSQL 16 made
# it the default of the scram_iterations setting.
SCRAM_ITERATIONS = 4096
SALT_BYTES = 16


def saslprep(password: str) -> str:
    """Normalise a password with SASLprep (RFC 4013) the way PostgreSQL does.

    PostgreSQL (src/common/saslprep.c) leaves ASCII passwords unchanged and
    uses the password as given when SASLprep rejects it, for example because
    it contains a control character, so this function does the same.
    """
    if password.isascii():
        return password

    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in password
        if not stringprep.in_table_b1(char)
    )
    # PostgreSQL checks the prohibited and bidirectional rules on the mapped
    # characters before normalisation, so this does too.
    if not mapped or any(_prohibited(char) for char in mapped):
        return password
    right_to_left = [stringprep.in_table_d1(char) for char in mapped]
    if any(right_to_left):
        if any(stringprep.in_table_d2(char) for char in mapped):
            return password
        if not (right_to_left[0] and right_to_left[-1]):
            return password
    return unicodedata.normalize("NFKC", mapped)


def _prohibited(char: str) -> bool:
    return (
        stringprep.in_table_c12(char)
        or stringprep.in_table_c21_c22(char)
        or stringprep.in_table_c3(char)
        or stringprep.in_table_c4(char)
        or stringprep.in_table_c5(char)
        or stringprep.in_table_c6(char)
        or stringprep.in_table_c7(char)
        or stringprep.in_table_c8(char)
        or stringprep.in_table_c9(char)
        or stringprep.in_table_a1(char)
    )


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode("utf-8"), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return stored_key, server_key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def scram_secret(
    password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
) -> str:
    """Compute the SCRAM-SHA-256 secret of `password` with a random salt unless one is given.

    The format is `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`,
    all base64, which `CREATE ROLE ... PASSWORD` stores as given.
    """
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    stored_key, server_key = _keys(password, salt, iterations)
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def secret_matches(stored: str | None, password: str) -> bool:
    """Return whether a pg_authid.rolpassword value is the SCRAM-SHA-256 secret of `password`.

    An MD5 secret or a missing one never matches, because scram-sha-256
    authentication (the private cluster's and Debian's default for TCP) cannot
    use it.
    """
    if not stored or not stored.startswith("SCRAM-SHA-256$"):
        return False
    try:
        _, parameters, keys = stored.split("$")
        iterations_text, salt_text = parameters.split(":")
        stored_key_text, server_key_text = keys.split(":")
        salt = base64.b64decode(salt_text, validate=True)
        expected = (
            base64.b64decode(stored_key_text, validate=True),
            base64.b64decode(server_key_text, validate=True),
        )
        iterations = int(iterations_text)
    except ValueError:
        return False
    actual = _keys(password, salt, iterations)
    stored_key_matches = hmac.compare_digest(actual[0], expected[0])
    server_key_matches = hmac.compare_digest(actual[1], expected[1])
    return stored_key_matches and server_key_matches
