"""Salted, keyed hashing of Telegram ids for analytics and logs.

Telegram ids are small integers (user ids are below 2**53), so a plain hash is reversed by
enumerating them; a *keyed* BLAKE2b with a secret salt cannot be, by anyone without the salt. The
same (value, salt) always gives the same 16 hex characters (64 bits), so analytics can still count
distinct users and join events of one chat. Rotating the salt unlinks all earlier data on purpose.

>>> hash_id(12345, b"salt") == hash_id(12345, b"salt")
True
>>> len(hash_id(12345, b"salt")), hash_id(12345, b"salt") != hash_id(12345, b"other")
(16, True)
"""

from __future__ import annotations

import hashlib

_MAX_KEY = 64  # BLAKE2b's key limit


def _key(salt: bytes) -> bytes:
    if not salt:
        raise ValueError("hash_id needs a non-empty salt: an unsalted id hash is reversible")
    return salt if len(salt) <= _MAX_KEY else hashlib.blake2b(salt).digest()


def hash_id(value: int, salt: bytes) -> str:
    """16 hex characters identifying ``value`` under ``salt``; not reversible without the salt."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"hash_id expects an int id, got {type(value).__name__}")
    return hashlib.blake2b(
        str(value).encode(), key=_key(salt), digest_size=8, person=b"tgstream-id"
    ).hexdigest()
