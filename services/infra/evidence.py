"""Content-addressed evidence store on disk: ``<var>/evidence/ab/cdef...`` (SHA-256), size and type limits.

Events keep only the :class:`~domain.execution.evidence.EvidenceRef` (hash, size, name, media type); the bytes
live here, once per content. ``put`` streams the upload to a temporary file in the store while hashing and
counting (refusing as soon as the limit is passed), checks the declared media type against the allowed ones
and, for the common binary types, against the file's leading bytes, then renames it into place atomically.
Putting the same content again stores nothing new.
"""

import contextlib
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa

from domain.errors import DomainError, FieldProblem, InvalidInputError
from domain.execution.evidence import EvidencePolicy, EvidenceRef, file_name_problem

__all__ = ["EVIDENCE_UPLOADERS", "DatabaseEvidenceStore", "EvidenceNotFoundError", "EvidenceStore"]

_CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Leading bytes of the binary types we accept; a declared type with a known signature must match it.
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/tiff": (b"II*\x00", b"MM\x00*"),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
}


class EvidenceNotFoundError(DomainError):
    """No stored file has that SHA-256."""

    title = "Not found"


class EvidenceStore:
    """Files by SHA-256 under ``root`` (e.g. ``settings.var_dir / "evidence"``)."""

    def __init__(self, root: Path | str, policy: EvidencePolicy | None = None) -> None:
        self.root = Path(root)
        self.policy = policy or EvidencePolicy()

    def path_of(self, sha256: str) -> Path:
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            raise InvalidInputError([FieldProblem("sha256", "format", "must be 64 lowercase hex digits")])
        return self.root / sha256[:2] / sha256[2:]

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def put(self, data: bytes | BinaryIO, name: str, media_type: str) -> EvidenceRef:
        """Store a file; returns its reference. Too large, empty, or a type not allowed: InvalidInputError
        naming ``file.size`` / ``file.media_type`` and nothing is stored."""
        problems: list[FieldProblem] = []
        # A name with a path separator is refused, not cut down to its last part: what a person uploads is what
        # every reader sees and saves (api.md, "Text").
        clean = (name or "").strip()
        why = file_name_problem(clean)
        if why is not None:
            problems.append(FieldProblem("file.name", "format", why))
        media = (media_type or "").split(";", 1)[0].strip().lower()
        if media not in self.policy.media_types:
            problems.append(
                FieldProblem(
                    "file.media_type",
                    "media_type",
                    f"{media!r} is not allowed; allowed: {', '.join(self.policy.media_types)}",
                )
            )
        if problems:
            raise InvalidInputError(problems)
        stream: BinaryIO = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=self.root)
        digest, size, head = hashlib.sha256(), 0, b""
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    if size > self.policy.max_bytes:
                        raise InvalidInputError(
                            [
                                FieldProblem(
                                    "file.size",
                                    "max_size",
                                    f"is larger than the limit of {self.policy.max_bytes:,} bytes",
                                )
                            ]
                        )
                    if len(head) < 16:
                        head += chunk[: 16 - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            self.policy.check(size, media)
            signatures = _SIGNATURES.get(media)
            if signatures and not head.startswith(signatures):
                raise InvalidInputError(
                    [FieldProblem("file.media_type", "content", f"the file's content is not {media}")]
                )
            sha = digest.hexdigest()
            final = self.path_of(sha)
            if final.is_file():
                os.unlink(tmp)  # same content already stored: idempotent
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)
                os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return EvidenceRef(sha256=sha, size=size, name=clean, media_type=media)

    def open(self, sha256: str) -> BinaryIO:
        path = self.path_of(sha256)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise EvidenceNotFoundError(f"no evidence with SHA-256 {sha256}") from None

    def get(self, sha256: str) -> bytes:
        with self.open(sha256) as f:
            return f.read()

    def iter_chunks(self, sha256: str, size: int = _CHUNK) -> Iterator[bytes]:
        with self.open(sha256) as f:
            while chunk := f.read(size):
                yield chunk

    def verify(self, sha256: str) -> bool:
        """True when the stored bytes still hash to their name."""
        digest = hashlib.sha256()
        for chunk in self.iter_chunks(sha256):
            digest.update(chunk)
        return digest.hexdigest() == sha256


class DatabaseEvidenceStore(EvidenceStore):
    """The same store with the bytes in the database (PostgreSQL deployments of several processes): every API
    process reads every file, whichever took the upload. ``put`` checks and hashes the upload in a local
    staging file exactly as on disk (``root`` is only that staging directory), then copies it into
    ``evidence_chunks`` in chunks of 1 MiB in one transaction and removes the staging file; reads fetch one
    chunk at a time, so memory stays at one chunk whatever the file's size."""

    def __init__(self, engine: Any, root: Path | str, policy: EvidencePolicy | None = None) -> None:
        super().__init__(root, policy)
        self.engine = engine

    def setup(self) -> None:
        _metadata.create_all(self.engine)

    def exists(self, sha256: str) -> bool:
        self.path_of(sha256)  # the format check
        with self.engine.connect() as conn:
            return conn.execute(sa.select(evidence_files.c.size).where(evidence_files.c.sha256 == sha256)).first() \
                is not None

    def put(self, data: bytes | BinaryIO, name: str, media_type: str) -> EvidenceRef:
        ref = super().put(data, name, media_type)
        staged = super().path_of(ref.sha256)
        try:
            if not self.exists(ref.sha256):
                try:
                    with self.engine.begin() as conn, staged.open("rb") as f:
                        conn.execute(evidence_files.insert().values(sha256=ref.sha256, size=ref.size))
                        seq = 0
                        while chunk := f.read(_CHUNK):
                            conn.execute(evidence_chunks.insert().values(sha256=ref.sha256, seq=seq, data=chunk))
                            seq += 1
                except sa.exc.IntegrityError:
                    pass  # another process stored the same content meanwhile: idempotent
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(staged, 0o644)
                os.unlink(staged)
        return ref

    def iter_chunks(self, sha256: str, size: int = _CHUNK) -> Iterator[bytes]:
        if not self.exists(sha256):
            raise EvidenceNotFoundError(f"no evidence with SHA-256 {sha256}")
        return self._chunks(sha256)

    def _chunks(self, sha256: str) -> Iterator[bytes]:
        seq = 0
        while True:
            with self.engine.connect() as conn:
                chunk = conn.execute(sa.select(evidence_chunks.c.data).where(
                    evidence_chunks.c.sha256 == sha256, evidence_chunks.c.seq == seq)).scalar()
            if chunk is None:
                return
            yield bytes(chunk)
            seq += 1

    def open(self, sha256: str) -> BinaryIO:
        return io.BufferedReader(_ChunkReader(self.iter_chunks(sha256)))

    def get(self, sha256: str) -> bytes:
        return b"".join(self.iter_chunks(sha256))


class _ChunkReader(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._left = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._left:
            self._left = next(self._chunks, b"")
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


_metadata = sa.MetaData()
evidence_files = sa.Table(
    "evidence_files", _metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
)
evidence_chunks = sa.Table(
    "evidence_chunks", _metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
# Who uploaded which file (the person: an inspector's directory entry id, else the account id): before a record
# names a file, only its uploaders (and auditors) download it. Not an event: an upload changes no record.
EVIDENCE_UPLOADERS = sa.Table(
    "evidence_uploaders", sa.MetaData(),
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("person", sa.String(64), primary_key=True),
)
