"""Vocabularies of inspection execution: result codes (configurable), follow-up measures, methods.

Result codes map onto the wording of 国家企业信用信息公示系统 (see ``docs/glossary.md``). The list is
configurable: :class:`ResultVocabulary` is a value an administrator replaces as a whole; findings store both
the code and the wording it had when recorded, so a later change of wording does not rewrite history.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from domain.errors import FieldProblem, InvalidInputError
from domain.values import InspectionMethod

__all__ = [
    "DEFAULT_RESULT_CODES",
    "DEFAULT_VOCABULARY",
    "FOLLOW_UP_VISIT_METHOD_LABELS",
    "INSPECTION_METHOD_LABELS",
    "MEASURE_LABELS",
    "OFF_SITE_METHODS",
    "FollowUpVisitMethod",
    "InspectionMethod",
    "Measure",
    "ResultCode",
    "ResultVocabulary",
    "is_off_site",
]

_CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class ResultCode:
    """One result: ``code`` (English id), ``wording`` (the publicity system's text), ``problem_found``."""

    code: str
    wording: str
    english: str = ""
    problem_found: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "wording": self.wording,
            "english": self.english,
            "problem_found": self.problem_found,
        }


DEFAULT_RESULT_CODES: tuple[ResultCode, ...] = (
    ResultCode("no_problem", "未发现问题", "no problem found"),
    ResultCode("corrected", "发现问题已责令改正", "problem found, corrected after order", True),
    ResultCode("follow_up_pending", "发现问题待后续处理", "problem found, follow-up pending", True),
    ResultCode(
        "not_disclosed", "未按规定公示应当公示的信息", "did not publish information it must publish", True
    ),
    ResultCode(
        "falsified", "公示信息隐瞒真实情况弄虚作假", "published information conceals or falsifies", True
    ),
    ResultCode("unreachable", "通过登记的住所无法联系", "cannot be reached at the registered address", True),
    ResultCode(
        "activity_not_found", "未发现开展本次抽查涉及的经营活动", "activity of this inspection not found"
    ),
    ResultCode("closed", "已关闭停业或正在组织清算", "closed or liquidating"),
    ResultCode("uncooperative", "不配合检查情节严重", "seriously uncooperative", True),
    ResultCode("deregistered", "注销/吊销/撤销/迁出", "deregistered, revoked, cancelled or moved out"),
)


class ResultVocabulary:
    """The configured result codes, in display order."""

    def __init__(self, codes: Iterable[ResultCode | Mapping[str, Any]] = DEFAULT_RESULT_CODES) -> None:
        problems: list[FieldProblem] = []
        out: list[ResultCode] = []
        for i, c in enumerate(codes):
            if isinstance(c, Mapping):
                unknown = [k for k in c if k not in ("code", "wording", "english", "problem_found")]
                problems += [
                    FieldProblem(f"codes[{i}].{k}", "unknown_field", "is not a field") for k in unknown
                ]
                c = ResultCode(
                    str(c.get("code", "")),
                    str(c.get("wording", "")).strip(),
                    str(c.get("english", "")).strip(),
                    bool(c.get("problem_found", False)),
                )
            if not c.code or not set(c.code) <= _CODE_CHARS or len(c.code) > 40:
                problems.append(
                    FieldProblem(f"codes[{i}].code", "format", "must be a-z, 0-9, _ (at most 40)")
                )
            if not c.wording or len(c.wording) > 100:
                problems.append(FieldProblem(f"codes[{i}].wording", "required", "must be 1..100 characters"))
            if any(o.code == c.code for o in out):
                problems.append(FieldProblem(f"codes[{i}].code", "duplicate", f"{c.code} is listed twice"))
            out.append(c)
        if not out:
            problems.append(FieldProblem("codes", "required", "must list at least one result code"))
        if problems:
            raise InvalidInputError(problems)
        self.codes: tuple[ResultCode, ...] = tuple(out)
        self._by_code = {c.code: c for c in out}

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str, field: str = "result") -> ResultCode:
        """The result code, or InvalidInputError naming ``field``."""
        if not isinstance(code, str) or code not in self._by_code:
            raise InvalidInputError(
                [FieldProblem(field, "choice", f"{code!r} is not one of: {', '.join(self._by_code)}")]
            )
        return self._by_code[code]

    def wording(self, code: str) -> str:
        return self.get(code).wording

    def as_list(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.codes]


DEFAULT_VOCABULARY = ResultVocabulary()


class Measure(str, Enum):
    """处置: follow-up measures of a finding."""

    NONE = "none"
    ORDER_CORRECTION = "order_correction"  # needs a deadline
    CASE_FILED = "case_filed"
    CASE_UNIT_TRANSFER = "case_unit_transfer"
    REFERRAL = "referral"
    COPY_NOTICE = "copy_notice"
    JUDICIAL_TRANSFER = "judicial_transfer"
    OTHER = "other"  # needs a note


MEASURE_LABELS: dict[str, str] = {
    Measure.NONE.value: "无需后续处置",
    Measure.ORDER_CORRECTION.value: "责令改正",
    Measure.CASE_FILED.value: "立案查处",
    Measure.CASE_UNIT_TRANSFER.value: "移交案件办理机构",
    Measure.REFERRAL.value: "移送其他部门",
    Measure.COPY_NOTICE.value: "抄告相关部门",
    Measure.JUDICIAL_TRANSFER.value: "移送司法机关",
    Measure.OTHER.value: "其他",
}

INSPECTION_METHOD_LABELS: dict[str, str] = {
    InspectionMethod.ON_SITE.value: "现场检查",
    InspectionMethod.DOCUMENTARY.value: "书面检查",
    InspectionMethod.TESTING.value: "检验检测",
    InspectionMethod.ONLINE_MONITORING.value: "在线监控",
    InspectionMethod.VIDEO.value: "视频监控",
    InspectionMethod.DRONE.value: "无人机",
    InspectionMethod.REMOTE_SENSING.value: "卫星遥感",
    InspectionMethod.POWER_USE_MONITORING.value: "用电监控",
    InspectionMethod.BIG_DATA.value: "大数据分析",
    InspectionMethod.ENTRUSTED_BODY.value: "委托专业机构",
}

OFF_SITE_METHODS: frozenset[str] = frozenset(
    m.value
    for m in (
        InspectionMethod.ONLINE_MONITORING,
        InspectionMethod.VIDEO,
        InspectionMethod.DRONE,
        InspectionMethod.REMOTE_SENSING,
        InspectionMethod.POWER_USE_MONITORING,
        InspectionMethod.BIG_DATA,
    )
)
"""非现场执法 methods."""


def is_off_site(methods: Iterable[str]) -> bool:
    """True when every method is off-site (an inspection done entirely 非现场)."""
    ms = list(methods)
    return bool(ms) and all(m in OFF_SITE_METHODS for m in ms)


class FollowUpVisitMethod(str, Enum):
    """执法回访 methods."""

    DIRECT_VISIT = "direct_visit"
    PHONE = "phone"
    QUESTIONNAIRE = "questionnaire"
    SYMPOSIUM = "symposium"
    LETTER = "letter"


FOLLOW_UP_VISIT_METHOD_LABELS: dict[str, str] = {
    FollowUpVisitMethod.DIRECT_VISIT.value: "直接回访",
    FollowUpVisitMethod.PHONE.value: "电话回访",
    FollowUpVisitMethod.QUESTIONNAIRE.value: "问卷调查",
    FollowUpVisitMethod.SYMPOSIUM.value: "组织座谈",
    FollowUpVisitMethod.LETTER.value: "信函回访",
}
