"""Task names (the naming rule): 新乡市 + 县区名称 + 部门名称 + 时间 + 任务类型, generated and checked.

The rule, made exact: ``city + county + department + time + task type`` where ``department`` is the
department's name with a leading city name removed and then a leading county name removed. Department
names usually carry their own city (新乡市生态环境局获嘉分局) or county (获嘉县市场监督管理局); without the
stripping the name would say the city twice, and the county would not come right after the city. So
(city=新乡市, county=获嘉县, department=新乡市生态环境局获嘉分局, 2024Q1, 一般检查事项随机抽查) gives
``新乡市获嘉县生态环境局获嘉分局2024年第一季度一般检查事项随机抽查``, the 2024 notice's example.

Time: ``2024年第一季度`` (quarter), ``2024年3月`` (month), ``2024年上半年``/``2024年下半年`` (half),
``2024年度`` (year).
"""

from domain.errors import FieldProblem, InvalidInputError
from domain.planning.rules import Period, PeriodKind, parse_period
from domain.values import ItemCategory

NAMING_RULE = "新乡市+县区名称+部门名称+时间+任务类型"

GENERAL_TASK = "一般检查事项随机抽查"
KEY_TASK = "重点检查事项随机抽查"
JOINT_TASK = "部门联合随机抽查"
CASE_TASK = "案件线索核查"
"""A case-triggered task (个案检查 from a clue) is not a random check: its name must not say 随机抽查."""
TASK_TYPES = (GENERAL_TASK, KEY_TASK, JOINT_TASK, CASE_TASK)

_QUARTERS = "一二三四"


def task_type(category: str, *, joint: bool = False, case: bool = False) -> str:
    """The task type of a task: 案件线索核查 for a case-triggered task (never a 随机抽查 name), 部门联合随机抽查
    when joint, else by item category (general/key)."""
    if case:
        return CASE_TASK
    if joint:
        return JOINT_TASK
    if category == ItemCategory.KEY.value:
        return KEY_TASK
    if category == ItemCategory.GENERAL.value:
        return GENERAL_TASK
    raise InvalidInputError([FieldProblem("category", "choice", "must be one of: general, key")])


def period_words(period: Period | str) -> str:
    """``2024年第一季度`` / ``2024年3月`` / ``2024年上半年`` / ``2024年度``."""
    p = parse_period(period)
    if p.kind is PeriodKind.QUARTER:
        return f"{p.year}年第{_QUARTERS[p.index - 1]}季度"
    if p.kind is PeriodKind.MONTH:
        return f"{p.year}年{p.index}月"
    if p.kind is PeriodKind.HALF:
        return f"{p.year}年{'上' if p.index == 1 else '下'}半年"
    return f"{p.year}年度"


def department_part(city: str, county: str, department_name: str) -> str:
    """The department's name without a leading city, then without a leading county."""
    return department_name.strip().removeprefix(city).removeprefix(county)


def task_name(city: str, county: str, department_name: str, period: Period | str, task_type: str) -> str:
    """The rule-conforming name of a task; every empty part is refused, naming its field."""
    parts = {"city": city, "county": county, "department_name": department_name, "task_type": task_type}
    problems = [
        FieldProblem(field, "required", "must not be empty")
        for field, value in parts.items()
        if not isinstance(value, str) or not value.strip()
    ]
    if problems:
        raise InvalidInputError(problems)
    city, county, task_type = city.strip(), county.strip(), task_type.strip()
    department = department_part(city, county, department_name)
    if not department:
        raise InvalidInputError(
            [FieldProblem("department_name", "required", "is only a city or county name")]
        )
    return f"{city}{county}{department}{period_words(period)}{task_type}"


def check_task_name(
    name: str, city: str, county: str, department_name: str, period: Period | str, task_type: str
) -> None:
    """Refuse a given task name that is not the one the naming rule gives (surrounding spaces aside)."""
    expected = task_name(city, county, department_name, period, task_type)
    if not isinstance(name, str) or name.strip() != expected:
        raise InvalidInputError(
            [
                FieldProblem(
                    "name",
                    "naming_rule",
                    f"task names follow the rule “{NAMING_RULE}”: expected “{expected}”",
                )
            ]
        )
