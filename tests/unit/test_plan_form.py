"""The staff console's sampling-rule rows (staff/_plan_fields.html) and their parser (services/web/planning.py): for
every set of rules a plan entry can hold, the rows rendered with them, submitted as a browser submits them, parse
back to the same rules; and every field a use case names gets a Chinese name."""

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.errors import InvalidInputError
from domain.planning.rules import rules_from_dict, rules_to_dict
from services.web import planning

TEMPLATES = Path(planning.__file__).parent / "templates"


class Submitted(HTMLParser):
    """The fields a browser sends for a form: each select's selected option (else its first), each text input's
    value, each checked check box as ``on``."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._first: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "select":
            self._select, self._first = a.get("name"), None
        elif tag == "option" and self._select is not None:
            if self._first is None:
                self._first = a.get("value") or ""
                self.fields.setdefault(self._select, self._first)
            if "selected" in a:
                self.fields[self._select] = a.get("value") or ""
        elif tag == "input" and a.get("name"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.fields[str(a["name"])] = a.get("value") or "on"
            else:
                self.fields[str(a["name"])] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def rendered(rules: list[dict[str, Any]]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    macro = env.get_template("staff/_plan_fields.html").module.rule_rows  # type: ignore[attr-defined]
    return str(macro(planning._rule_rows(rules), planning.CLASSES, planning.RISKS, planning.COMBINE))


RATIOS = st.sampled_from(["0.05", "0.25", "1/3", "0.5", "1"])
RULE = st.fixed_dictionaries({
    "supervision_class": st.sampled_from(["key", "general", "special"]),
    "risk_class": st.sampled_from([None, "A", "B", "C", "D"]),
}, optional={"min_ratio": RATIOS, "min_per_inspector": st.integers(0, 50),
             "combine": st.sampled_from(["either", "larger"]), "full": st.booleans(),
             "once_a_year": st.booleans()})


@st.composite
def rule_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Valid rule sets of at most one row per stratum, as the plan stores them (rules_to_dict)."""
    rules = draw(st.lists(RULE, min_size=1, max_size=planning.RULE_ROWS,
                          unique_by=lambda r: (r["supervision_class"], r["risk_class"])))
    for r in rules:
        if not any(k in r for k in ("min_ratio", "min_per_inspector", "full", "once_a_year")) or r.get("full") is False:
            r["min_ratio"] = r.get("min_ratio", "0.25")
    try:
        return rules_to_dict(rules_from_dict(rules))
    except InvalidInputError:  # a combination the rules refuse: not one a plan can hold
        assume(False)
        raise


@settings(max_examples=150, deadline=None)
@given(rule_sets())
def test_the_rule_rows_submitted_unchanged_parse_back_to_the_same_rules(rules: list[dict[str, Any]]) -> None:
    form = Submitted()
    form.feed(rendered(rules))
    problems: list[tuple[str, str]] = []
    parsed = planning._rules(form.fields, problems)
    assert problems == []
    assert rules_to_dict(rules_from_dict(parsed)) == rules


@given(st.lists(st.sampled_from(sorted(planning.FIELD_NAMES)), min_size=1, max_size=3),
       st.lists(st.integers(0, 20), min_size=3, max_size=3))
def test_every_field_a_use_case_names_gets_a_chinese_name(parts: list[str], indexes: list[int]) -> None:
    field = ".".join(f"{p}[{i}]" if n % 2 else p for n, (p, i) in enumerate(zip(parts, indexes, strict=False)))
    name = planning.label(field)
    assert not any(p in name for p in parts if p.isascii() and len(p) > 2)  # no English field word left
    assert name.count(" · ") == len(parts) - 1
