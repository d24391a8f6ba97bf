"""The backup archive: one tar.gz holding ``manifest.json`` and the files it lists with their sha256.

A restore trusts nothing in the archive until every listed file matched its checksum and size,
and nothing unlisted was found: a truncated upload or a hand-edited dump is refused before any
service is touched. Extraction goes through tarfile's ``data`` filter, so a crafted member can
neither escape the target directory nor plant links or device files.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MANIFEST_NAME = "manifest.json"
_CHUNK = 1 << 20


class ArchiveError(Exception):
    """The archive is unreadable, incomplete or tampered with; nothing was restored."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileEntry(_Frozen):
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class PostgresSection(_Frozen):
    database: str
    server_version: str
    pg_dump_version: str
    dump_file: str
    tables: dict[str, int]
    vector_dims: list[int]


class RedisSection(_Frozen):
    db: int
    server_version: str
    export_file: str
    patterns: list[str]
    keys: int
    by_type: dict[str, int]


class RecoveryPartition(_Frozen):
    file: str
    part_index: int
    part_count: int
    executions: int
    last_worker_count: int | None
    snapshots: int


class RecoverySection(_Frozen):
    source_dir: str
    bytewax_version: str
    partitions: list[RecoveryPartition]

    @property
    def missing_indices(self) -> list[int]:
        """Partition indices of the set that this archive does not hold (another pod's volume)."""
        if not self.partitions:
            return []
        count = self.partitions[0].part_count
        return sorted(set(range(count)) - {p.part_index for p in self.partitions})


class Manifest(_Frozen):
    format: Literal["tgstream-backup"] = "tgstream-backup"
    format_version: Literal[1] = 1
    created_at: datetime
    tgstream_version: str
    files: list[FileEntry]
    postgres: PostgresSection | None
    redis: RedisSection | None
    recovery: RecoverySection | None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(root: Path, path: Path) -> FileEntry:
    return FileEntry(
        path=path.relative_to(root).as_posix(), sha256=sha256_file(path), bytes=path.stat().st_size
    )


def write_archive(staging: Path, manifest: Manifest, destination: Path) -> Path:
    """Pack ``staging`` (manifest first) into ``destination`` atomically: temp name, fsync, rename."""
    (staging / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    partial = destination.with_name(destination.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        tar.add(staging / MANIFEST_NAME, arcname=MANIFEST_NAME)
        for entry in manifest.files:
            tar.add(staging / entry.path, arcname=entry.path, recursive=False)
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, destination)
    return destination


def extract_verified(archive: Path, target: Path) -> Manifest:
    """Extract ``archive`` into ``target`` and return its manifest only if every checksum matches."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(target, filter="data")
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"{archive} is not a readable tgstream backup: {exc}") from exc
    manifest_path = target / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ArchiveError(f"{archive} has no {MANIFEST_NAME}: not a tgstream backup")
    try:
        manifest = Manifest.model_validate_json(manifest_path.read_bytes())
    except ValidationError as exc:
        raise ArchiveError(f"{archive}: {MANIFEST_NAME} is malformed: {exc.errors()[0]['msg']}") from exc
    problems = verify_files(target, manifest)
    if problems:
        raise ArchiveError(
            f"{archive} failed verification, refusing to restore anything: " + "; ".join(problems)
        )
    return manifest


def verify_files(root: Path, manifest: Manifest) -> list[str]:
    """Every listed file present with its size and sha256, and no file the manifest does not list."""
    problems: list[str] = []
    listed = {entry.path for entry in manifest.files}
    for entry in manifest.files:
        path = root / entry.path
        if not path.is_file():
            problems.append(f"{entry.path} is missing")
        elif path.stat().st_size != entry.bytes:
            problems.append(f"{entry.path} has {path.stat().st_size} bytes, manifest says {entry.bytes}")
        elif sha256_file(path) != entry.sha256:
            problems.append(f"{entry.path} sha256 mismatch")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative != MANIFEST_NAME and relative not in listed:
            problems.append(f"{relative} is not listed in the manifest")
    return problems


def archive_name(created_at: datetime) -> str:
    """``tgstream-backup-20261125T091500Z.tar.gz``: sorts by time, safe in every filesystem."""
    return f"tgstream-backup-{created_at.strftime('%Y%m%dT%H%M%SZ')}.tar.gz"
