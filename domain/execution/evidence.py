"""Evidence references (a file's SHA-256, size, name, media type) and the upload policy; no file access.

The files themselves live in a content-addressed store (``services/infra/evidence.py``); events keep only the
reference, so an event never carries file bytes and the same file uploaded twice is stored once.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.errors import FieldProblem, InvalidInputError

__all__ = ["DEFAULT_MEDIA_TYPES", "EvidencePolicy", "EvidenceRef", "validate_refs"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MEDIA = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")

DEFAULT_MEDIA_TYPES: tuple[str, ...] = (
    "application/pdf",
    "image/jpeg",
    "image/png",
    "image/tiff",
    "video/mp4",
    "audio/mpeg",
    "text/plain",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/zip",
)
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
MAX_REFS = 100


@dataclass(frozen=True)
class EvidencePolicy:
    """What the store accepts (configurable): largest size in bytes and allowed media types."""

    max_bytes: int = DEFAULT_MAX_BYTES
    media_types: tuple[str, ...] = field(default=DEFAULT_MEDIA_TYPES)

    def check(self, size: int, media_type: str, fld: str = "file") -> None:
        problems: list[FieldProblem] = []
        if size > self.max_bytes:
            problems.append(
                FieldProblem(
                    f"{fld}.size", "max_size", f"is {size:,} bytes; the limit is {self.max_bytes:,} bytes"
                )
            )
        if size <= 0:
            problems.append(FieldProblem(f"{fld}.size", "min_size", "the file is empty"))
        if media_type not in self.media_types:
            problems.append(
                FieldProblem(
                    f"{fld}.media_type",
                    "media_type",
                    f"{media_type!r} is not allowed; allowed: {', '.join(self.media_types)}",
                )
            )
        if problems:
            raise InvalidInputError(problems)


@dataclass(frozen=True)
class EvidenceRef:
    """A stored file: ``sha256`` (lowercase hex), ``size`` (bytes), original ``name``, ``media_type``."""

    sha256: str
    size: int
    name: str
    media_type: str

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "name": self.name, "media_type": self.media_type}


_UNSAFE_NAME_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069/\\\\]"
)


def file_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an evidence file's name (None: it can). A name is what a person sees and what a
    download is saved as: 1..255 characters after trimming, not ``.`` or ``..``, no path separator, no control
    character and no bidirectional override (which can disguise ``exe.jpg`` as ``gpj.exe``)."""
    text = name.strip()
    if not text or len(text) > 255:
        return "must be a file name of 1..255 characters"
    if text in {".", ".."}:
        return "must be a file name, not . or .."
    bad = _UNSAFE_NAME_CHARS.search(text)
    if bad is not None:
        return f"must not contain U+{ord(bad.group()):04X} (path separators, control and direction characters)"
    return None


def validate_ref(value: Any, fld: str, problems: list[FieldProblem]) -> dict[str, Any] | None:
    """A normalised reference dict, or None with the problems appended."""
    if isinstance(value, EvidenceRef):
        value = value.as_dict()
    if not isinstance(value, Mapping):
        problems.append(FieldProblem(fld, "type", "must be an object {sha256, size, name, media_type}"))
        return None
    n = len(problems)
    unknown = [k for k in value if k not in ("sha256", "size", "name", "media_type")]
    problems += [FieldProblem(f"{fld}.{k}", "unknown_field", "is not a field of evidence") for k in unknown]
    sha = value.get("sha256")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        problems.append(FieldProblem(f"{fld}.sha256", "format", "must be 64 lowercase hex digits (SHA-256)"))
    size = value.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        problems.append(FieldProblem(f"{fld}.size", "range", "must be a positive number of bytes"))
    name = value.get("name")
    why = file_name_problem(name) if isinstance(name, str) else "must be a file name of 1..255 characters"
    if why is not None:
        problems.append(FieldProblem(f"{fld}.name", "format", why))
    media = value.get("media_type")
    if not isinstance(media, str) or not _MEDIA.match(media):
        problems.append(
            FieldProblem(f"{fld}.media_type", "format", "must be a media type such as image/jpeg")
        )
    if len(problems) > n:
        return None
    return {"sha256": sha, "size": size, "name": str(name).strip(), "media_type": media}


def validate_refs(values: Any, fld: str, problems: list[FieldProblem]) -> list[dict[str, Any]]:
    """A list of normalised references (duplicates by hash removed), problems appended."""
    if values is None:
        return []
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        problems.append(FieldProblem(fld, "type", "must be a list of evidence references"))
        return []
    out: list[dict[str, Any]] = []
    items = list(values)
    if len(items) > MAX_REFS:
        problems.append(FieldProblem(fld, "max_items", f"at most {MAX_REFS} files"))
        return []
    for i, v in enumerate(items):
        ref = validate_ref(v, f"{fld}[{i}]", problems)
        if ref is not None and all(r["sha256"] != ref["sha256"] for r in out):
            out.append(ref)
    return out
