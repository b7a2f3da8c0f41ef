"""Field specifications: one place that normalises and validates directory input (HTTP and file import)."""

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import FieldProblem, InvalidInputError
from domain.text import CONTROL_RULE, control_character, control_message, normalise_newlines

_TRUE = {"true", "1", "yes", "y", "是", "有", "需要"}
_FALSE = {"false", "0", "no", "n", "否", "无", "不需要", ""}
LIST_SPLIT = re.compile(r"[;；,，、|\n]")
_LIST_SPLIT = LIST_SPLIT


@dataclass(frozen=True)
class Field:
    """One field of a directory entry.

    kind: ``str``, ``bool``, ``date`` (ISO ``YYYY-MM-DD``, stored as that string) or ``list``
    (of strings; from text, split on ; , 、 |).
    """

    name: str
    kind: str = "str"
    required: bool = False
    max_len: int = 200
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], tuple[str, str] | None] | None = None
    identity: bool = False  # part of the aggregate id: cannot change after registration
    default: Any = None
    case: str = ""  # "lower" / "upper": text (each entry of a list) folded to that case (codes: HJ-EEB is hj-eeb)
    max_items: int = 500  # a list's entries (before duplicates are dropped): more is refused as ``max_items``


class Spec:
    """An ordered set of fields with one validation routine."""

    def __init__(self, fields: Iterable[Field]) -> None:
        self.fields = {f.name: f for f in fields}
        # Computed once (imports call these 100,000 times): the defaults, and which of them are lists
        # (handed out as a fresh list each time, never shared).
        self._defaults = {f.name: f.default for f in self.fields.values()}
        self._list_defaults = tuple(f.name for f in self.fields.values() if isinstance(f.default, (list, tuple)))

    def defaults(self) -> dict[str, Any]:
        out = dict(self._defaults)
        for name in self._list_defaults:
            out[name] = list(out[name])
        return out

    def validate(self, data: Mapping[str, Any], *, partial: bool, row: int | None = None) -> dict[str, Any]:
        """Normalise ``data``; raise InvalidInputError listing every problem.

        ``partial`` (an update) lets required fields be absent but never empty.
        """
        problems: list[FieldProblem] = []
        out: dict[str, Any] = {}
        fields = self.fields
        for key in data:
            if key not in fields:
                problems.append(FieldProblem(key, "unknown_field", "is not a field of this record", row))
        for name, f in fields.items():
            if name not in data:
                if f.required and not partial:
                    problems.append(FieldProblem(name, "required", "is required", row))
                continue
            raw = data[name]
            if raw is None and not f.required:  # null clears an optional field: back to its default
                out[name] = list(f.default) if isinstance(f.default, (list, tuple)) else f.default
                continue
            if f.kind == "str" and type(raw) is str:  # the common case, as _normalise would do it
                value: Any = normalise_newlines(raw.strip())
            else:
                try:
                    value = _normalise(f, raw)
                except ValueError as exc:
                    problems.append(FieldProblem(name, getattr(exc, "rule", "type"), str(exc), row))
                    continue
            if f.case and value:
                value = _fold(f.case, value)
            if f.required and (value == "" or value is None or value == []):
                problems.append(FieldProblem(name, "required", "must not be empty", row))
                continue
            message = _check(f, value)
            if message:
                problems.append(FieldProblem(name, message[0], message[1], row))
                continue
            out[name] = value
        if problems:
            raise InvalidInputError(problems)
        return out


def _normalise(f: Field, raw: Any) -> Any:
    if raw is None:
        return [] if f.kind == "list" else (False if f.kind == "bool" else None)
    if f.kind == "str":
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise ValueError("must be text")
        return normalise_newlines(str(raw).strip())
    if f.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("must be true or false (是/否)")
    if f.kind == "date":
        if isinstance(raw, dt.datetime):
            return raw.date().isoformat()
        if isinstance(raw, dt.date):
            return raw.isoformat()
        text = str(raw).strip()
        if not text:
            return None
        try:
            return dt.date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            raise ValueError("must be a date YYYY-MM-DD") from None
    if f.kind == "list":
        items = _LIST_SPLIT.split(raw) if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)):
            raise ValueError("must be a list of text")
        if len(items) > f.max_items:  # refused before any entry is looked at: the work stays bounded
            raise _TooMany(f"must have at most {f.max_items} entries")
        if not all(isinstance(i, str) for i in items):
            raise ValueError("must be a list of text")
        # first occurrence kept, in order (a dict: linear, where a list's membership test was quadratic)
        return list(dict.fromkeys(item for item in (normalise_newlines(i.strip()) for i in items) if item))
    raise ValueError(f"unknown kind {f.kind}")  # pragma: no cover - programming error


class _TooMany(ValueError):
    rule = "max_items"


def _fold(case: str, value: Any) -> Any:
    """Text, or each entry of a list, in ``case`` (``lower`` / ``upper``)."""
    fold = str.lower if case == "lower" else str.upper
    if isinstance(value, list):
        return list(dict.fromkeys(fold(v) for v in value))
    return fold(value) if isinstance(value, str) else value


def _check(f: Field, value: Any) -> tuple[str, str] | None:
    if value is None:
        return None
    if f.kind in ("str", "list"):
        for text in value if f.kind == "list" else (value,):
            code = control_character(text)
            if code is not None:
                return (CONTROL_RULE, control_message(code))
    if f.kind == "str" and len(value) > f.max_len:
        return ("max_length", f"must be at most {f.max_len} characters")
    if f.choices is not None:
        values = value if f.kind == "list" else [value]
        bad = [v for v in values if v not in f.choices]
        if bad:
            return ("choice", f"{', '.join(bad)} not one of: {', '.join(f.choices)}")
    if f.kind == "list" and any(len(v) > f.max_len for v in value):
        return ("max_length", f"each entry must be at most {f.max_len} characters")
    if f.check is not None:
        return f.check(value)
    return None
