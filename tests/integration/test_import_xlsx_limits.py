"""A hostile XLSX cannot expand its shared strings into memory: a ``sharedStrings.xml`` past the ceiling
(``MAX_XLSX_PART_BYTES`` uncompressed, a few hundred KB compressed) and a shared string longer than a cell may
hold (``MAX_XLSX_CELL_CHARS``) are refused as ``file``/``size`` before anything is read, and refusing the bomb
costs a child process less than the import's fixed ceiling (docs/directories-and-imports.md, "Memory")."""

import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from openpyxl import Workbook

from domain.errors import InvalidInputError
from services.infra.imports import MAX_XLSX_CELL_CHARS, MAX_XLSX_PART_BYTES, iter_file

FIXED_MIB = 160  # the import's fixed memory ceiling (tests/integration/test_import_memory.py)


def _workbook(rows: list[list[str]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["名称", "统一社会信用代码"])
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


SST = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def _with_shared_strings(xlsx: bytes, write: Callable[[IO[bytes]], None]) -> bytes:
    """The workbook with a sharedStrings.xml of what ``write(stream)`` writes (deflated), declared in the content
    types, and the cell whose text is ``SHARED`` made a reference to shared string 0."""
    src = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SST}"/>'
                                    "</Types>".encode())
            elif info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b't="inlineStr"><is><t>SHARED</t></is>', b't="s"><v>0</v>')
            dst.writestr(info, data)
        info = zipfile.ZipInfo("xl/sharedStrings.xml")
        info.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(info, "w", force_zip64=True) as part:
            write(part)
    return out.getvalue()


def _inline(text: str) -> bytes:
    """A workbook whose cell holds ``text`` inline (openpyxl itself cuts a text to a cell's limit)."""
    src = zipfile.ZipFile(io.BytesIO(_workbook([["SHARED", "91410000000000000A"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<t>SHARED</t>", f"<t>{text}</t>".encode())
            dst.writestr(info, data)
    return out.getvalue()


HEAD = b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'


def _bomb() -> bytes:
    """Shared strings of 4 x the ceiling that deflate to well under the 20 MB upload limit."""
    xlsx = _workbook([["SHARED", "91410000000000000A"]])
    item = b"<si><t>" + b"x" * 1000 + b"</t></si>"

    def write(part: IO[bytes]) -> None:
        part.write(HEAD)
        for _ in range(4 * MAX_XLSX_PART_BYTES // len(item) + 1):
            part.write(item)
        part.write(b"</sst>")

    return _with_shared_strings(xlsx, write)


def _refused(content: bytes) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        list(iter_file("target", content, "targets.xlsx", complete=False))
    return caught.value


def test_a_shared_strings_bomb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    bomb = _bomb()
    assert len(bomb) < 2 * 2**20  # well under the upload limit: the attack fits any request
    problem = _refused(bomb).problems[0]
    assert (problem.field, problem.rule) == ("file", "size") and "sharedStrings.xml" in problem.message

    # and refusing it costs less than the import's fixed ceiling, in a process of its own
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(bomb)
    # VmHWM is the peak of this process's own memory (ru_maxrss may carry the forking parent's peak over exec)
    code = ("import re, sys\nfrom services.infra.imports import iter_file\nfrom domain.errors import "
            "InvalidInputError\ntry:\n    list(iter_file('target', open(sys.argv[1], 'rb'), 'x.xlsx', complete=False))\n"
            "except InvalidInputError:\n"
            "    print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2], env={**os.environ}, check=True)
    peak_mib = int(done.stdout.strip()) / 1024
    assert peak_mib < FIXED_MIB, f"peak RSS {peak_mib:.0f} MiB"


def test_a_shared_string_longer_than_a_cell_is_refused() -> None:
    long = "长" * (MAX_XLSX_CELL_CHARS + 1)

    def write(part: IO[bytes]) -> None:
        part.write(HEAD + f"<si><t>{long}</t></si></sst>".encode())

    shared = _with_shared_strings(_workbook([["SHARED", "91410000000000000A"]]), write)
    problem = _refused(shared).problems[0]
    assert (problem.field, problem.rule) == ("file", "size") and "shared string" in problem.message
    # the same text inline in the sheet: the same rule
    problem = _refused(_inline(long)).problems[0]
    assert (problem.field, problem.rule) == ("file", "size") and str(MAX_XLSX_CELL_CHARS) in problem.message


def test_a_workbook_within_the_limits_is_read() -> None:
    longest = "长" * MAX_XLSX_CELL_CHARS

    def write(part: IO[bytes]) -> None:
        part.write(HEAD + f"<si><t>{longest}</t></si></sst>".encode())

    shared = _with_shared_strings(_workbook([["SHARED", "91410000000000000A"]]), write)
    for content in (shared, _inline(longest)):
        rows = list(iter_file("target", content, "targets.xlsx", complete=False))
        assert len(rows) == 1 and rows[0][1]["name"] == longest
