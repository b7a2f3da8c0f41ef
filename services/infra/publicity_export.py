"""Files for 国家企业信用信息公示系统（河南）: the data-push JSON and the manual-entry sheet (XLSX, CSV).

The records come from ``domain.execution.publicity.push_record`` (approved results, confidential fields
already left out); this module only writes them. Every writer writes to a temporary file beside the target and
renames it, so a reader never sees half a file.
"""

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from domain.execution.publicity import MANUAL_ENTRY_HEADERS, manual_entry_rows
from services.infra.cells import safe_row

__all__ = ["write_manual_entry_csv", "write_manual_entry_xlsx", "write_push_json"]

_WIDTHS = (14, 36, 14, 48, 10, 28, 14, 22, 30, 40, 28)


def _atomic(path: Path, write: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_push_json(records: Iterable[Mapping[str, Any]], path: Path | str) -> Path:
    """A UTF-8 JSON array of push records (Chinese kept as text, not escaped)."""
    data = [dict(r) for r in records]

    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    return _atomic(Path(path), write)


def write_manual_entry_csv(records: Iterable[Mapping[str, Any]], path: Path | str) -> Path:
    """The manual-entry sheet as CSV: UTF-8 with a BOM (so Excel reads the Chinese), one row per item; no cell
    can start a formula (``services.infra.cells``)."""
    rows = [safe_row(r) for r in manual_entry_rows(records)]

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(MANUAL_ENTRY_HEADERS)
            w.writerows(rows)

    return _atomic(Path(path), write)


def write_manual_entry_xlsx(records: Iterable[Mapping[str, Any]], path: Path | str) -> Path:
    """The manual-entry sheet as XLSX: one sheet 检查结果, a bold frozen header row, one row per item; every cell
    is text, and none can start a formula (``services.infra.cells``)."""
    rows = [safe_row(r) for r in manual_entry_rows(records)]

    def write(tmp: Path) -> None:
        wb = Workbook()
        ws = wb.active
        ws.title = "检查结果"
        ws.append(list(MANUAL_ENTRY_HEADERS))
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(vertical="center", wrap_text=True)
        for row in rows:
            ws.append(row)
        for i, width in enumerate(_WIDTHS, start=1):
            ws.column_dimensions[get_column_letter(i)].width = width
        for row in ws.iter_rows(min_row=2):
            for cell in row:
                cell.number_format = "@"  # text: keeps leading zeros of codes and dates as typed
        ws.freeze_panes = "A2"
        wb.save(tmp)

    return _atomic(Path(path), write)
