"""一公开: the published results anyone may search, and the export of approved results for the publicity system
(data-push JSON, or the manual-entry sheet as XLSX or CSV), redacted."""

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from domain.access import Actor
from domain.errors import FieldProblem, InvalidInputError
from domain.execution.publicity import push_record
from domain.execution.readers import export_department
from projections.execution import queries as execution
from services.infra.publicity_export import write_manual_entry_csv, write_manual_entry_xlsx, write_push_json
from services.usecases.common import Clock

EXPORT_FORMATS = {
    "json": ("application/json", "json"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "csv": ("text/csv", "csv"),  # the server adds "; charset=utf-8" to every text/* answer
}


class Publicity:
    """Published results and exports, read from the execution read model."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def public_results(self, q: str | None, limit: int, offset: int, *, department: str | None = None,
                       year: int | None = None, result_code: str | None = None,
                       exact_total: bool = False) -> dict[str, Any]:
        return execution.public_results(self.engine, q, limit, offset, department=department, year=year,
                                        result_code=result_code, exact_total=exact_total)

    def export(self, actor: Actor, fmt: str, department: str | None, published_only: bool = False,
               since: dt.date | None = None, until: dt.date | None = None) -> tuple[bytes, str, str]:
        """The data-push JSON or the manual-entry sheet (XLSX, CSV) of approved results; redacted."""
        if fmt not in EXPORT_FORMATS:
            raise InvalidInputError([FieldProblem("format", "choice", "must be one of: json, xlsx, csv")])
        dept = export_department(actor, department)
        inspections = execution.approved_inspections(self.engine, dept, published_only, since, until)
        with self.engine.connect() as conn:
            ctxs = execution.contexts(conn, [{"id": str(i.id), "task_id": i.task_id, "department": i.department,
                                              "target_id": i.target_id, "items": i.items} for i in inspections])
        records = [push_record(ctxs[str(i.id)], i) for i in inspections]
        media, ext = EXPORT_FORMATS[fmt]
        writer = {"json": write_push_json, "xlsx": write_manual_entry_xlsx, "csv": write_manual_entry_csv}[fmt]
        with tempfile.TemporaryDirectory() as tmp:
            path = writer(records, Path(tmp) / f"export.{ext}")
            content = path.read_bytes()
        name = f"dualrandom-{dept or 'all'}-{self.clock.today().isoformat()}.{ext}"
        return content, media, name
