"""Optional encryption at rest of memory text (``MEMORY_ENCRYPTION_KEY``, a Fernet key).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) rather than pgcrypto: the key never
reaches Postgres, so neither its logs, ``pg_stat_statements`` nor a dump holds it. Ciphertext
is stored with a ``fernet:`` prefix, so rows written before the key was set (plain text) stay
readable and a table can be migrated lazily. What is *not* encrypted: the embedding, which
retrieval needs in clear (it leaks the gist of a memory to someone with the same model), and
facts. Rotation: :class:`MemoryCodec` accepts several keys (first encrypts, all decrypt).

>>> codec = MemoryCodec.from_keys([Fernet.generate_key().decode()])
>>> stored = codec.seal("my cat is Tom")
>>> stored.startswith("fernet:"), codec.open(stored), codec.open("plain row")
(True, 'my cat is Tom', 'plain row')
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "fernet:"


class MemoryKeyError(ValueError):
    """The configured key is not a Fernet key, or a stored memory was sealed with another key."""


class MemoryCodec:
    def __init__(self, fernet: MultiFernet) -> None:
        self._fernet = fernet

    @classmethod
    def from_keys(cls, keys: Sequence[str]) -> MemoryCodec:
        """``keys``: urlsafe base64 32-byte keys (``Fernet.generate_key()``), newest first."""
        if not keys:
            raise MemoryKeyError("MEMORY_ENCRYPTION_KEY is empty")
        try:
            return cls(MultiFernet([Fernet(key.strip().encode()) for key in keys]))
        except ValueError as exc:
            raise MemoryKeyError(
                "MEMORY_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64 bytes), comma-separated"
            ) from exc

    @classmethod
    def from_setting(cls, value: str | None) -> MemoryCodec | None:
        """None (no encryption) when the setting is unset or blank."""
        if not value or not value.strip():
            return None
        return cls.from_keys([part for part in value.split(",") if part.strip()])

    def seal(self, text: str) -> str:
        return PREFIX + self._fernet.encrypt(text.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode("ascii")).decode()
        except InvalidToken as exc:
            raise MemoryKeyError("a memory was encrypted with a key that is not configured") from exc
