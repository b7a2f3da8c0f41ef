"""A demo county shaped like 获嘉县 (新乡市): six departments, their item lists, ~300 targets, ~30 inspectors.

``load_demo`` is idempotent: the data set is a pure function of ``seed`` (a local ``random.Random``; this
is demo generation, not a draw), items/targets/inspectors/experts go through ``import_entries`` (which
records only differences) and departments are registered only when missing. A second call stores nothing.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from domain.credit_code import ALPHABET, check_character
from domain.directory import entry_id
from services.application import CommandContext, ConflictError, DualRandom

if TYPE_CHECKING:
    from services.runtime import Runtime

CITY = "新乡市"
COUNTY = "获嘉县"
DIVISION = "410724"  # 获嘉县 administrative division code

DEPARTMENTS: list[dict[str, str]] = [
    {"code": "hj-eeb", "name": "新乡市生态环境局获嘉分局", "kind": "ecology", "contact": "李明", "phone": "0373-4551201"},
    {"code": "hj-amr", "name": "获嘉县市场监督管理局", "kind": "market", "contact": "孙悦", "phone": "0373-4551302"},
    {"code": "hj-em", "name": "获嘉县应急管理局", "kind": "emergency", "contact": "周凯", "phone": "0373-4551403"},
    {"code": "hj-nr", "name": "获嘉县自然资源局", "kind": "natural_resources", "contact": "吴宁", "phone": "0373-4551504"},
    {"code": "hj-wr", "name": "获嘉县水利局", "kind": "water", "contact": "郑波", "phone": "0373-4551605"},
    {"code": "hj-hc", "name": "获嘉县住房和城乡建设局", "kind": "housing", "contact": "冯涛", "phone": "0373-4551706"},
]

_EIA = "《中华人民共和国环境保护法》第二十四条"

# The 14 items of the 2024 plan (the 2024 notice, 附件), merged into one visit ("多项合一").
# (name, legal basis, methods, documents the enterprise prepares, needs an expert)
ECOLOGY_ITEMS: list[tuple[str, str, list[str], list[str], bool]] = [
    ("放射性污染防治监督检查",
     f"{_EIA}；《中华人民共和国放射性污染防治法》；《放射性同位素与射线装置安全和防护条例》",
     ["on_site", "documentary", "testing"],
     ["辐射安全许可证", "环评批复文件", "辐射工作人员培训合格证明", "个人剂量监测报告", "辐射安全年度评估报告"], True),
    ("水污染防治监督检查",
     f"{_EIA}；《中华人民共和国水污染防治法》第三十条；《排污许可管理条例》",
     ["on_site", "documentary", "testing", "online_monitoring"],
     ["排污许可证", "环评批复文件", "废水治理设施运行台账", "自行监测报告"], False),
    ("大气污染防治监督检查",
     f"{_EIA}；《中华人民共和国大气污染防治法》第二十九条；《排污许可管理条例》",
     ["on_site", "documentary", "testing", "online_monitoring", "drone"],
     ["排污许可证", "环评批复文件", "废气治理设施运行台账", "自行监测报告"], False),
    ("固体废物污染防治监督检查",
     f"{_EIA}；《中华人民共和国固体废物污染环境防治法》",
     ["on_site", "documentary"],
     ["一般工业固体废物管理台账", "危险废物管理计划", "危险废物管理台账", "危险废物转移联单"], False),
    ("噪声污染防治监督检查",
     f"{_EIA}；《中华人民共和国噪声污染防治法》",
     ["on_site", "testing"],
     ["排污许可证", "噪声自行监测报告"], False),
    ("污染源自动监控设施的现场监督检查",
     f"{_EIA}；《污染源自动监控设施现场监督检查办法》；《污染源自动监控管理办法》",
     ["on_site", "online_monitoring", "documentary"],
     ["自动监控设备运维记录", "自动监控设施验收材料", "比对监测报告", "数据有效性审核记录"], False),
    ("医疗废物污染防治监督检查",
     f"{_EIA}；《医疗废物管理条例》；《中华人民共和国固体废物污染环境防治法》",
     ["on_site", "documentary"],
     ["医疗废物管理台账", "医疗废物转移联单", "医疗废物处置协议"], False),
    ("危险废物经营单位监督检查",
     f"{_EIA}；《危险废物经营许可证管理办法》；《中华人民共和国固体废物污染环境防治法》",
     ["on_site", "documentary", "video"],
     ["危险废物经营许可证", "危险废物经营情况记录簿", "危险废物管理台账", "危险废物转移联单"], False),
    ("危险化学品监督检查",
     f"{_EIA}；《危险化学品安全管理条例》",
     ["on_site", "documentary"],
     ["危险化学品使用及贮存台账", "突发环境事件应急预案及备案表", "环评批复文件"], False),
    ("新化学物质监督检查",
     f"{_EIA}；《新化学物质环境管理登记办法》",
     ["on_site", "documentary", "entrusted_body"],
     ["新化学物质环境管理登记证", "新化学物质活动情况报告", "环境风险控制措施落实记录"], True),
    ("对废弃电器电子产品处理活动监督检查",
     f"{_EIA}；《废弃电器电子产品回收处理管理条例》",
     ["on_site", "documentary", "video"],
     ["废弃电器电子产品处理资格证书", "处理数据信息管理台账", "视频监控记录"], False),
    ("对企事业单位环境风险防范和环境安全隐患排查治理工作进行抽查或者突击检查",
     f"{_EIA}；《突发环境事件应急管理办法》",
     ["on_site", "documentary"],
     ["突发环境事件应急预案及备案表", "环境安全隐患排查治理档案", "应急演练记录"], False),
    ("对土壤污染防治监督检查",
     f"{_EIA}；《中华人民共和国土壤污染防治法》；《工矿用地土壤环境管理办法（试行）》",
     ["on_site", "documentary", "testing"],
     ["土壤污染隐患排查报告", "土壤和地下水自行监测报告"], False),
    ("对建设项目环境保护设施设计、施工、验收、投入生产或者使用情况，以及有关环境影响评价文件确定的其他"
     "环境保护措施落实情况进行现场检查",
     f"{_EIA}；《建设项目环境保护管理条例》；《建设项目竣工环境保护验收暂行办法》",
     ["on_site", "documentary", "remote_sensing"],
     ["环评批复文件", "竣工环境保护验收报告", "排污许可证"], False),
]

# (department, code prefix, [(name, category, legal basis, methods, documents)])
OTHER_ITEMS: list[tuple[str, str, list[tuple[str, str, str, list[str], list[str]]]]] = [
    ("hj-amr", "AMR", [
        ("企业公示信息的检查", "general", "《企业信息公示暂行条例》",
         ["documentary", "on_site"], ["营业执照", "年度报告", "财务报表"]),
        ("食品生产者生产活动的检查", "key", "《中华人民共和国食品安全法》；《食品生产许可管理办法》",
         ["on_site", "testing"], ["食品生产许可证", "原料进货查验记录", "出厂检验记录"]),
        ("特种设备生产、使用单位的监督检查", "key", "《中华人民共和国特种设备安全法》",
         ["on_site", "documentary"], ["特种设备使用登记证", "定期检验报告", "作业人员资格证书"]),
        ("工业产品生产许可证获证企业的检查", "general", "《中华人民共和国工业产品生产许可证管理条例》",
         ["on_site", "testing"], ["工业产品生产许可证", "产品检验报告"]),
    ]),
    ("hj-em", "EM", [
        ("危险化学品生产、经营企业安全生产的监督检查", "key",
         "《中华人民共和国安全生产法》；《危险化学品安全管理条例》",
         ["on_site", "documentary"], ["安全生产许可证", "危险化学品经营许可证", "安全评价报告"]),
        ("工贸企业安全生产的监督检查", "general", "《中华人民共和国安全生产法》",
         ["on_site", "documentary"], ["安全生产责任制文件", "安全培训记录", "隐患排查治理台账"]),
        ("生产经营单位应急预案的监督检查", "general", "《生产安全事故应急条例》；《生产安全事故应急预案管理办法》",
         ["documentary"], ["生产安全事故应急预案及备案证明", "应急演练记录"]),
        ("粉尘防爆安全的监督检查", "general", "《工贸企业粉尘防爆安全规定》",
         ["on_site"], ["粉尘防爆安全管理制度", "除尘系统检修维护记录"]),
    ]),
    ("hj-nr", "NR", [
        ("土地利用情况的检查", "general", "《中华人民共和国土地管理法》",
         ["on_site", "remote_sensing"], ["不动产权证书", "建设用地批准文件"]),
        ("矿产资源开采情况的检查", "general", "《中华人民共和国矿产资源法》",
         ["on_site", "drone"], ["采矿许可证", "矿产资源开发利用方案"]),
        ("耕地保护情况的检查", "general", "《中华人民共和国土地管理法》；《基本农田保护条例》",
         ["remote_sensing", "on_site"], ["设施农业用地备案材料"]),
    ]),
    ("hj-wr", "WR", [
        ("取水许可及取水计量设施的检查", "general", "《取水许可和水资源费征收管理条例》",
         ["on_site", "online_monitoring"], ["取水许可证", "取水计量设施检定证书", "取水台账"]),
        ("河道管理范围内建设活动的检查", "general", "《中华人民共和国河道管理条例》",
         ["on_site", "drone"], ["河道管理范围内建设项目批复"]),
        ("生产建设项目水土保持的检查", "general", "《中华人民共和国水土保持法》",
         ["on_site", "documentary"], ["水土保持方案批复", "水土保持设施验收材料"]),
    ]),
    ("hj-hc", "HC", [
        ("建筑施工企业安全生产的检查", "key", "《建设工程安全生产管理条例》",
         ["on_site", "documentary"], ["建筑施工企业安全生产许可证", "施工安全专项方案"]),
        ("燃气经营企业的检查", "key", "《城镇燃气管理条例》",
         ["on_site", "documentary"], ["燃气经营许可证", "安全检查记录"]),
        ("建筑工地扬尘污染防治的检查", "general", "《中华人民共和国大气污染防治法》；《河南省大气污染防治条例》",
         ["on_site", "video"], ["扬尘污染防治方案", "扬尘在线监测记录"]),
        ("房地产开发企业资质的检查", "general", "《房地产开发企业资质管理规定》",
         ["documentary"], ["房地产开发企业资质证书", "项目手续文件"]),
    ]),
]

TOWNS = ["城关镇", "亢村镇", "照镜镇", "黄堤镇", "中和镇", "徐营镇", "冯庄镇", "史庄镇", "太山镇", "位庄乡", "大新庄乡"]
_VILLAGES = ["东", "西", "南", "北", "前", "后", "大", "小"]
_ROADS = ["工业路", "纬一路", "纬三路", "经二路", "同盟路", "迎宾大道", "产业大道", "新兴路", "创业路", "太行路"]
_BRANDS = [
    "恒达", "鑫源", "华盛", "宏远", "金鼎", "润泽", "永兴", "天瑞", "豫北", "同心", "瑞丰", "丰华", "博远", "中原",
    "新宇", "福源", "泰和", "宏图", "盛鑫", "嘉禾", "百川", "聚源", "正阳", "鼎盛", "兴业", "华宇", "利民", "长城",
    "信诚", "腾飞", "康达", "宇通", "振华", "昌盛", "佳美", "和谐", "安泰", "东方", "晨光", "亿丰",
]
# industry -> (weight, name endings, tag candidates)
INDUSTRIES: dict[str, tuple[int, list[str], list[str]]] = {
    "化工": (14, ["化工有限公司", "精细化工有限公司", "化学有限公司"], ["hazardous_waste"]),
    "医药制造": (6, ["药业有限公司", "制药有限公司", "生物科技有限公司"], ["hazardous_waste"]),
    "金属制品": (14, ["金属制品有限公司", "机械制造有限公司", "铸造有限公司", "钢结构有限公司"], []),
    "造纸": (5, ["纸业有限公司", "包装材料有限公司"], []),
    "食品加工": (12, ["食品有限公司", "面业有限公司", "食品科技有限公司"], []),
    "建材": (14, ["建材有限公司", "新型建材有限公司", "水泥制品有限公司", "商砼有限公司"], []),
    "纺织": (8, ["纺织有限公司", "棉业有限公司"], []),
    "塑料制品": (7, ["塑业有限公司", "塑料制品有限公司"], []),
    "电镀": (3, ["表面处理有限公司", "电镀有限公司"], ["hazardous_waste"]),
    "家具制造": (5, ["家具有限公司", "木业有限公司"], []),
    "畜禽养殖": (6, ["牧业有限公司", "养殖专业合作社"], []),
    "医疗卫生": (3, ["医院有限公司", "口腔门诊部有限公司"], ["medical_waste", "radiation"]),
    "废旧物资回收": (3, ["再生资源回收利用有限公司", "环保科技有限公司"], ["hazardous_waste"]),
}

_SURNAMES = list("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎")
_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰飞鹏辉红建国志海波宁斌浩凯俊晨阳")

# department -> (inspectors, staff id prefix, certificate prefix, specialties)
INSPECTOR_PLAN: dict[str, tuple[int, str, str, list[str]]] = {
    "hj-eeb": (10, "EEB", "豫环执", ["大气", "水", "固体废物", "危险废物", "辐射", "噪声", "土壤", "自动监控", "环评"]),
    "hj-amr": (6, "AMR", "豫市监执", ["食品", "特种设备", "产品质量", "企业公示", "计量"]),
    "hj-em": (5, "EM", "豫应急执", ["危险化学品", "工贸安全", "粉尘防爆", "应急预案"]),
    "hj-nr": (3, "NR", "豫自然执", ["土地", "矿产", "耕地保护"]),
    "hj-wr": (3, "WR", "豫水执", ["取水", "河道", "水土保持"]),
    "hj-hc": (3, "HC", "豫建执", ["建筑施工", "燃气", "扬尘"]),
}

# The expert library's field each expert-needing item draws from.
EXPERT_FIELDS = {"放射性污染防治监督检查": "辐射安全", "新化学物质监督检查": "化学品环境管理"}

EXPERTS: list[dict[str, str]] = [
    {"code": "EX-01", "field": "辐射安全", "organisation": "河南省辐射环境安全技术中心"},
    {"code": "EX-02", "field": "化学品环境管理", "organisation": "河南师范大学环境学院"},
    {"code": "EX-03", "field": "环境监测", "organisation": "新乡市生态环境监测中心"},
    {"code": "EX-04", "field": "危险废物管理", "organisation": "新乡学院化学与材料工程学院"},
]

N_TARGETS = 300


def credit_code(rng: random.Random) -> str:
    """A valid unified social credit code of an enterprise registered in 获嘉县."""
    first17 = "91" + DIVISION + "".join(rng.choice(ALPHABET) for _ in range(9))
    return first17 + check_character(first17)


def demo_data(seed: int = 2024) -> dict[str, list[dict[str, Any]]]:
    """The demo data set as plain rows per kind (deterministic in ``seed``)."""
    rng = random.Random(seed)
    departments = [{**d, "city": CITY, "county": COUNTY} for d in DEPARTMENTS]
    items = _items()
    targets = _targets(rng)
    inspectors = _inspectors(rng, targets)
    experts = _experts(rng)
    return {"department": departments, "item": items, "target": targets, "inspector": inspectors,
            "expert": experts}


def load_demo(app: DualRandom, ctx: CommandContext, seed: int = 2024) -> dict[str, int]:
    """Load the demo county; idempotent. Returns the size of each directory in the data set and the number
    of events this call stored (0 when everything was already there)."""
    data = demo_data(seed)
    events = 0
    for dept in data["department"]:
        try:
            app.register("department", dept, ctx)
            events += 1
        except ConflictError:
            pass  # already there (the demo does not change departments someone may have edited)
    for kind in ("item", "target", "inspector", "expert"):
        rows = [(i, row) for i, row in enumerate(data[kind], start=2)]
        result = app.import_entries(kind, rows, ctx)
        events += result.events
    return {
        "departments": len(data["department"]),
        "items": len(data["item"]),
        "targets": len(data["target"]),
        "inspectors": len(data["inspector"]),
        "experts": len(data["expert"]),
        "events": events,
    }


# -- generation ------------------------------------------------------------------------------------------
def _items() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, (name, basis, methods, documents, expert) in enumerate(ECOLOGY_ITEMS, start=1):
        out.append({"department": "hj-eeb", "code": f"EEB-{n:03d}", "name": name, "category": "general",
                    "legal_basis": basis, "methods": methods, "documents": documents, "needs_expert": expert,
                    "expert_field": EXPERT_FIELDS.get(name, "")})
    for dept, prefix, items in OTHER_ITEMS:
        for n, (name, category, basis, methods, documents) in enumerate(items, start=1):
            out.append({"department": dept, "code": f"{prefix}-{n:03d}", "name": name, "category": category,
                        "legal_basis": basis, "methods": methods, "documents": documents, "needs_expert": False})
    return out


def _targets(rng: random.Random) -> list[dict[str, Any]]:
    industries = list(INDUSTRIES)
    weights = [INDUSTRIES[i][0] for i in industries]
    codes: set[str] = set()
    names: set[str] = set()
    out: list[dict[str, Any]] = []
    while len(out) < N_TARGETS:
        code = credit_code(rng)
        if code in codes:
            continue
        industry = rng.choices(industries, weights)[0]
        _, endings, tag_pool = INDUSTRIES[industry]
        prefix = rng.choice(["获嘉县", "获嘉县", "新乡市", "河南"])
        name = prefix + rng.choice(_BRANDS) + rng.choice([*_BRANDS[:20], ""]) + rng.choice(endings)
        if name in names:
            continue
        codes.add(code)
        names.add(name)
        town = rng.choice(TOWNS)
        if rng.random() < 0.6:
            address = f"{COUNTY}{town}{rng.choice(_ROADS)}{rng.randint(1, 299)}号"
        else:
            address = f"{COUNTY}{town}{rng.choice(_VILLAGES)}{rng.choice(_BRANDS)[0]}村{rng.randint(1, 12)}组"
        r = rng.random()
        supervision = "key" if r < 0.15 else ("special" if r > 0.95 else "general")
        risk_weights = [15, 35, 32, 18] if supervision == "key" else [35, 42, 17, 6]
        risk = rng.choices("ABCD", risk_weights)[0]
        tags: list[str] = []
        if supervision == "key":
            tags.append("key_pollutant_discharger")
            if rng.random() < 0.7:
                tags.append("off_site_monitored")
        elif rng.random() < 0.08:
            tags.append("off_site_monitored")
        for tag in tag_pool:
            if rng.random() < 0.6:
                tags.append(tag)
        if risk == "A" and rng.random() < 0.25:
            tags.append("positive_list")
        s = rng.random()
        status = "closed" if s < 0.03 else ("deregistered" if s < 0.045 else "active")
        out.append({
            "credit_code": code, "name": name, "address": address, "county": COUNTY, "town": town, "industry": industry,
            "supervision_class": supervision, "risk_class": risk, "tags": tags, "status": status,
        })
    return out


def _person(rng: random.Random, used: set[str]) -> str:
    while True:
        name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))
        if name not in used:
            used.add(name)
            return name


def _inspectors(rng: random.Random, targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    used: set[str] = set()
    out: list[dict[str, Any]] = []
    for dept, (count, prefix, cert, specialties) in INSPECTOR_PLAN.items():
        for n in range(1, count + 1):
            expired = len(out) % 9 == 4  # a few certificates have run out (they cannot be drawn)
            year = rng.randint(2022, 2023) if expired else rng.randint(2027, 2030)
            expiry = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            out.append({
                "department": dept,
                "staff_id": f"{prefix}-{n:02d}",
                "name": _person(rng, used),
                "certificate_no": f"{cert}{DIVISION}{rng.randint(0, 99999):05d}",
                "certificate_expiry": expiry,
                "specialties": rng.sample(specialties, k=min(len(specialties), rng.randint(1, 3))),
                "region": rng.choice(TOWNS),
                "active": rng.random() > 0.05,
                "conflicts": [],
            })
    # 回避: a few ecology inspectors declare a conflict of interest with a target (a relative works there).
    for inspector in out[:3]:
        inspector["conflicts"] = [str(entry_id("target", rng.choice(targets)["credit_code"]))]
    return out


def _experts(rng: random.Random) -> list[dict[str, Any]]:
    used: set[str] = set()
    return [{"department": "hj-eeb", "name": _person(rng, used), "conflicts": [], **e} for e in EXPERTS]


def load_demo_plan(runtime: Runtime) -> str:
    """The 2024 notice's plan for the ecology bureau (hj-eeb): four quarterly entries with all 14 items and its
    rules, and the first quarter's task run jointly with market regulation (hj-amr): committed, frozen, drawn
    and both departments' teams drawn. Idempotent: does nothing when the plan exists. Returns a summary line."""
    import uuid as _uuid

    from domain.access import Actor
    from domain.planning.plan import NOTICE_ITEMS, NOTICE_SCOPE, plan_id
    from domain.planning.rules import NOTICE_RULES, rules_to_dict
    from services.application import ConflictError, NotFoundError

    eeb = CommandContext(Actor("demo-planner-eeb", "hj-eeb", ("planner",)))
    amr = CommandContext(Actor("demo-planner-amr", "hj-amr", ("planner",)))
    try:
        runtime.plans.plan(plan_id("hj-eeb", 2024))
        return "the 2024 plan of hj-eeb exists already: nothing done"
    except NotFoundError:
        pass
    items = {d["name"]: d for d in demo_data()["item"] if d["department"] == "hj-eeb"}
    from domain.directory import InspectionItem

    ids = [str(InspectionItem.id_for({"department": "hj-eeb", "code": items[name]["code"]})) for name in NOTICE_ITEMS]
    try:
        plan = runtime.plans.draw_up_plan(eeb, "hj-eeb", 2024)
    except ConflictError:
        return "the 2024 plan of hj-eeb exists already: nothing done"
    for q, word in enumerate("一二三四", start=1):
        runtime.plans.add_plan_entry(eeb, _uuid.UUID(plan.id), {
            "name": f"新乡市生态环境局获嘉分局{word}季度随机抽查", "items": ids, "category": "general",
            "period": f"2024Q{q}", "rules": rules_to_dict(NOTICE_RULES), "scope": NOTICE_SCOPE})
    amr_item = next(str(InspectionItem.id_for({"department": "hj-amr", "code": d["code"]}))
                    for d in demo_data()["item"] if d["department"] == "hj-amr")
    task = runtime.task_opening.open_task(eeb, {"plan_entry": "2024001", "participants": {"hj-amr": [amr_item]}})
    tid = _uuid.UUID(task.id)
    import hashlib
    import secrets

    source = "演示数据（非真实开奖，仅供演示）"
    runtime.target_draws.commit(eeb, tid, source)
    shares = {"hj-eeb": (eeb, secrets.token_bytes(32)), "hj-amr": (amr, secrets.token_bytes(32))}
    for dept, (who, share) in shares.items():  # the demo plays both departments' planners
        runtime.target_draws.commit_share(who, tid, dept, hashlib.sha256(share).hexdigest())
    runtime.target_draws.freeze(eeb, tid)
    for dept, (who, share) in shares.items():
        runtime.target_draws.reveal_share(who, tid, dept, share.hex())
    gate, runtime.target_draws.checkpoint_gate = runtime.target_draws.checkpoint_gate, False
    try:  # demo data: no partner witnesses it, so the draw does not wait for a published checkpoint
        drawn = runtime.target_draws.draw_targets(eeb, tid, "demo", source)
    finally:
        runtime.target_draws.checkpoint_gate = gate
    import datetime as _dt

    visit_day = _dt.date(2024, 3, 12)  # the joint visit's agreed date (both departments' teams)
    runtime.teams.draw_inspectors(eeb, tid, "hj-eeb", visit_day)
    runtime.teams.draw_inspectors(amr, tid, "hj-amr", visit_day)
    runtime.runner.catch_up()
    return (f"plan {plan.id} (2024001..2024004); task {task.body['number']} {task.body['name']}: "
            f"{drawn.body['selected']} targets drawn, teams of hj-eeb and hj-amr drawn")





# -- the rest of the year ----------------------------------------------------------------------------------
DEMO_YEAR_PATHS = [
    ("年度抽查工作计划", "/api/v1/plans/{plan}/documents/annual-plan"),
    ("抽取结果及派发单", "/api/v1/tasks/{task}/documents/dispatch-sheet"),
    ("一次告知书", "/api/v1/assignments/{visit}/notices/pre-visit"),
    ("检查记录（生态环境）", "/api/v1/inspections/{inspection}/documents/record"),
    ("一表告知（结果告知书）", "/api/v1/assignments/{visit}/notices/result"),
    ("移送函", "/api/v1/referrals/{referral}/documents/letter"),
    ("涉嫌犯罪案件移送书", "/api/v1/referrals/{judicial}/documents/letter"),
    ("案件线索核查的检查记录", "/api/v1/inspections/{case_inspection}/documents/record"),
    ("执法回访记录", "/api/v1/follow-ups/{round}/documents/record"),
]
"""What a new user opens after ``dualrandom demo --with-plan`` (each also as ``?format=pdf``)."""


def _finding(result: str, description: str = "", measures: list[dict[str, Any]] | None = None,
             confidential: list[str] | None = None) -> dict[str, Any]:
    return {"result": result, "description": description, "measures": measures or [],
            "confidential": confidential or []}


def load_demo_year(runtime: Runtime) -> dict[str, str]:
    """The demo's first-quarter joint task carried through the year (after ``load_demo_plan``): the pre-visit
    notice, both departments' findings, review (one return), the result notice and its delivery, publication, a
    referral to emergency management and a judicial transfer, a case inspection from a monitoring clue, and the
    first quarter's follow-up round with one visit recorded. Idempotent: nothing is done when the visit has
    findings already. Returns the ids the documents are read under (``DEMO_YEAR_PATHS``)."""
    import uuid as _uuid

    from domain.access import Actor
    from domain.execution.inspection import inspection_id
    from domain.planning.plan import plan_id
    from services.application import NotFoundError

    eeb = CommandContext(Actor("demo-planner-eeb", "hj-eeb", ("planner",)))
    reviewers = {d: CommandContext(Actor(f"demo-reviewer-{d[3:]}", d, ("reviewer",))) for d in ("hj-eeb", "hj-amr")}
    plan = str(plan_id("hj-eeb", 2024))
    tasks = runtime.task_opening.list_tasks(eeb.actor, 2024, "hj-eeb", 10, 0)["items"]
    task = next(t for t in tasks if t.get("number") == "2024-001")
    tid = _uuid.UUID(task["id"])
    first = runtime.teams.drawn_list(eeb.actor, tid, None, 1)["visits"][0]
    aid = _uuid.UUID(first["assignment_id"])
    visit = runtime.teams.assignment_view(eeb.actor, aid)
    ids = {"plan": plan, "task": str(tid), "visit": str(aid),
           "inspection": str(inspection_id(aid, "hj-eeb")), "target": visit["target_id"]}
    try:
        done = runtime.inspections.inspection_view(eeb.actor, _uuid.UUID(ids["inspection"]))["state"] not in ("not_entered", "entered")
    except NotFoundError:
        done = False
    if done:
        return {**ids, **_demo_later_ids(runtime, eeb)}

    runtime.notices.issue_pre_visit_notice(eeb, aid, {"issued_on": "2024-03-04", "visit_from": "2024-03-11",
                                                      "visit_to": "2024-03-15"})
    # 谁检查、谁录入: each department's team leader enters its own items.
    eeb_items, amr_items = visit["items"]["hj-eeb"], visit["items"]["hj-amr"]
    eeb_findings = {i: _finding("no_problem") for i in eeb_items}
    eeb_findings[eeb_items[1]] = _finding(
        "corrected", "废水总排口在线监测设备未按规定校准，部分时段数据缺失",
        [{"kind": "order_correction", "deadline": "2024-04-12"}])
    eeb_findings[eeb_items[3]] = _finding(
        "follow_up_pending", "危险废物贮存库未设置防渗漏设施，液态危险化学品与危险废物混存",
        [{"kind": "referral", "note": "危险化学品储存问题移送县应急管理局"},
         {"kind": "judicial_transfer", "note": "涉嫌非法处置危险废物"}])
    leaders = {d: Actor(visit["teams"][d]["leader"], d, ("inspector",)) for d in ("hj-eeb", "hj-amr")}
    findings = {"hj-eeb": eeb_findings, "hj-amr": {i: _finding("no_problem") for i in amr_items}}
    for dept in ("hj-eeb", "hj-amr"):
        lead = CommandContext(leaders[dept])
        runtime.inspections.record_findings(lead, aid, dept, {
            "inspected_on": "2024-03-12", "methods": ["on_site", "documentary"], "findings": findings[dept]})
        iid = inspection_id(aid, dept)
        runtime.inspections.submit(lead, iid)
        if dept == "hj-eeb":
            runtime.inspections.return_(reviewers[dept], iid, "请写明整改期限的依据")
            runtime.inspections.submit(lead, iid)
        runtime.inspections.approve(reviewers[dept], iid, "2024-03-20")
    runtime.notices.issue_result_notice(eeb, aid, "2024-03-22")
    runtime.notices.record_result_delivered(eeb, aid, {"delivered_on": "2024-03-25", "method": "in_person",
                                                       "recipient": "企业环保负责人"})
    for dept in ("hj-eeb", "hj-amr"):
        runtime.inspections.publish(reviewers[dept], inspection_id(aid, dept), "2024-04-10")
    base = {"inspection_id": ids["inspection"], "item": eeb_items[3], "transferred_on": "2024-03-26"}
    referral = runtime.referrals.refer(eeb, {**base, "kind": "department", "to": "hj-em",
                                             "reason": "危险化学品储存不符合安全要求，属应急管理部门职责",
                                             "respond_by": "2024-04-09", "outcome_by": "2024-05-31"})
    em = CommandContext(Actor("demo-planner-em", "hj-em", ("planner",)))
    rid = _uuid.UUID(referral.id)
    runtime.referrals.referral_step(em, rid, "receipt", {"on": "2024-03-27", "reference": "获应急收〔2024〕7号"})
    runtime.referrals.referral_step(em, rid, "accept", {"on": "2024-03-28"})
    runtime.referrals.refer(eeb, {**base, "kind": "judicial", "to": "获嘉县公安局", "copy_to": "获嘉县人民检察院",
                                  "reason": "涉嫌非法处置危险废物，依据《环境保护行政执法与刑事司法衔接工作办法》移送",
                                  "respond_by": "2024-04-02"})
    # 个案检查: an online-monitoring alert on another enterprise opens a case task (never random).
    others = [t for t in runtime.teams.drawn_list(eeb.actor, tid, None, 50)["visits"]
              if t["target_id"] != ids["target"]]
    clue = runtime.clues.record_clue(eeb, {
        "source": "monitoring_alert", "department": "hj-eeb", "target_id": others[-1]["target_id"],
        "received_on": "2024-05-06", "method": "online_monitoring", "summary": "在线监测数据显示化学需氧量连续三日超标", "reference": "获环监〔2024〕12号",
        "items": [eeb_items[1]], "period": "2024Q2"})
    case = _uuid.UUID(clue["task"]["id"])
    runtime.runner.catch_up()
    runtime.teams.draw_inspectors(eeb, case, "hj-eeb")
    runtime.runner.catch_up()
    case_visit = runtime.teams.drawn_list(eeb.actor, case, None, 1)["visits"][0]
    caid = _uuid.UUID(case_visit["assignment_id"])
    case_lead = CommandContext(Actor(runtime.teams.assignment_view(eeb.actor, caid)["teams"]["hj-eeb"]["leader"],
                                     "hj-eeb", ("inspector",)))
    runtime.inspections.record_findings(case_lead, caid, "hj-eeb", {
        "inspected_on": "2024-05-08", "methods": ["on_site", "online_monitoring"], "findings": {eeb_items[1]: _finding(
            "follow_up_pending", "废水处理设施停运，化学需氧量超标排放", [{"kind": "case_filed"}])}})
    ciid = inspection_id(caid, "hj-eeb")
    runtime.inspections.submit(case_lead, ciid)
    runtime.inspections.approve(reviewers["hj-eeb"], ciid, "2024-05-10")
    runtime.inspections.publish(reviewers["hj-eeb"], ciid, "2024-05-20")
    # 执法回访: 10% of what was inspected in the first quarter, visited by someone who did not inspect it.
    runtime.runner.catch_up()
    source = "演示数据（非真实开奖，仅供演示）"
    rnd = runtime.follow_ups.plan_follow_up(eeb, "hj-eeb", "2024Q1", entropy_source=source)
    fid = _uuid.UUID(rnd.id)
    gate, runtime.follow_ups.gate.enabled = runtime.follow_ups.gate.enabled, False
    try:  # demo data: no partner witnesses it, so the draw does not wait for a published checkpoint
        selected = runtime.follow_ups.draw_follow_up(eeb, fid, "demo", source).body["selected"]
    finally:
        runtime.follow_ups.gate.enabled = gate
    # Recorded by a named inspector of the bureau who did not inspect the firm (回访须由未参与检查的人员进行), one on
    # no team of the quarter when there is one: the record names who visited (never an account id).
    teams_of = {a["target_id"]: {m for t in runtime.teams.assignment_view(eeb.actor, _uuid.UUID(a["assignment_id"]))
                                 ["teams"].values() for m in t.get("members", [])}
                for a in runtime.teams.drawn_list(eeb.actor, tid, None, 500)["visits"]}
    on_teams = set().union(*teams_of.values())
    staff = [i.id for i in runtime.lookups.staff("hj-eeb")[0] if i.active]
    visitor = next((i for i in staff if i not in on_teams), None) or next(
        i for i in staff if i not in teams_of.get(selected[0], set()))
    runtime.follow_ups.follow_up_step(CommandContext(Actor(visitor, "hj-eeb", ("inspector",))), fid, "visit", {
        "target_id": selected[0], "method": "phone", "visited_on": "2024-06-14",
        "opinions": "检查人员出示证件，检查规范，无意见"})
    runtime.runner.catch_up()
    return {**ids, **_demo_later_ids(runtime, eeb)}


def _demo_later_ids(runtime: Runtime, eeb: CommandContext) -> dict[str, str]:
    """The referrals, case inspection and follow-up round the demo year recorded (looked up, so a second run
    names the same ones)."""
    from domain.execution.inspection import inspection_id

    out: dict[str, str] = {}
    for r in runtime.referrals.list_referrals(eeb.actor, {"direction": "outgoing"}, 10, 0)["items"]:
        out["judicial" if r["kind"] == "judicial" else "referral"] = r["id"]
    for t in runtime.task_opening.list_tasks(eeb.actor, 2024, "hj-eeb", 10, 0)["items"]:
        if t.get("origin") == "case":
            import uuid as _uuid

            visit = runtime.teams.drawn_list(eeb.actor, _uuid.UUID(t["id"]), None, 1)["visits"][0]
            out["case_inspection"] = str(inspection_id(_uuid.UUID(visit["assignment_id"]), "hj-eeb"))
    rounds = runtime.follow_ups.list_follow_ups(eeb.actor, "hj-eeb")
    if rounds:
        out["round"] = rounds[0]["id"]
    return out


def server_base(host: str, port: int) -> str:
    """The address ``dualrandom serve`` answers on with these settings (DUALRANDOM_HOST, DUALRANDOM_PORT): a
    wildcard host (``0.0.0.0``, ``::``) is reached on the loopback address, an IPv6 host in brackets."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def demo_year_lines(runtime: Runtime, base: str | None = None) -> list[str]:
    """``load_demo_year`` and the documents it leaves to open, one line each (HTML; ``?format=pdf`` for PDF), on
    ``base`` (default: the server's address from the runtime's settings, ``server_base``)."""
    ids = load_demo_year(runtime)
    base = base or server_base(runtime.settings.host, runtime.settings.port)
    lines = ["the year: findings, review, result notice, publication, a referral and a judicial transfer, "
             "a case inspection from a clue and a follow-up round; documents to open on the server's address "
             f"{base} (DUALRANDOM_HOST, DUALRANDOM_PORT as `dualrandom serve` uses them; add ?format=pdf for PDF):"]
    lines += [f"  {title}: {base}{path.format(**ids)}" for title, path in DEMO_YEAR_PATHS]
    return lines


__all__ = ["CITY", "COUNTY", "DEMO_YEAR_PATHS", "DEPARTMENTS", "ECOLOGY_ITEMS", "credit_code", "demo_data", "demo_year_lines",
           "load_demo", "load_demo_plan", "load_demo_year", "server_base"]
