"""Evidence files: uploaded once (content-addressed), opened by staff, named by findings and documents."""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from domain.access import Actor
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.readers import refuse_partner, require_uploader
from services.application import NotFoundError
from services.infra.evidence import EvidenceStore


class Evidence:
    """The evidence store behind the use cases (``store``: tests swap it for one with another policy)."""

    def __init__(self, store: EvidenceStore) -> None:
        self.store = store

    def upload_evidence(
        self, actor: Actor, stream: BinaryIO | bytes, name: str, media_type: str
    ) -> dict[str, Any]:
        require_uploader(actor)
        return self.store.put(stream, name, media_type).as_dict()

    def open_evidence(self, actor: Actor, sha256: str) -> Iterator[bytes]:
        refuse_partner(actor)
        if not self.store.exists(sha256):
            raise NotFoundError("evidence file", sha256)
        return self.store.iter_chunks(sha256)

    def check(self, refs: Iterable[Mapping[str, Any]], field: str) -> None:
        """Every reference names an uploaded file (by SHA-256); else InvalidInputError on ``field[i].sha256``."""
        problems = []
        for i, ref in enumerate(refs):
            sha = ref.get("sha256") if isinstance(ref, Mapping) else None
            if isinstance(sha, str) and len(sha) == 64 and not self.store.exists(sha):
                problems.append(FieldProblem(f"{field}[{i}].sha256", "unknown_evidence",
                                             "no uploaded file has this SHA-256: POST /api/v1/evidence first"))
        if problems:
            raise InvalidInputError(problems)
