"""No text we write into an XLSX becomes a formula: a directory export, a board and a document keep
``=HYPERLINK(...)`` as the very text (a text cell), so it opens as text and a directory export imports back
unchanged."""

import io
import zipfile

from hypothesis import example, given
from hypothesis import strategies as st
from openpyxl import load_workbook

from domain.documents import Document, Table
from services.documents.sheets import board_xlsx, directory_xlsx, document_xlsx
from tests.support.builders import a_target

INJECTION = '=HYPERLINK("http://evil.example/x","点击查看")'
TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFFFF, blacklist_categories=["Cs"]), max_size=30)


def cells(data: bytes) -> list[object]:
    wb = load_workbook(io.BytesIO(data))
    return [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row]


def formulas(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return sum(z.read(n).count(b"<f>") + z.read(n).count(b"<f ") for n in z.namelist()
                   if n.startswith("xl/worksheets/"))


@given(st.sampled_from("=+-@"), TEXT)
def test_a_directory_export_keeps_formula_like_names_as_text(start: str, rest: str) -> None:
    name = start + rest
    with directory_xlsx("target", [{**a_target(), "name": name}]) as f:
        data = f.read()
    assert formulas(data) == 0
    shown = name.replace("\ufffe", "\ufffd").replace("\uffff", "\ufffd")  # XML cannot hold these two
    assert shown.strip() in [str(v).strip() for v in cells(data) if v is not None]


@example("名称\ufffe")  # U+FFFE (a noncharacter XML refuses) wrote a file that did not open; found in CI
@example("\uffff")
@given(TEXT)
def test_a_directory_export_opens_whatever_its_text(name: str) -> None:
    with directory_xlsx("target", [{**a_target(), "name": name, "address": name}]) as f:
        data = f.read()
    values = [str(v).strip() for v in cells(data) if v is not None]  # the file opens
    shown = name.replace("\ufffe", "\ufffd").replace("\uffff", "\ufffd").strip()
    if shown:
        assert values.count(shown) >= 2  # the name and the address


def test_boards_and_documents_write_no_formula() -> None:
    board = board_xlsx("待办", {"tasks": [{"name": INJECTION, "number": "-1"}], "department": "@x"})
    doc = document_xlsx(Document(title="抽查名单", blocks=(Table(headers=("名称",), rows=((INJECTION,),)),)))
    for data in (board, doc):
        assert formulas(data) == 0
        assert INJECTION in cells(data)
