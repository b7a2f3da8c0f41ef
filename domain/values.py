"""Value vocabularies of the directories (一单两库 + 专家库)."""

from enum import Enum


class SupervisionClass(str, Enum):
    """重点/一般/特殊监管对象."""

    KEY = "key"
    GENERAL = "general"
    SPECIAL = "special"


class RiskClass(str, Enum):
    """信用风险分类: A low risk .. D high risk."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


class ItemCategory(str, Enum):
    """一般检查事项 / 重点检查事项."""

    GENERAL = "general"
    KEY = "key"


class TargetStatus(str, Enum):
    """Whether a target can still be drawn."""

    ACTIVE = "active"
    CLOSED = "closed"
    DEREGISTERED = "deregistered"


class InspectionMethod(str, Enum):
    """检查方式 (inspection methods)."""

    ON_SITE = "on_site"
    DOCUMENTARY = "documentary"
    TESTING = "testing"
    ONLINE_MONITORING = "online_monitoring"
    VIDEO = "video"
    DRONE = "drone"
    REMOTE_SENSING = "remote_sensing"
    POWER_USE_MONITORING = "power_use_monitoring"
    BIG_DATA = "big_data"
    ENTRUSTED_BODY = "entrusted_body"


class DepartmentKind(str, Enum):
    """What kind of regulator a department is."""

    ECOLOGY = "ecology"
    MARKET = "market"
    EMERGENCY = "emergency"
    NATURAL_RESOURCES = "natural_resources"
    HOUSING = "housing"
    WATER = "water"
    TAX = "tax"
    OTHER = "other"


class Role(str, Enum):
    """Roles a bearer token may carry."""

    ADMIN = "admin"
    PLANNER = "planner"
    INSPECTOR = "inspector"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"
    PARTNER = "partner"


KNOWN_TAGS = (
    "positive_list",  # 正面清单: stays in the pool, checked off-site first
    "off_site_monitored",  # 非现场执法: online monitoring installed
    "key_pollutant_discharger",
    "hazardous_waste",
    "medical_waste",
    "radiation",
)
