"""Reading the fields of a staff form (htmx posts ``application/x-www-form-urlencoded``) and turning the use cases'
refusals into problems a page shows in Chinese: the field, the rule, nothing changed."""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from litestar.exceptions import PermissionDeniedException

from domain.errors import DomainError, FieldProblem, InvalidInputError, PermissionDeniedError
from domain.text import control_character, normalise_newlines
from services.application import ConflictError, NotFoundError

T = TypeVar("T")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# The words of the rules, as the use cases name them, for people.
RULES = {
    "required": "必填", "format": "格式不符", "range": "超出范围", "type": "类型不符", "unknown": "未知",
    "state": "当前状态下不能办理", "checkpoint": "等待签名检查点", "conflict": "与现有记录冲突",
    "unknown_department": "部门不在名录中", "forbidden": "无权办理", "control": "含控制字符",
    "check_digit": "校验位错误", "choice": "须为规定的取值之一", "unique": "重复", "length": "长度不符",
}


@dataclass
class Outcome:
    """What a form's command did: its answer, or the problems (field, message in Chinese and the rule's own
    words), the status to answer with, and for a 409 with Retry-After the seconds to wait."""

    value: Any = None
    problems: list[tuple[str, str]] = field(default_factory=list)
    status: int = 200
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def text(data: Mapping[str, Any], name: str, *, max_len: int = 200, required: bool = False,
         problems: list[tuple[str, str]]) -> str:
    """A text field, trimmed; a missing required one, a too long one or a control character is a problem."""
    value = normalise_newlines(str(data.get(name, "") or "")).strip()
    if required and not value:
        problems.append((name, "必填"))
    elif len(value) > max_len:
        problems.append((name, f"不超过 {max_len} 个字"))
    elif control_character(value):
        problems.append((name, "不得含控制字符"))
    return value


def hex64(data: Mapping[str, Any], name: str, problems: list[tuple[str, str]]) -> str:
    """64 hexadecimal digits (a SHA-256 or 32 random bytes), lower-cased."""
    value = str(data.get(name, "") or "").strip().lower()
    if not _HEX64.match(value):
        problems.append((name, "须为 64 位十六进制数（0-9、a-f）"))
    return value


def described(p: FieldProblem) -> tuple[str, str]:
    rule = RULES.get(p.rule, p.rule)
    where = f"第 {p.row} 行 " if p.row is not None else ""
    return (p.field, f"{where}{rule}：{p.message}")


def attempt(command: Callable[[], T]) -> Outcome:
    """Run a use case's command; a refusal becomes problems (nothing was recorded) with the API's status."""
    try:
        return Outcome(command())
    except InvalidInputError as exc:
        return Outcome(problems=[described(p) for p in exc.problems] or [("request", exc.message)], status=422)
    except PermissionDeniedError as exc:
        return Outcome(problems=[described(p) for p in exc.problems] or [("actor", f"无权办理：{exc.message}")],
                       status=403)
    except PermissionDeniedException as exc:
        return Outcome(problems=[("actor", f"无权办理：{exc.detail}")], status=403)
    except NotFoundError as exc:
        return Outcome(problems=[("id", f"没有找到该记录：{exc}")], status=404)
    except ConflictError as exc:
        return Outcome(problems=[("request", f"与现有记录冲突，未作改动：{exc}")], status=409)
    except DomainError as exc:
        status = int(getattr(exc, "status", 422))
        retry = getattr(exc, "retry_after", None)
        problems = [described(p) for p in exc.problems] or [("request", exc.message)]
        return Outcome(problems=problems, status=status, retry_after=int(retry) if retry is not None else None)
