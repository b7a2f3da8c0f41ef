"""Builders for domain data: valid by default, override what a test is about."""

import itertools
from typing import Any

from domain.credit_code import ALPHABET, check_character

_counter = itertools.count(1)


def credit_code(n: int | None = None) -> str:
    """A valid unified social credit code (GB 32100-2015), distinct for each n."""
    n = next(_counter) if n is None else n
    body = ""
    for _ in range(9):
        n, r = divmod(n, 31)
        body = ALPHABET[r] + body
    first17 = "91410724" + body
    return first17 + check_character(first17)


def a_department(**over: Any) -> dict[str, Any]:
    return {"code": "hj-eeb", "name": "新乡市生态环境局获嘉分局", "city": "新乡市", "county": "获嘉县",
            "kind": "ecology", **over}


def a_target(**over: Any) -> dict[str, Any]:
    return {"credit_code": credit_code(), "name": "获嘉县示例化工有限公司", "address": "获嘉县亢村镇工业园",
            "county": "获嘉县", "industry": "化工", "supervision_class": "general", "risk_class": "B", **over}


def an_inspector(**over: Any) -> dict[str, Any]:
    return {"department": "hj-eeb", "staff_id": f"EEB{next(_counter):04d}", "name": "张伟",
            "certificate_no": "豫环执字0001", "certificate_expiry": "2028-12-31", "specialties": ["大气"],
            "region": "亢村镇", **over}


def an_item(**over: Any) -> dict[str, Any]:
    return {"department": "hj-eeb", "code": f"EEB-{next(_counter):03d}", "name": "水污染防治监督检查",
            "category": "general", "methods": ["on_site"], "documents": ["排污许可证"], **over}


def an_expert(**over: Any) -> dict[str, Any]:
    return {"department": "hj-eeb", "code": f"EX{next(_counter):03d}", "name": "李明", "field": "辐射安全",
            "organisation": "河南省辐射环境监测站", **over}


def registered_before_the_text_rule(app: Any, ctx: Any, kind: str, data: dict[str, Any]) -> str:
    """Register a directory entry whose ``name`` breaks the text rule (``domain.text``), as a store written before
    that rule may hold it: the aggregate made from the data as given, recorded as ``register`` records it.
    Returns its id."""
    from domain.directory import KINDS

    cls = KINDS[kind]
    values = cls.validate_new({**data, "name": "占位"})
    values["name"] = data["name"]
    agg = cls(data=values)  # type: ignore[call-arg]  # each kind's __init__(data) is its @event("Registered")
    assert app.record(ctx, f"register_{kind}", agg) is not None
    return str(agg.id)
