"""Evidence in the database: a file uploaded through one process is read by another (here: two stores over
two engines and two staging directories), chunk by chunk, byte for byte; the same content twice is stored once;
a refused upload stores nothing."""

import hashlib
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.errors import InvalidInputError
from services.infra.evidence import (
    DatabaseEvidenceStore,
    EvidenceNotFoundError,
    evidence_chunks,
    evidence_files,
)


def test_a_file_put_through_one_process_is_read_by_another(database_url: str, tmp_path: Path) -> None:
    one_engine, other_engine = sa.create_engine(database_url), sa.create_engine(database_url)
    one = DatabaseEvidenceStore(one_engine, tmp_path / "one")
    other = DatabaseEvidenceStore(other_engine, tmp_path / "other")
    one.setup()
    other.setup()
    try:
        content = b"%PDF-1.7\n" + os.urandom(3 * 2**20 + 12345)  # 4 chunks
        ref = one.put(content, "检查记录.pdf", "application/pdf")
        assert ref.sha256 == hashlib.sha256(content).hexdigest() and ref.size == len(content)
        assert other.exists(ref.sha256)
        chunks = list(other.iter_chunks(ref.sha256))
        assert len(chunks) == 4 and max(map(len, chunks)) == 2**20 and b"".join(chunks) == content
        with other.open(ref.sha256) as f:
            assert f.read() == content
        assert [p for p in (tmp_path / "one").rglob("*") if p.is_file()] == []  # the staging copy is gone
        again = other.put(content, "again.pdf", "application/pdf")  # the same content: stored once
        assert again.sha256 == ref.sha256
        with one_engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(evidence_files)).scalar_one() == 1
            assert conn.execute(sa.select(sa.func.count()).select_from(evidence_chunks)).scalar_one() == 4
        with pytest.raises(InvalidInputError):
            one.put(b"not a pdf", "x.pdf", "application/pdf")
        with one_engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(evidence_files)).scalar_one() == 1
        with pytest.raises(EvidenceNotFoundError):
            other.iter_chunks("0" * 64)
    finally:
        one_engine.dispose()
        other_engine.dispose()
