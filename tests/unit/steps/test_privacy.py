from __future__ import annotations

import hashlib

import pytest

from tgstream.steps.privacy import hash_id

SALT = b"unit-test-salt"


def test_deterministic_sixteen_hex_chars() -> None:
    digest = hash_id(987_654_321, SALT)
    assert digest == hash_id(987_654_321, SALT)
    assert len(digest) == 16
    int(digest, 16)


def test_different_ids_and_salts_differ() -> None:
    ids = [-1001234567890, -1, 0, 1, 2, 10**15, 2**53]
    assert len({hash_id(i, SALT) for i in ids}) == len(ids)
    assert hash_id(1, SALT) != hash_id(1, b"another-salt")


def test_not_an_unkeyed_hash_of_the_id() -> None:
    value = 424242
    plain = {
        hashlib.blake2b(str(value).encode(), digest_size=8).hexdigest(),
        hashlib.sha256(str(value).encode()).hexdigest()[:16],
        hashlib.md5(str(value).encode()).hexdigest()[:16],
    }
    assert hash_id(value, SALT) not in plain


def test_long_salts_are_accepted_and_still_matter() -> None:
    long_a, long_b = b"a" * 100, b"a" * 99 + b"b"
    assert hash_id(5, long_a) != hash_id(5, long_b)


def test_empty_salt_and_non_int_are_refused() -> None:
    with pytest.raises(ValueError, match="salt"):
        hash_id(1, b"")
    with pytest.raises(TypeError):
        hash_id("1", SALT)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash_id(True, SALT)
