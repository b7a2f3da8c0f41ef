"""Deployment configuration (what the rules leave to each county) as an event-sourced aggregate with history.

One ``Configuration`` per deployment (a fixed id). Its settings, each defaulting to the 2024 notice's value, so a
deployment that never changed them behaves as before:

- ``joint_share_goal``: the joint-task share goal (rule ``joint_share``: joint / (own + joint) >= it), an exact
  ratio as text (``"3/5"``, ``"60%"`` and ``"0.6"`` are the same);
- ``baseline_rules``: the sampling rules every plan period is held to and the KPIs' coverage minimums are
  computed from (rules ``key_ratio``, ``general_ratio``, ``<class>_coverage``), as plan rules are written;
- ``result_codes``: the result vocabulary findings are recorded in (code, the publicity system's wording,
  English, ``problem_found``); ``no_problem`` stays (a "no problem found" result is what may not be referred).

Every change is an event (``Changed``: the changed settings and the reason) by an administrator; a finding keeps
the code and wording it was recorded with, so a later wording does not rewrite history.
"""

import uuid
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.access import Actor
from domain.directory import NAMESPACE, SHARED
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError
from domain.execution.vocabulary import DEFAULT_RESULT_CODES, ResultVocabulary
from domain.planning.rules import (
    NOTICE_MIN_JOINT_SHARE,
    NOTICE_RULES,
    SamplingRule,
    ratio_text,
    rules_from_dict,
    rules_to_dict,
    to_ratio,
)
from domain.values import Role

CONFIGURATION_ID = uuid.uuid5(NAMESPACE, "configuration:deployment")
REQUIRED_RESULT_CODE = "no_problem"

DEFAULTS: dict[str, Any] = {
    "joint_share_goal": ratio_text(NOTICE_MIN_JOINT_SHARE),
    "baseline_rules": rules_to_dict(NOTICE_RULES),
    "result_codes": [c.as_dict() for c in DEFAULT_RESULT_CODES],
}
SETTINGS = tuple(DEFAULTS)


def validate_settings(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The given settings in their stored form; InvalidInputError naming each bad field (nothing else kept)."""
    if not isinstance(changes, Mapping):
        raise InvalidInputError([FieldProblem("settings", "type", "must be an object")])
    problems: list[FieldProblem] = []
    out: dict[str, Any] = {}
    for key in changes:
        if key not in SETTINGS:
            problems.append(FieldProblem(key, "unknown_field", f"is not a setting; one of: {', '.join(SETTINGS)}"))
    if "joint_share_goal" in changes:
        try:
            out["joint_share_goal"] = ratio_text(to_ratio(changes["joint_share_goal"], "joint_share_goal"))
        except InvalidInputError as exc:
            problems.extend(exc.problems)
    if "baseline_rules" in changes:
        try:
            rules = rules_from_dict(changes["baseline_rules"])
            out["baseline_rules"] = rules_to_dict(rules)
        except InvalidInputError as exc:
            problems.extend(FieldProblem(f"baseline_{p.field}" if p.field.startswith("rules") else p.field,
                                         p.rule, p.message) for p in exc.problems)
    if "result_codes" in changes:
        raw = changes["result_codes"]
        try:
            if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, list):
                raise InvalidInputError([FieldProblem("codes", "type", "must be a list of result codes")])
            vocabulary = ResultVocabulary(raw)
            if REQUIRED_RESULT_CODE not in vocabulary:
                raise InvalidInputError([FieldProblem("codes", "required_code", f"must keep {REQUIRED_RESULT_CODE} "
                                                      "(未发现问题: the result that may not be referred)")])
            out["result_codes"] = vocabulary.as_list()
        except InvalidInputError as exc:
            problems.extend(FieldProblem("result_" + p.field, p.rule, p.message) for p in exc.problems)
    if problems:
        raise InvalidInputError(problems)
    return out


class Configuration(Aggregate):
    """The deployment's configurable rules and vocabulary (``settings``: every setting, defaults filled in)."""

    KIND: ClassVar[str] = "configuration"
    settings: dict[str, Any]

    @property
    def department(self) -> str:
        """Every department's: its events go to the shared subject, as the target directory's do."""
        return SHARED

    class Started(Aggregate.Created):
        """The configuration's first change: it starts from the defaults (``settings``)."""

        settings: dict[str, Any]

    class Changed(Aggregate.Event):
        """An administrator changed settings (``changes``: the new values of those that differ), with a reason."""

        changes: dict[str, Any]
        reason: str

    @staticmethod
    def create_id(**_: Any) -> uuid.UUID:
        return CONFIGURATION_ID

    @classmethod
    def start(cls) -> "Configuration":
        return cls(settings=dict(DEFAULTS))

    @event(Started)
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = dict(settings)

    def change(self, actor: Actor, changes: Mapping[str, Any], reason: str) -> dict[str, Any]:
        """Validate and record the settings that differ; returns them (empty: nothing recorded)."""
        require_configurer(actor)
        values = validate_settings(changes)
        why = reason.strip() if isinstance(reason, str) else ""
        if not why:
            raise InvalidInputError([FieldProblem("reason", "required", "a change of configuration needs a reason")])
        differ = {k: v for k, v in values.items() if self.settings.get(k) != v}
        if differ:
            self._changed(changes=differ, reason=why[:500])
        return differ

    @event(Changed)
    def _changed(self, changes: dict[str, Any], reason: str) -> None:
        self.settings.update(changes)


def require_configurer(actor: Actor) -> None:
    """Only an administrator changes the deployment's configuration."""
    if not actor.has(Role.ADMIN):
        raise PermissionDeniedError("only an administrator changes the deployment's configuration")


def joint_share_goal(settings: Mapping[str, Any]) -> Fraction:
    return to_ratio(settings.get("joint_share_goal", DEFAULTS["joint_share_goal"]), "joint_share_goal")


def baseline_rules(settings: Mapping[str, Any]) -> tuple[SamplingRule, ...]:
    return rules_from_dict(settings.get("baseline_rules", DEFAULTS["baseline_rules"]))


def result_vocabulary(settings: Mapping[str, Any]) -> ResultVocabulary:
    return ResultVocabulary(settings.get("result_codes", DEFAULTS["result_codes"]))


def baseline_minimums(rules: tuple[SamplingRule, ...]) -> dict[str, Fraction]:
    """Per supervision class, the per-quarter minimum ratio of its class-wide baseline rule (``full``: 1; no
    ratio: 0), as the KPIs' coverage reads it."""
    out: dict[str, Fraction] = {}
    for r in rules:
        if r.risk_class is None:
            out[r.supervision_class] = Fraction(1) if r.full else (Fraction(r.ratio) if r.ratio is not None else Fraction(0))
    return out
