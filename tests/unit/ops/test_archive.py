"""The archive refuses anything it cannot prove intact, before a single byte is restored."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tgstream.ops.archive import (
    MANIFEST_NAME,
    ArchiveError,
    Manifest,
    archive_name,
    extract_verified,
    file_entry,
    write_archive,
)

CREATED = datetime(2026, 11, 25, 9, 15, 0, tzinfo=UTC)


def _staged(tmp_path: Path) -> tuple[Path, Manifest]:
    staging = tmp_path / "staging"
    (staging / "recovery").mkdir(parents=True)
    (staging / "postgres.dump").write_bytes(b"PGDMP" + bytes(range(256)) * 40)
    (staging / "redis.jsonl").write_text('{"key": "conversation:1"}\n')
    (staging / "recovery" / "part-0.sqlite3").write_bytes(b"SQLite format 3\x00" + b"\x01" * 4000)
    files = [file_entry(staging, p) for p in sorted(staging.rglob("*")) if p.is_file()]
    manifest = Manifest(
        created_at=CREATED, tgstream_version="0.1.0", files=files, postgres=None, redis=None, recovery=None
    )
    return staging, manifest


def _repack(source: Path, destination: Path, mutate: dict[str, bytes | None]) -> None:
    """Copy an archive member by member, replacing (bytes) or dropping (None) the named ones."""
    with tarfile.open(source, "r:gz") as old, tarfile.open(destination, "w:gz") as new:
        for member in old.getmembers():
            data = old.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            if member.name in mutate:
                if mutate[member.name] is None:
                    continue
                data = mutate[member.name]  # type: ignore[assignment]
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))


def test_round_trip_restores_every_file_byte_for_byte(tmp_path: Path) -> None:
    staging, manifest = _staged(tmp_path)
    archive = write_archive(staging, manifest, tmp_path / archive_name(CREATED))
    assert archive.name == "tgstream-backup-20261125T091500Z.tar.gz"
    assert not archive.with_name(archive.name + ".partial").exists()
    with tarfile.open(archive) as tar:
        assert tar.getnames()[0] == MANIFEST_NAME

    restored = extract_verified(archive, tmp_path / "out")
    assert restored == manifest
    for entry in manifest.files:
        assert (tmp_path / "out" / entry.path).read_bytes() == (staging / entry.path).read_bytes()


@pytest.mark.parametrize(
    ("mutation", "complaint"),
    [
        ({"postgres.dump": b"PGDMP tampered"}, "postgres.dump has"),
        ({"redis.jsonl": b'{"key": "conversation:2"}\n'}, "redis.jsonl sha256 mismatch"),
        ({"recovery/part-0.sqlite3": None}, "recovery/part-0.sqlite3 is missing"),
    ],
)
def test_tampered_or_incomplete_archives_are_refused(
    tmp_path: Path, mutation: dict[str, bytes | None], complaint: str
) -> None:
    staging, manifest = _staged(tmp_path)
    good = write_archive(staging, manifest, tmp_path / "good.tar.gz")
    bad = tmp_path / "bad.tar.gz"
    _repack(good, bad, mutation)
    with pytest.raises(ArchiveError, match="refusing to restore") as caught:
        extract_verified(bad, tmp_path / "out")
    assert complaint in str(caught.value)


def test_an_unlisted_extra_file_is_refused(tmp_path: Path) -> None:
    staging, manifest = _staged(tmp_path)
    good = write_archive(staging, manifest, tmp_path / "good.tar.gz")
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(good, "r:gz") as old, tarfile.open(bad, "w:gz") as new:
        for member in old.getmembers():
            new.addfile(member, old.extractfile(member))
        info = tarfile.TarInfo("recovery/part-9.sqlite3")
        info.size = 3
        new.addfile(info, io.BytesIO(b"xyz"))
    with pytest.raises(ArchiveError, match=r"part-9\.sqlite3 is not listed"):
        extract_verified(bad, tmp_path / "out")


def test_path_traversal_members_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"gotcha"[:4]))
    with pytest.raises(ArchiveError, match="not a readable tgstream backup"):
        extract_verified(evil, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()


def test_not_an_archive_and_no_manifest_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"definitely not gzip")
    with pytest.raises(ArchiveError, match="not a readable tgstream backup"):
        extract_verified(junk, tmp_path / "a")
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(ArchiveError, match=r"no manifest\.json"):
        extract_verified(empty, tmp_path / "b")


def test_a_malformed_manifest_is_refused(tmp_path: Path) -> None:
    staging, manifest = _staged(tmp_path)
    good = write_archive(staging, manifest, tmp_path / "good.tar.gz")
    bad = tmp_path / "bad.tar.gz"
    _repack(good, bad, {MANIFEST_NAME: b'{"format": "something-else"}'})
    with pytest.raises(ArchiveError, match=r"manifest\.json is malformed"):
        extract_verified(bad, tmp_path / "out")
