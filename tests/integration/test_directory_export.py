"""Directory exports at scale: keyset batches put together are the whole listing on both stores, and writing the
workbook keeps memory flat as the rows grow (the rows are not held)."""

import io
import tracemalloc
from collections.abc import Iterator
from typing import Any

from openpyxl import load_workbook

from domain.access import Actor
from projections.directory.queries import iter_entries, list_entries
from services.application import CommandContext
from services.documents.sheets import directory_xlsx
from services.runtime import Runtime
from tests.support.builders import a_target

PLANNER = CommandContext(Actor("staff-7", "hj-eeb", ("planner",)))


def test_keyset_batches_together_are_the_whole_listing_in_order(runtime: Runtime) -> None:
    for n in range(9):
        runtime.app.register("target", a_target(**({"name": f"获嘉县某某食品厂{n}"} if n % 3 == 0 else {})), PLANNER)
    runtime.runner.catch_up()
    for filters in ({}, {"name": "食品"}, {"supervision_class": "key"}):
        whole = [i["id"] for i in list_entries(runtime.engine, "target", filters, limit=100).items]
        for batch in (1, 2, 3, 9, 100):
            assert [i["id"] for i in iter_entries(runtime.engine, "target", filters, batch)] == whole


def _rows(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"credit_code": f"91410724{i:010d}", "name": f"获嘉县第{i}号测试企业有限公司", "address": f"获嘉县城关镇{i}号",
               "county": "获嘉县", "industry": "化工", "supervision_class": "general", "risk_class": "B",
               "tags": ["hazardous_waste", "off_site_monitored"], "status": "active"}


def _peak(n: int) -> int:
    tracemalloc.start()
    try:
        file = directory_xlsx("target", _rows(n))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        file.seek(0)
        rows = list(load_workbook(io.BytesIO(file.read()), read_only=True).worksheets[0].iter_rows(values_only=True))
        file.close()
        assert len(rows) == n + 1 and rows[-1][0] == f"91410724{n - 1:010d}"


def test_writing_an_export_holds_no_rows_in_memory() -> None:
    small, large = _peak(500), _peak(4_000)
    # Eight times the rows: the saved file (about 60 bytes a row, compressed) grows, the rows are never held; an
    # ordinary workbook holds each cell (about 300 bytes) and adds some 10 MB here (measured: 0.1 MB against 10 MB).
    assert large - small < 2 * 2**20, (small, large)
