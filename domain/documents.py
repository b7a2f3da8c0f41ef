"""A printable document's structure (A4, Chinese) and its HTML: titles, paragraphs, tables, label/value grids and
signature lines. Pure: ``services.documents`` renders the same structure as PDF, so both forms say the same."""

import html
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Block", "Document", "Fields", "Heading", "Signatures", "Table", "Text", "date_cn", "render_html"]


@dataclass(frozen=True)
class Text:
    """A paragraph; ``kind``: ``body`` (indented), ``meta`` (编号, contact), ``salutation``, ``signature``
    (right-aligned, lines split on newlines), ``note`` (small). Newlines break lines."""

    text: str
    kind: str = "body"


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Table:
    """A ruled table; ``numbered``: the first column is a narrow 序号 column; ``widths``: relative column
    widths (PDF); newlines in a cell break lines."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[float, ...] = ()
    numbered: bool = False


@dataclass(frozen=True)
class Fields:
    """A ruled grid of label/value pairs, two pairs a row (a record's head: who, where, when)."""

    pairs: tuple[tuple[str, str], ...]
    per_row: int = 2


@dataclass(frozen=True)
class Signatures:
    """Lines to sign by hand: ``(role, name printed under it or "")``, each followed by a blank and a date."""

    lines: tuple[tuple[str, str], ...]


Block = Text | Heading | Table | Fields | Signatures


@dataclass(frozen=True)
class Document:
    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)
    landscape: bool = False
    subtitle: str = ""


_CSS = """
@page { size: A4%s; margin: 20mm 18mm; }
* { box-sizing: border-box; }
body { font-family: "SimSun", "Songti SC", "Noto Serif CJK SC", serif; font-size: 12pt; line-height: 1.7;
       color: #000; margin: 0 auto; max-width: %smm; }
h1 { font-family: "SimHei", "Heiti SC", "Noto Sans CJK SC", sans-serif; font-size: 18pt; text-align: center;
     margin: 0 0 6mm; letter-spacing: 0.1em; }
p.subtitle { text-align: center; text-indent: 0; margin: -4mm 0 5mm; }
h2 { font-size: 13pt; margin: 5mm 0 2mm; }
p { margin: 0 0 2mm; text-indent: 2em; }
p.salutation, p.signature, p.meta, p.note { text-indent: 0; }
p.signature { text-align: right; margin-top: 10mm; }
p.note { font-size: 10pt; }
table { width: 100%%; border-collapse: collapse; margin: 2mm 0 4mm; }
th, td { border: 1px solid #000; padding: 1.5mm 2mm; vertical-align: top; text-align: left; }
th { background: #eee; }
table.fields th { width: 16%%; }
table.signatures td { border: none; padding: 6mm 2mm 0; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; break-inside: avoid; }
.num { width: 10mm; text-align: center; }
@media print { body { max-width: none; } th { background: none; } .no-print { display: none; } }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _lines(value: Any) -> str:
    return "<br>".join(_e(line) for line in ("" if value is None else str(value)).split("\n"))


def date_cn(value: Any) -> str:
    """``2024-09-10`` (or a date) as ``2024年9月10日``; empty for nothing."""
    if not value:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    y, m, d = (int(p) for p in text[:10].split("-"))
    return f"{y}年{m}月{d}日"


def _table(t: Table) -> str:
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if t.numbered and n == 0 else f"<th>{_e(h)}</th>"
        for n, h in enumerate(t.headers)
    )
    rows = ""
    for row in t.rows:
        cells = "".join(
            f'<td class="num">{_lines(c)}</td>' if t.numbered and n == 0 else f"<td>{_lines(c)}</td>"
            for n, c in enumerate(row)
        )
        rows += f"<tr>{cells}</tr>\n"
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n"


def _fields(f: Fields) -> str:
    rows = ""
    pairs = list(f.pairs)
    for start in range(0, len(pairs), f.per_row):
        chunk = pairs[start:start + f.per_row]
        cells = []
        for n, (label, value) in enumerate(chunk):
            span = 2 * (f.per_row - len(chunk)) + 1 if n == len(chunk) - 1 and len(chunk) < f.per_row else 1
            colspan = f' colspan="{span}"' if span > 1 else ""
            cells.append(f"<th>{_e(label)}</th><td{colspan}>{_lines(value)}</td>")
        rows += f"<tr>{''.join(cells)}</tr>\n"
    return f'<table class="fields">\n<tbody>\n{rows}</tbody>\n</table>\n'


def _signatures(s: Signatures) -> str:
    rows = "".join(
        f"<tr><td>{_e(role)}（签名）：________________{'（' + _e(name) + '）' if name else ''}</td>"
        "<td>日期：______年____月____日</td></tr>\n"
        for role, name in s.lines
    )
    return f'<table class="signatures">\n<tbody>\n{rows}</tbody>\n</table>\n'


def _block(b: Block) -> str:
    if isinstance(b, Text):
        cls = "" if b.kind == "body" else f' class="{b.kind}"'
        return f"<p{cls}>{_lines(b.text)}</p>\n"
    if isinstance(b, Heading):
        return f"<h2>{_e(b.text)}</h2>\n"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Fields):
        return _fields(b)
    return _signatures(b)


def render_html(doc: Document) -> str:
    """The document as one self-contained HTML page (A4 print CSS, every value escaped)."""
    css = _CSS % (" landscape", "261") if doc.landscape else _CSS % ("", "180")
    body = f"<h1>{_e(doc.title)}</h1>\n"
    if doc.subtitle:
        body += f'<p class="subtitle">{_lines(doc.subtitle)}</p>\n'
    body += "".join(_block(b) for b in doc.blocks)
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(doc.title)}</title>\n<style>{css}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
