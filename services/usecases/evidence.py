"""Evidence files: uploaded once (content-addressed), named by findings, shared documents and referrals, and
downloaded only by those who read the record that names them (or, before any does, by whoever uploaded it)."""

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from domain.access import Actor, person_ids, person_of
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.readers import refuse_partner, require_uploader
from domain.values import Role
from projections.execution.queries import evidence_named, evidence_readable
from services.application import NotFoundError
from services.infra.evidence import EVIDENCE_UPLOADERS, EvidenceStore

_READ_MODELS = ("execution", "tasks")


class Evidence:
    """The evidence store behind the use cases (``store``: tests swap it for one with another policy)."""

    def __init__(self, store: EvidenceStore, engine: Engine, runner: Any) -> None:
        self.store = store
        self.engine = engine
        self.runner = runner

    def setup(self) -> None:
        EVIDENCE_UPLOADERS.metadata.create_all(self.engine, tables=[EVIDENCE_UPLOADERS])

    def upload_evidence(
        self, actor: Actor, stream: BinaryIO | bytes, name: str, media_type: str
    ) -> dict[str, Any]:
        require_uploader(actor)
        ref = self.store.put(stream, name, media_type)
        t, person = EVIDENCE_UPLOADERS, person_of(actor)
        with contextlib.suppress(sa.exc.IntegrityError), self.engine.begin() as conn:  # known: nothing to add
            if conn.execute(sa.select(t.c.sha256).where(t.c.sha256 == ref.sha256, t.c.person == person)).first() \
                    is None:
                conn.execute(t.insert().values(sha256=ref.sha256, person=person))
        return ref.as_dict()

    def open_evidence(self, actor: Actor, sha256: str) -> Iterator[bytes]:
        """Auditors read every file. Anyone else reads a file named by a finding of a visit they are on the
        department's team of, or they review for that department; a document shared on a visit of their
        department; a referral's document sent or received by their department; a file no record names yet, if
        they uploaded it. Everyone else: 404, as for a file that does not exist (existence is not revealed)."""
        refuse_partner(actor)
        self.store.path_of(sha256)  # 422 unless 64 lowercase hex digits
        if not (actor.has(Role.AUDITOR) or self._may_read(actor, sha256)):
            self.runner.catch_up_named(_READ_MODELS)  # the record naming it may have been written just now
            if not self._may_read(actor, sha256):
                raise NotFoundError("evidence file", sha256)
        if not self.store.exists(sha256):
            raise NotFoundError("evidence file", sha256)
        return self.store.iter_chunks(sha256)

    def _may_read(self, actor: Actor, sha256: str) -> bool:
        people = person_ids(actor)
        with self.engine.connect() as conn:
            if evidence_readable(conn, sha256, actor.department, people, actor.has(Role.REVIEWER)):
                return True
            if evidence_named(conn, sha256):
                return False
            t = EVIDENCE_UPLOADERS
            return conn.execute(sa.select(t.c.sha256).where(
                t.c.sha256 == sha256, t.c.person.in_(sorted(people))).limit(1)).first() is not None

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
