"""The content-addressed evidence store, on real files in a temporary directory."""

import hashlib
import io
import os
from pathlib import Path

import pytest

from domain.errors import InvalidInputError
from domain.execution.evidence import EvidencePolicy, EvidenceRef
from services.infra.evidence import EvidenceNotFoundError, EvidenceStore

JPEG = b"\xff\xd8\xff\xe0" + b"\x00JFIF" + bytes(range(256)) * 40
PDF = b"%PDF-1.7\n" + "检查笔录".encode() * 100


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_file_is_stored_under_its_sha256_and_read_back(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "evidence")
    ref = store.put(JPEG, "现场照片.jpg", "image/jpeg")
    sha = hashlib.sha256(JPEG).hexdigest()
    assert ref == EvidenceRef(sha, len(JPEG), "现场照片.jpg", "image/jpeg")
    path = tmp_path / "evidence" / sha[:2] / sha[2:]
    assert path.is_file() and files(tmp_path / "evidence") == [path]
    assert store.get(sha) == JPEG and store.exists(sha) and store.verify(sha)
    assert b"".join(store.iter_chunks(sha, 100)) == JPEG


def test_putting_the_same_content_again_stores_nothing_new(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    a = store.put(PDF, "笔录.pdf", "application/pdf")
    mtime = os.stat(store.path_of(a.sha256)).st_mtime_ns
    b = store.put(io.BytesIO(PDF), "笔录-副本.pdf", "application/pdf; charset=binary")
    assert b.sha256 == a.sha256 and b.name == "笔录-副本.pdf" and b.media_type == "application/pdf"
    assert len(files(tmp_path)) == 1 and os.stat(store.path_of(a.sha256)).st_mtime_ns == mtime


def test_a_file_over_the_size_limit_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, EvidencePolicy(max_bytes=1000))
    with pytest.raises(InvalidInputError) as err:
        store.put(io.BytesIO(JPEG), "big.jpg", "image/jpeg")
    p = err.value.problems[0]
    assert (p.field, p.rule) == ("file.size", "max_size") and "1,000 bytes" in p.message
    assert files(tmp_path) == []


def test_a_type_not_allowed_an_empty_file_or_content_of_another_type_is_refused(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    with pytest.raises(InvalidInputError) as err:
        store.put(b"MZ\x90\x00", "tool.exe", "application/x-msdownload")
    assert (err.value.problems[0].field, err.value.problems[0].rule) == ("file.media_type", "media_type")
    with pytest.raises(InvalidInputError) as err:
        store.put(b"", "empty.pdf", "application/pdf")
    assert err.value.problems[0].rule == "min_size"
    with pytest.raises(InvalidInputError) as err:
        store.put(JPEG, "photo.pdf", "application/pdf")
    assert err.value.problems[0].rule == "content"
    with pytest.raises(InvalidInputError) as err:
        store.put(PDF, "", "application/pdf")
    assert err.value.problems[0].field == "file.name"
    assert files(tmp_path) == []


def test_the_allowed_types_are_configurable(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, EvidencePolicy(media_types=("text/csv",)))
    assert store.put("企业,结果\n".encode(), "a.csv", "text/csv").size == len("企业,结果\n".encode())
    with pytest.raises(InvalidInputError):
        store.put(PDF, "a.pdf", "application/pdf")


def test_an_unknown_or_malformed_hash_is_a_clear_error(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    with pytest.raises(EvidenceNotFoundError):
        store.get("0" * 64)
    with pytest.raises(InvalidInputError) as err:
        store.get("../../etc/passwd")
    assert err.value.problems[0].field == "sha256"


@pytest.mark.parametrize("name", [".", "..", "照片\x00.jpg", "照片\u202egpj.exe", "\t", "a/b.jpg", "a\\b.jpg",
                                  "C:\\scans\\笔录.jpg"])
def test_an_unsafe_file_name_stores_nothing(tmp_path: Path, name: str) -> None:
    store = EvidenceStore(tmp_path / "evidence")
    with pytest.raises(InvalidInputError) as err:
        store.put(JPEG, name, "image/jpeg")
    assert [p.field for p in err.value.problems] == ["file.name"]
    assert files(tmp_path) == []
