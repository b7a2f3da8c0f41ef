"""Cells of the spreadsheets we write (CSV, XLSX) that are safe to open: no text becomes a formula.

OWASP's CSV-injection guidance: a cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return may be run as a formula by a spreadsheet program (``=HYPERLINK(...)`` in an enterprise's name, say), so
such text is written with a leading apostrophe, which makes it plain text everywhere. Any department's planner can
name a target, so every exported cell goes through ``safe_cell``.
"""

from collections.abc import Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell's text, with a leading ``'`` when it could start a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def safe_row(values: Sequence[object]) -> list[str]:
    return [safe_cell(v) for v in values]
