"""A printable document's structure renders to HTML and PDF saying the same: every block kind, every value
escaped in HTML and kept as text in the PDF (read back with pypdf), A4 and landscape."""

import html
import io
import re

import pypdf
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.documents import Document, Fields, Heading, Signatures, Table, Text, date_cn, render_html
from domain.execution.notices import visit_window
from services.documents.pdf import render_pdf

SPACE = re.compile(r"\s+")


def _pdf_text(doc: Document) -> tuple[str, pypdf.PdfReader]:
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(doc)))
    return SPACE.sub("", "".join(p.extract_text() for p in reader.pages)), reader


def sample(cell: str = "获嘉县恒润纸业有限公司") -> Document:
    return Document("抽查检查记录", (
        Text("文号：hj-eeb-2024-001-01", "meta"), Text("获嘉县恒润纸业有限公司：", "salutation"),
        Fields((("被检查单位", cell), ("统一社会信用代码", "9141072400009TE9NX"), ("地址", "获嘉县城关镇1号"))),
        Heading("检查事项及结果"),
        Table(("序号", "检查事项", "发现的问题"), (("1", "水污染防治监督检查", "第一行\n第二行"),), numbered=True),
        Signatures((("检查人员", "王立新"),)), Text("新乡市生态环境局获嘉分局\n2024年9月10日", "signature"),
    ))


def test_every_block_is_in_the_html_and_the_pdf() -> None:
    doc = sample()
    page = render_html(doc)
    text, reader = _pdf_text(doc)
    for value in ("抽查检查记录", "文号：hj-eeb-2024-001-01", "获嘉县恒润纸业有限公司", "9141072400009TE9NX", "获嘉县城关镇1号",
                  "检查事项及结果", "水污染防治监督检查", "第一行", "第二行", "检查人员（签名）", "王立新", "2024年9月10日"):
        assert value in page and value in text, value
    assert "第一行<br>第二行" in page and '<td class="num">1</td>' in page and 'colspan="3"' in page
    width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
    assert (round(width), round(height)) == (595, 842)  # A4 portrait, in points
    wide = pypdf.PdfReader(io.BytesIO(render_pdf(Document("表", (), landscape=True))))
    assert round(wide.pages[0].mediabox.width) == 842 and "size: A4 landscape" in render_html(
        Document("表", (), landscape=True))


chinese = st.text(alphabet=st.sampled_from("获嘉县生态环境局检查企业有限公司<>&\"'ABC123；（）"), min_size=1, max_size=30)


@settings(max_examples=25, deadline=None)
@given(value=chinese)
def test_any_value_is_escaped_in_html_and_printed_as_text_in_the_pdf(value: str) -> None:
    doc = sample(value)
    page = render_html(doc)
    assert f"<th>被检查单位</th><td>{html.escape(value)}</td>" in page  # the cell holds the escaped value
    text, _ = _pdf_text(doc)
    assert SPACE.sub("", value) in text


def test_dates_and_windows_are_written_as_people_write_them() -> None:
    assert date_cn("2024-09-10") == "2024年9月10日" and date_cn(None) == ""
    assert visit_window("2024-09-10", "2024-09-10") == "2024年9月10日"
    assert visit_window("2024-09-09", None) == "2024年9月9日"
    assert visit_window("2024-09-09", "2024-09-13") == "2024年9月9日至2024年9月13日"
    assert visit_window(None, None) == "具体检查时间另行通知"
