"""What goes public (一公开): push records for 国家企业信用信息公示系统（河南）, the manual-entry
sheet's rows, and the public read model's record. Only approved results; confidential fields never
(``redact_finding``).

Push record keys (the publicity system's): ``raninsPlanId``, ``raninsPlaneName`` (sic, the system's spelling),
``raninsTaskId``, ``raninsTaskName``, ``raninsTypeName`` (定向/不定向), ``insAuth``, ``insDate``,
``details[]`` with ``raninsItemName`` and ``raninsCheckResName``. A case-triggered inspection (个案检查 from a
clue) is not a double-random result: its ``raninsTypeName`` is ``非随机（案件线索核查）`` (never 定向/不定向) and its
plan fields stay empty (no random plan), so a consumer can route it away from the 双随机 results. Decision: two more keys, ``uniscid``
(统一社会信用代码) and ``entName``, say which enterprise the result belongs to; a consumer that wants only
the publicity system's keys drops them. The task and plan data come from the Task/AnnualPlan aggregates through
:class:`PublicationContext`.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.errors import FieldProblem
from domain.execution.inspection import InvalidTransitionError, ReviewState, redact_finding
from domain.execution.vocabulary import MEASURE_LABELS

__all__ = [
    "AD_HOC_PLAN",
    "MANUAL_ENTRY_HEADERS",
    "PUSH_KEYS",
    "PublicationContext",
    "export_identifiers",
    "manual_entry_rows",
    "public_result",
    "push_record",
]

PUSH_KEYS: tuple[str, ...] = (
    "raninsPlanId",
    "raninsPlaneName",
    "raninsTaskId",
    "raninsTaskName",
    "raninsTypeName",
    "insAuth",
    "insDate",
    "uniscid",
    "entName",
    "details",
)
DETAIL_KEYS: tuple[str, ...] = ("raninsItemName", "raninsCheckResName")

MANUAL_ENTRY_HEADERS: tuple[str, ...] = (
    "抽查计划编号",
    "抽查计划名称",
    "抽查任务编号",
    "抽查任务名称",
    "抽查类型",
    "检查实施机关",
    "检查完成日期",
    "统一社会信用代码",
    "企业名称",
    "检查事项",
    "检查结果",
)

DIRECTED = "定向"
UNDIRECTED = "不定向"
NON_RANDOM = "非随机（案件线索核查）"
"""The type of a case-triggered result: not one of the random types 定向/不定向."""


@dataclass(frozen=True)
class PublicationContext:
    """What the result itself does not hold: plan, task, authority, enterprise and item names."""

    plan_number: str
    plan_name: str
    task_number: str
    task_name: str
    directed: bool
    authority: str
    item_names: Mapping[str, str] = field(default_factory=dict)
    target_credit_code: str = ""
    target_name: str = ""
    random: bool = True
    """False for a case-triggered task (个案检查): listed as non-random, without a plan."""

    @property
    def type_name(self) -> str:
        if not self.random:
            return NON_RANDOM
        return DIRECTED if self.directed else UNDIRECTED


class ResultLike(Protocol):
    """An Inspection, or anything with its state, date, items and findings."""

    state: str
    inspected_on: str | None
    items: list[str]
    findings: dict[str, dict[str, Any]]


def _require_approved(result: ResultLike) -> None:
    allowed = (ReviewState.APPROVED.value, ReviewState.PUBLISHED.value)
    if result.state not in allowed:
        raise InvalidTransitionError(
            [
                FieldProblem(
                    "state",
                    "not_approved",
                    f"only approved results are published; this one is {result.state}",
                )
            ]
        )


def _findings(result: ResultLike) -> list[dict[str, Any]]:
    return [redact_finding(result.findings[i]) for i in result.items if i in result.findings]


AD_HOC_PLAN = "计划外"
"""The plan marker of a result outside any plan entry (an ad hoc task, or a partner department without a plan)."""


def export_identifiers(
    *,
    department: str,
    department_name: str,
    lead: str,
    task_number: str,
    year: int,
    plan_entry: str = "",
    entry_name: str = "",
    own_plan_name: str = "",
) -> tuple[str, str, str]:
    """``(raninsPlanId, raninsPlaneName, raninsTaskId)`` of one department's result: unique across departments and
    attributable to the department that publishes it.

    - ``raninsTaskId`` = ``<lead code>-<task number>`` (``hj-eeb-2024-001``): task numbers count per lead
      department, so the bare number repeats across departments.
    - The lead's result of a task from a plan entry: ``<lead code>-<entry number>`` (``hj-eeb-2024003``) and the
      entry's name.
    - A partner department's result in a joint task carries its **own** annual plan, never the lead's:
      ``<partner code>-<year>`` and its plan's name.
    - No plan behind it (an ad hoc task; a partner without a plan of the year): ``<code>-<year>-计划外`` and
      ``<department name><year>年度计划外抽查``.
    """
    ad_hoc = (f"{department}-{year}-{AD_HOC_PLAN}", f"{department_name}{year}年度{AD_HOC_PLAN}抽查")
    if department == lead:
        plan = (f"{lead}-{plan_entry}", entry_name) if plan_entry else ad_hoc
    else:
        plan = (f"{department}-{year}", own_plan_name) if own_plan_name else ad_hoc
    return plan[0], plan[1], f"{lead}-{task_number}"


def push_record(context: PublicationContext, result: ResultLike) -> dict[str, Any]:
    """The data-push (数据归集) record of one approved result."""
    _require_approved(result)
    return {
        "raninsPlanId": context.plan_number if context.random else "",
        "raninsPlaneName": context.plan_name if context.random else "",
        "raninsTaskId": context.task_number,
        "raninsTaskName": context.task_name,
        "raninsTypeName": context.type_name,
        "insAuth": context.authority,
        "insDate": result.inspected_on or "",
        "uniscid": context.target_credit_code,
        "entName": context.target_name,
        "details": [
            {
                "raninsItemName": context.item_names.get(f["item"], f["item"]),
                "raninsCheckResName": f["result_wording"],
            }
            for f in _findings(result)
        ],
    }


def manual_entry_rows(records: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    """The manual-entry (信息填报) sheet's rows, one per item, from push records (headers not included)."""
    rows: list[list[str]] = []
    for r in records:
        head = [
            r["raninsPlanId"],
            r["raninsPlaneName"],
            r["raninsTaskId"],
            r["raninsTaskName"],
            r["raninsTypeName"],
            r["insAuth"],
            r["insDate"],
            r.get("uniscid", ""),
            r.get("entName", ""),
        ]
        for d in r["details"]:
            rows.append([str(v) for v in (*head, d["raninsItemName"], d["raninsCheckResName"])])
    return rows


def public_result(context: PublicationContext, result: ResultLike, department: str = "") -> dict[str, Any]:
    """The public read model's record: the push record's facts plus each item's public description and
    measures (confidential ones left out, evidence never)."""
    _require_approved(result)
    findings = []
    for f in _findings(result):
        public = {**f, "item_name": context.item_names.get(f["item"], f["item"])}
        if f.get("measures"):  # each measure's kind in Chinese next to its code (责令改正, not order_correction)
            public["measures"] = [{**m, "label": MEASURE_LABELS.get(m.get("kind", ""), m.get("kind", ""))}
                                  for m in f["measures"]]
        findings.append(public)
    return {
        "plan_number": context.plan_number if context.random else "",
        "plan_name": context.plan_name if context.random else "",
        "task_number": context.task_number,
        "task_name": context.task_name,
        "type": context.type_name,
        "authority": context.authority,
        "department": department,
        "inspected_on": result.inspected_on,
        "credit_code": context.target_credit_code,
        "target_name": context.target_name,
        "findings": findings,
    }
