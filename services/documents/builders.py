"""The printable documents built from what the reader may see: each reads through the use case that answers the
same data over the API (so the same authorisation: a 403 there is a 403 here), then names every enterprise,
person, item and department (names, credit codes, addresses, certificate numbers: never bare ids)."""

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from domain.access import Actor
from domain.documents import Block, Document, Fields, Heading, Signatures, Table, Text, date_cn
from domain.execution.notices import measures_text
from domain.execution.vocabulary import INSPECTION_METHOD_LABELS
from domain.planning.naming import period_words
from projections.directory.queries import inspector_entries
from services.infra.accounts_store import account_row
from services.usecases.lookups import Lookups

CATEGORY_WORDS = {"general": "一般检查事项", "key": "重点检查事项"}
CLASS_WORDS = {"key": "重点监管对象", "general": "一般监管对象", "special": "特殊监管对象"}
RISK_WORDS = {"A": "A类（低风险）", "B": "B类（一般风险）", "C": "C类（较高风险）", "D": "D类（高风险）"}
STATE_WORDS = {"not_entered": "未录入", "entered": "已录入", "awaiting_review": "待审核", "returned": "已退回",
               "approved": "已审核", "published": "已公示"}
FOLLOW_UP_METHODS = {"visit": "直接回访", "direct": "直接回访", "phone": "电话回访", "questionnaire": "问卷调查",
                     "symposium": "组织座谈", "letter": "信函回访"}
KIND_TITLES = {"department": "案件移送函", "judicial": "涉嫌犯罪案件移送书", "discipline": "问题线索移送函"}
WITHHELD = "（保密内容，无权查看）"
"""In place of a confidential field the reader may not read (the team, the department's reviewers and auditors do)."""
UNNAMED = "（未登记姓名）"
"""In place of a person's name when the recorded id is neither a directory entry nor an account (never the id)."""
DRAWN_PAGE = 500


def _percent(value: Any) -> str:
    text = f"{float(value) * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def rule_text(rule: Mapping[str, Any]) -> str:
    """A plan rule as the 2024 notice writes it: ``重点监管对象抽查比例不低于25%``."""
    who = CLASS_WORDS.get(str(rule.get("supervision_class")), str(rule.get("supervision_class") or "检查对象"))
    if rule.get("risk_class"):
        who += f"中信用风险{RISK_WORDS.get(str(rule['risk_class']), rule['risk_class'])}"
    if rule.get("full"):
        return f"{who}全部抽查"
    bounds = []
    if rule.get("min_ratio") not in (None, ""):
        bounds.append(f"抽查比例不低于{_percent(rule['min_ratio'])}")
    if rule.get("min_per_inspector"):
        bounds.append(f"不少于人均{rule['min_per_inspector']}家次")
    if not bounds:
        return f"{who}根据实际自行设定"
    joiner = "或" if rule.get("combine", "either") == "either" else "且"
    return who + joiner.join(bounds) + ("（每年一次）" if rule.get("once_a_year") else "")


def scope_text(scope: Mapping[str, Any] | None) -> str:
    """An entry's or task's object scope in words (its description when it has one)."""
    if not scope:
        return "全县检查对象"
    if scope.get("description"):
        return str(scope["description"])
    parts = [str(scope.get("county") or "全县")]
    if scope.get("industries"):
        parts.append("行业：" + "、".join(scope["industries"]))
    if scope.get("supervision_classes"):
        parts.append("、".join(CLASS_WORDS.get(c, c) for c in scope["supervision_classes"]))
    if scope.get("risk_classes"):
        parts.append("信用风险" + "、".join(scope["risk_classes"]) + "类")
    if scope.get("tags"):
        parts.append("标签：" + "、".join(scope["tags"]))
    return "；".join(parts)




class DocumentBuilder:
    """Builds each printable document for an actor from the use cases' views (``runtime`` holds them)."""

    def __init__(self, runtime: Any, engine: Engine, lookups: Lookups) -> None:
        self.rt = runtime
        self.engine = engine
        self.lookups = lookups

    # -- names ---------------------------------------------------------------------------------------------
    def _target(self, target_id: str) -> dict[str, str]:
        data = self.lookups.target(target_id)
        return {"name": str(data.get("name") or "（名录中无此对象）"), "credit_code": str(data.get("credit_code") or ""),
                "address": str(data.get("address") or "")}

    def _people(self, ids: Sequence[str], leader: str | None = None,
                found: Mapping[str, Mapping[str, Any]] | None = None) -> str:
        """``name（执法证号：…）`` per person, the leader marked, one a line (``found``: looked up already)."""
        found = found if found is not None else self.lookups.people(ids)
        lines = []
        for i in ids:
            p = found.get(i, {})
            if p.get("kind") == "expert":
                lines.append(f"{p.get('name', i)}（专家，{p.get('organisation') or p.get('field') or ''}）")
            else:
                cert = p.get("certificate_no") or "未登记"
                lines.append(f"{p.get('name', i)}（{'组长，' if i == leader else ''}执法证号：{cert}）")
        return "\n".join(lines)

    def _who(self, person: str) -> str:
        """Who recorded something, by name, never an id: the inspector's (or expert's) name; for an account, the
        name of the inspector it is linked to, else its display name; else ``UNNAMED``."""
        if not person:
            return ""
        found = self.lookups.people([person])
        if person in found:
            return str(found[person].get("name") or UNNAMED)
        with self.engine.connect() as conn:
            row = account_row(conn, account_id=person)
            linked = inspector_entries(conn, row.department, row.inspector) if row is not None and row.inspector else []
        named = self.lookups.people(linked[:1])
        if linked and named.get(linked[0], {}).get("name"):
            return str(named[linked[0]]["name"])
        return str(row.display_name) if row is not None and row.display_name else UNNAMED

    @staticmethod
    def _department_sign(name: str, on: Any) -> Text:
        return Text(f"{name}\n{date_cn(on)}", "signature")

    # -- 年度抽查工作计划 ------------------------------------------------------------------------------------
    def annual_plan(self, actor: Actor, pid: uuid.UUID) -> Document:
        plan = self.rt.plans.plan_view(actor, pid)
        item_ids = [i for e in plan["entries"] for i in e.get("items", [])]
        items = self.lookups.items(item_ids)
        rows: list[tuple[str, ...]] = []
        previous: list[str] | None = None
        for e in plan["entries"]:
            names = [str(items.get(i, {}).get("name", i)) for i in e.get("items", [])]
            listed = "\n".join(f"{n}.{name}" for n, name in enumerate(names, start=1))
            if len(names) > 1:
                listed = "根据抽查对象所涉及的事项，采取多项合一的抽查检查方式：\n" + listed
            if e.get("items") == previous:  # as the 2024 notice's table: the same items are not listed again
                listed = f"同{rows[-1][0]}"
            previous = e.get("items")
            ratio = "；".join(rule_text(r) for r in e.get("rules", []))
            totals: dict[str, int] = {}
            for stratum, q in (e.get("quotas") or {}).items():
                cls = stratum.split("/")[0]
                totals[cls] = totals.get(cls, 0) + int(q.get("quota") or 0)
            if totals:
                ratio += "。\n按当前名录至少抽取：" + "，".join(
                    f"{CLASS_WORDS.get(c, c)}{n}家" for c, n in totals.items() if n)
            rows.append((e["number"], e.get("name", ""), listed, CATEGORY_WORDS.get(e.get("category", ""), ""),
                         scope_text(e.get("scope")), ratio, period_words(e["period"]).removeprefix(f"{plan['year']}年")))
        dept = self.lookups.department_names([plan["department"]])[plan["department"]]
        blocks: list[Block] = [Table(("序号", "抽查计划名称", "抽查事项", "事项类别", "抽查对象范围", "抽查比例", "抽查时间"),
                                     tuple(rows), (1.3, 2.2, 5.5, 1.3, 2.2, 3.4, 1.2))]
        if not rows:
            blocks.append(Text("本计划尚无条目。", "note"))
        notes = ["每季度开展抽查任务数不少于1次；部门联合抽查任务数占比力争达到60%以上。",
                 "抽查事项整合，一次检查覆盖对象涉及的所有事项，减少对监管对象的检查频次。"]
        for e in plan["entries"]:
            for adj in e.get("adjustments") or []:
                notes.append(f"{e['number']}比例调整：{adj.get('reason', '')}")
        blocks.append(Text("备注：\n" + "\n".join(f"{n}. {t}" for n, t in enumerate(notes, start=1)), "note"))
        blocks.append(self._department_sign(dept, self.rt.clock.today()))
        return Document(plan.get("name") or f"{dept}{plan['year']}年随机抽查工作计划", tuple(blocks), landscape=True)

    # -- 抽取结果及派发单 ------------------------------------------------------------------------------------
    def dispatch_sheet(self, actor: Actor, tid: uuid.UUID) -> Document:
        first = self.rt.teams.drawn_list(actor, tid, None, DRAWN_PAGE)  # the drawn list's authorisation
        task = self.rt.task_opening.task_view(actor, tid)  # whoever reads (part of) the drawn list reads the task
        visits = list(first["visits"])
        cursor = first.get("next_cursor")
        while cursor:
            page = self.rt.teams.drawn_list(actor, tid, cursor, DRAWN_PAGE)
            visits += page["visits"]
            cursor = page.get("next_cursor")
        teams: Mapping[str, Any] | None = first.get("teams")
        lead = str(task.get("lead") or "")
        departments = list(task.get("departments") or [])
        names = self.lookups.department_names([lead, *departments] if lead else departments)
        per_visit = [self._visit_teams(actor, v, teams) for v in visits]
        people = self.lookups.people([m for vt in per_visit for t in vt.values()
                                      for m in [*t.get("members", []), *t.get("experts", [])]])  # one lookup
        rows = []
        for n, (v, vt) in enumerate(zip(visits, per_visit, strict=True), start=1):
            cell = "\n".join(
                f"{names.get(d, d)}：\n{self._people(t.get('members', []) + t.get('experts', []), t.get('leader'), people)}"
                for d, t in vt.items()) or "（检查组尚未抽取）"
            days = sorted({str(t.get("visit_date") or "") for t in vt.values()} - {""})
            rows.append((str(n), v.get("target_name", ""), v.get("credit_code", ""), v.get("address", ""), cell,
                         "\n".join(date_cn(d) for d in days)))
        record = first.get("record") or {}
        pairs: list[tuple[str, str]] = [
            ("任务编号", f"{lead}-{task.get('number')}" if lead else str(task.get("number") or "")),
            ("任务名称", str(task.get("name") or "")),
            ("牵头部门", names.get(lead, lead)),
            ("参与部门", "、".join(names.get(d, d) for d in departments)),
            ("抽查时间", period_words(task["period"]) if task.get("period") else ""),
            ("计划条目", str(task.get("plan_entry") or "计划外")),
            ("抽取方式", "随机抽取（双随机）" if task.get("is_random", True) else "案件线索核查（非随机，对象指定）"),
            ("抽取轮次", str(first.get("round") or "")),
            ("公共随机源", str(record.get("entropy_source") or "")),
            ("随机源公布值", str(record.get("external_entropy") or "")),
            ("种子承诺值（SHA-256）", str(record.get("commitment") or "")),
            ("检查对象数", str(len(visits))),
            ("对象范围", scope_text(task.get("scope"))),
        ]
        blocks: list[Block] = [
            Text("本名单在检查实施前保密，不得向检查对象泄露。", "note"),
            Fields(tuple(pairs)),
            Heading("抽取结果及检查组派发"),
            Table(("序号", "被检查单位", "统一社会信用代码", "地址", "检查组（组长、组员及执法证号）", "检查日期"),
                  tuple(rows), (1, 3, 2.6, 3, 5, 1.8), numbered=True),
            Text("抽取过程全程留痕，任何人可按公开记录复核（GET /api/v1/tasks/{id}/draw/verification）。", "note"),
            Signatures((("抽取人", ""), ("监督人", ""),
                        *[(f"{names.get(d, d)}派发负责人", "") for d in departments])),
        ]
        return Document("抽查任务抽取结果及派发单", tuple(blocks), landscape=True)

    def _visit_teams(self, actor: Actor, visit: Mapping[str, Any],
                     teams: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
        """Per department, the visit's team ``{leader, members, experts, visit_date}``: from the draw's teams when
        the reader sees the whole list, else from the visit itself (an inspector reads their own visits)."""
        target = visit["target_id"]
        if teams is not None:
            return {d: {**(drawn.get("teams") or {}).get(target, {}), "visit_date": drawn.get("visit_date")}
                    for d, drawn in teams.items() if target in (drawn.get("teams") or {})}
        a = self.rt.teams.assignment_view(actor, uuid.UUID(visit["assignment_id"]))
        return {d: {**t, "visit_date": a.get("visit_date")} for d, t in (a.get("teams") or {}).items()}

    # -- 检查记录 ------------------------------------------------------------------------------------------
    def inspection_record(self, actor: Actor, iid: uuid.UUID) -> Document:
        insp = self.rt.inspections.inspection_view(actor, iid)
        target = self._target(insp["target_id"])
        task = self.rt.task_opening.task(uuid.UUID(insp["task_id"]))
        dept = self.lookups.department_names([insp["department"], task.lead])
        items = self.lookups.items(insp["items"])
        team = list(insp.get("team") or [])
        a = self.rt.teams.assignment(uuid.UUID(insp["assignment_id"]))
        leader = (a.teams.get(insp["department"]) or {}).get("leader") if a is not None else None
        case = not task.is_random
        rows = []
        for n, f in enumerate(insp.get("findings") or [], start=1):
            rows.append((str(n), str(items.get(f["item"], {}).get("name", f["item"])), f.get("result_wording", ""),
                         f.get("description", WITHHELD),
                         measures_text(f.get("measures")) if "measures" in f else WITHHELD))
        pairs = [
            ("被检查单位", target["name"]), ("统一社会信用代码", target["credit_code"]),
            ("地址", target["address"]), ("检查部门", dept[insp["department"]]),
            ("抽查任务", f"{task.lead}-{task.number} {task.name}"),
            ("任务类型", "案件线索核查（非随机）" if case else ("部门联合随机抽查" if task.is_joint else "随机抽查")),
            ("检查日期", date_cn(insp.get("inspected_on")) or "（未录入）"),
            ("检查方式", "、".join(insp.get("method_labels") or [INSPECTION_METHOD_LABELS.get(m, m)
                                                               for m in insp.get("methods", [])])),
            ("检查人员", self._people(team, leader) or "（未派发）"),
            ("审核状态", STATE_WORDS.get(insp.get("state", ""), insp.get("state", ""))
             + (f"（{date_cn(insp['approved_on'])}审核通过）" if insp.get("approved_on") else "")
             + (f"（{date_cn(insp['published_on'])}公示）" if insp.get("published_on") else "")),
        ]
        blocks: list[Block] = [
            Fields(tuple(pairs)),
            Heading("检查事项及结果"),
            Table(("序号", "检查事项", "检查结果", "发现的问题", "处置措施"), tuple(rows), (1.1, 4, 2.2, 4.5, 3.5),
                  numbered=True),
        ]
        if not rows:
            blocks.append(Text("尚未录入检查结果。", "note"))
        blocks.append(Text("被检查单位对检查记录无异议的，请核对后签字确认；有异议的，请写明意见。", "note"))
        signers = [("检查人员", n) for n in self._people(team).split("\n") if n]
        blocks.append(Signatures((*signers, ("被检查单位负责人", ""), ("审核人", ""))))
        title = "案件线索核查检查记录" if case else "“双随机、一公开”抽查检查记录"
        return Document(title, tuple(blocks))

    # -- 移送函 / 涉嫌犯罪案件移送书 ---------------------------------------------------------------------------
    def referral_letter(self, actor: Actor, rid: uuid.UUID) -> Document:
        r = self.rt.referrals.referral_view(actor, rid)
        names = r.get("names") or {}
        src = r["source"]
        target = (names.get("targets") or {}).get(src["target_id"]) or self._target(src["target_id"])
        item = (names.get("items") or {}).get(src["item"], {}).get("name", "")
        frm = (names.get("departments") or {}).get(r["from_department"], r["from_department"])
        to = (names.get("departments") or {}).get(r["to"], r["to"]) if r["kind"] == "department" else r["to"]
        f = r.get("finding") or {}
        reason = str(r.get("reason") or "").rstrip("。；;. ")
        title = KIND_TITLES.get(r["kind"], "移送函")
        number = f"{r['from_department']}-移-{str(r['transferred_on'])[:4]}-{str(r['id'])[:8]}"
        when = date_cn(f.get("inspected_on")) or "近日"
        who = f"{target.get('name', '')}（统一社会信用代码：{target.get('credit_code', '')}，地址：{target.get('address', '')}）"
        if r["kind"] == "judicial":
            body = (f"{frm}于{when}在“双随机、一公开”抽查检查中发现，{who}在“{item}”事项中存在下列问题，"
                    f"涉嫌犯罪。{reason}。根据《行政执法机关移送涉嫌犯罪案件的规定》，现将该案移送你单位，"
                    "请依法审查，并将是否立案的决定书面告知我单位。")
        elif r["kind"] == "discipline":
            body = (f"{frm}在执法工作中发现下列问题线索，涉及{who}。{reason}。"
                    "现移送你单位依规处理，并请将处理情况反馈我单位。")
        else:
            body = (f"{frm}于{when}在“双随机、一公开”抽查检查中发现，{who}在“{item}”事项中存在下列问题。"
                    f"{reason}。根据有关规定，现移送你单位依法处理。")
        deadlines = []
        if r.get("respond_by"):
            deadlines.append(f"请于{date_cn(r['respond_by'])}前回复受理情况")
        if r.get("outcome_by"):
            deadlines.append(f"于{date_cn(r['outcome_by'])}前反馈处理结果")
        if deadlines:
            body += "，".join(deadlines) + "。"
        pairs = [
            ("被检查单位", target.get("name", "")), ("统一社会信用代码", target.get("credit_code", "")),
            ("地址", target.get("address", "")), ("检查事项", item),
            ("检查日期", date_cn(f.get("inspected_on"))), ("检查结果", str(f.get("result_wording") or "")),
            ("发现的问题", str(f.get("description") or "")), ("已采取的处置措施", measures_text(f.get("measures"))),
        ]
        blocks: list[Block] = [Text(f"文号：{number}", "meta"), Text(f"{to}：", "salutation"), Text(body),
                               Fields(tuple(pairs), per_row=1)]
        attachments = [d.get("name", d.get("sha256", "")) for d in (r.get("documents") or [])]
        attachments += [e.get("name", "") for e in (f.get("evidence") or [])]
        if attachments:
            blocks.append(Text("附件：\n" + "\n".join(f"{n}. {a}" for n, a in enumerate(attachments, start=1)), "meta"))
        if r.get("copy_to"):
            blocks.append(Text(f"抄送：{r['copy_to']}", "meta"))
        blocks.append(Text("本函涉及的检查情况含被检查单位的商业秘密的，接收单位应依法保密，不予公开。", "note"))
        blocks.append(self._department_sign(frm, r["transferred_on"]))
        blocks.append(Heading("移送回执"))
        receipt = r.get("receipt") or {}
        blocks.append(Fields((("接收单位", to), ("收文编号", str(receipt.get("reference") or "")),
                              ("接收日期", date_cn(receipt.get("on")))), per_row=1))
        blocks.append(Signatures((("接收人", ""),)))
        return Document(title, tuple(blocks))

    # -- 执法回访记录 ----------------------------------------------------------------------------------------
    def follow_up_record(self, actor: Actor, rid: uuid.UUID) -> Document:
        r = self.rt.follow_ups.follow_up_view(actor, rid)
        dept = self.lookups.department_names([r["department"]])[r["department"]]
        targets = self.lookups.target_data(list(r.get("selected") or []))
        rows = []
        n = 0
        for t in r.get("selected") or []:
            data = targets.get(t, {})
            who = f"{data.get('name', '')}\n{data.get('credit_code', '')}\n{data.get('address', '')}"
            rec = (r.get("visits") or {}).get(t) or {}
            visits = rec.get("visits") or [{}]
            for v in visits:
                n += 1
                opinions = v.get("opinions")
                escalations = rec.get("escalations")
                esc = ("（无权查看）" if escalations is None else
                       "\n".join(f"{date_cn(e.get('on'))} {e.get('authority', '')}：{e.get('reason', '')}"
                                 for e in escalations))
                rows.append((str(n), who, FOLLOW_UP_METHODS.get(str(v.get("method") or ""), str(v.get("method") or "")),
                             date_cn(v.get("visited_on")) or "（未回访）", self._who(str(v.get("by") or "")),
                             ("（保密，仅审核人员及记录人可见）" if opinions is None and v else str(opinions or "")),
                             str(v.get("problems") or ""), esc))
        draw = r.get("draw") or {}
        pairs = [("回访部门", dept), ("回访期间", period_words(r["period"])),
                 ("回访比例", f"{_percent(r['ratio'])}（应回访{r.get('quota', 0)}家，抽取范围{len(r.get('pool') or [])}家）"),
                 ("公共随机源", _declared_source(r.get("entropy_source"))),
                 ("随机源公布值", str(draw.get("external_entropy") or "") or ("（尚未抽取）" if not draw else "（无）"))]
        blocks: list[Block] = [
            Fields(tuple(pairs)),
            Table(("序号", "回访对象", "回访方式", "回访日期", "回访人", "回访对象意见", "发现的问题", "纪检监察"),
                  tuple(rows), (1, 4, 1.6, 2, 1.6, 3.5, 2.5, 2.5), numbered=True),
            Text("回访对象提出的意见严格保密；回访中发现的问题及时报告，情节严重的交纪检监察部门查处，"
                 "并将处理情况反馈回访对象。", "note"),
            Signatures((("回访人", ""), ("回访对象", ""))),
        ]
        return Document("执法回访记录", tuple(blocks), landscape=True)


def _declared_source(source: object) -> str:
    """The entropy source a follow-up round declared with its commitment, in words."""
    if source is None:
        return "（计划时未声明，早于随机源声明规则）"
    return str(source) or "（未声明：抽取不使用公共随机源）"
