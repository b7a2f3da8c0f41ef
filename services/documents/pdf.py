"""A ``domain.documents.Document`` as PDF with reportlab: A4, the built-in CID font STSong-Light (Adobe-GB1:
Chinese renders in any PDF reader without a font file shipped or embedded), page numbers in the footer."""

import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, TableStyle
from reportlab.platypus import Table as RlTable

from domain.documents import Block, Document, Fields, Heading, Signatures, Table, Text

FONT = "STSong-Light"
_registered = False


def _font() -> str:
    global _registered
    if not _registered:  # once per process; registering is idempotent but not free
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True
    return FONT


def _styles() -> dict[str, ParagraphStyle]:
    font = _font()
    base = ParagraphStyle("body", fontName=font, fontSize=11, leading=17, wordWrap="CJK", firstLineIndent=22,
                          spaceAfter=4)
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=17, leading=24, alignment=TA_CENTER,
                                firstLineIndent=0, spaceAfter=10),
        "subtitle": ParagraphStyle("subtitle", parent=base, alignment=TA_CENTER, firstLineIndent=0, spaceAfter=8),
        "body": base,
        "meta": ParagraphStyle("meta", parent=base, firstLineIndent=0),
        "salutation": ParagraphStyle("salutation", parent=base, firstLineIndent=0),
        "note": ParagraphStyle("note", parent=base, firstLineIndent=0, fontSize=9, leading=13),
        "signature": ParagraphStyle("signature", parent=base, firstLineIndent=0, alignment=TA_RIGHT, spaceBefore=18),
        "heading": ParagraphStyle("heading", parent=base, fontSize=12.5, leading=19, firstLineIndent=0,
                                  spaceBefore=6),
        "cell": ParagraphStyle("cell", parent=base, fontSize=9.5, leading=13.5, firstLineIndent=0, spaceAfter=0),
        "head": ParagraphStyle("head", parent=base, fontSize=9.5, leading=13.5, firstLineIndent=0, spaceAfter=0),
    }


def _markup(text: Any) -> str:
    return "<br/>".join(escape(line) for line in ("" if text is None else str(text)).split("\n"))


_GRID = [
    ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 3),
    ("RIGHTPADDING", (0, 0), (-1, -1), 3),
]


def _table(t: Table, width: float, st: dict[str, ParagraphStyle]) -> Flowable:
    n = len(t.headers)
    rel = list(t.widths) if len(t.widths) == n else [1.0] * n
    widths = [width * w / sum(rel) for w in rel]
    data = [[Paragraph(_markup(h), st["head"]) for h in t.headers]]
    data += [[Paragraph(_markup(c), st["cell"]) for c in row] for row in t.rows]
    table = RlTable(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([*_GRID, ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee"))]))
    return table


def _fields(f: Fields, width: float, st: dict[str, ParagraphStyle]) -> Flowable:
    label, value = 0.16 * width, width / f.per_row - 0.16 * width
    data: list[list[Any]] = []
    spans = []
    pairs = list(f.pairs)
    for r, start in enumerate(range(0, len(pairs), f.per_row)):
        row: list[Any] = []
        for lab, val in pairs[start:start + f.per_row]:
            row += [Paragraph(_markup(lab), st["head"]), Paragraph(_markup(val), st["cell"])]
        if len(row) < 2 * f.per_row:
            spans.append(("SPAN", (len(row) - 1, r), (2 * f.per_row - 1, r)))
            row += [""] * (2 * f.per_row - len(row))
        data.append(row)
    table = RlTable(data, colWidths=[label, value] * f.per_row)
    shade = [("BACKGROUND", (c, 0), (c, -1), colors.HexColor("#eeeeee")) for c in range(0, 2 * f.per_row, 2)]
    table.setStyle(TableStyle([*_GRID, *shade, *spans]))
    return table


def _signatures(s: Signatures, width: float, st: dict[str, ParagraphStyle]) -> Flowable:
    data = [[Paragraph(_markup(f"{role}（签名）：________________" + (f"（{name}）" if name else "")), st["meta"]),
             Paragraph("日期：______年____月____日", st["meta"])] for role, name in s.lines]
    table = RlTable(data, colWidths=[width * 0.62, width * 0.38])
    table.setStyle(TableStyle([("TOPPADDING", (0, 0), (-1, -1), 12)]))
    return table


def _flowable(b: Block, width: float, st: dict[str, ParagraphStyle]) -> Flowable:
    if isinstance(b, Text):
        return Paragraph(_markup(b.text), st.get(b.kind, st["body"]))
    if isinstance(b, Heading):
        return Paragraph(_markup(b.text), st["heading"])
    if isinstance(b, Table):
        return _table(b, width, st)
    if isinstance(b, Fields):
        return _fields(b, width, st)
    return _signatures(b, width, st)


def render_pdf(doc: Document) -> bytes:
    """The document as PDF bytes (the same text as ``domain.documents.render_html``)."""
    st = _styles()
    size = landscape(A4) if doc.landscape else A4
    out = io.BytesIO()
    template = SimpleDocTemplate(out, pagesize=size, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm,
                                 bottomMargin=18 * mm, title=doc.title, author="dualrandom", invariant=True)
    width = size[0] - 36 * mm
    story: list[Flowable] = [Paragraph(_markup(doc.title), st["title"])]
    if doc.subtitle:
        story.append(Paragraph(_markup(doc.subtitle), st["subtitle"]))
    for b in doc.blocks:
        story.append(_flowable(b, width, st))
        if isinstance(b, (Table, Fields)):
            story.append(Spacer(1, 4))

    def footer(canvas: Any, _doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 9)
        canvas.drawCentredString(size[0] / 2, 10 * mm, f"第 {canvas.getPageNumber()} 页")
        canvas.restoreState()

    template.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
