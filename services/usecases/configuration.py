"""The deployment's configuration (goals, baseline rules, result vocabulary): read by the plan checks, the KPIs
and the findings; changed by an administrator as events, with history."""

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from domain.access import Actor
from domain.configuration import (
    CONFIGURATION_ID,
    DEFAULTS,
    Configuration,
    baseline_minimums,
    baseline_rules,
    joint_share_goal,
    require_configurer,
    result_vocabulary,
)
from domain.execution.vocabulary import ResultVocabulary
from domain.planning.rules import SamplingRule
from domain.values import Role
from services.application import CommandContext, ConflictError
from services.usecases.common import Done, UseCase


@dataclass(frozen=True)
class Settings:
    """The configuration as the rules read it."""

    version: int
    values: dict[str, Any]

    @property
    def joint_share_goal(self) -> Fraction:
        return joint_share_goal(self.values)

    @property
    def baseline(self) -> tuple[SamplingRule, ...]:
        return baseline_rules(self.values)

    @property
    def baseline_minimums(self) -> dict[str, Fraction]:
        return baseline_minimums(self.baseline)

    @property
    def vocabulary(self) -> ResultVocabulary:
        return result_vocabulary(self.values)


class Configurations(UseCase):
    """Read and change the deployment's configuration."""

    read_models = ()

    def current(self) -> Settings:
        """The settings now (the defaults until an administrator first changes one): one aggregate read."""
        found = self.find(Configuration, CONFIGURATION_ID)
        return Settings(found.version, dict(found.settings)) if found else Settings(0, dict(DEFAULTS))

    def view(self) -> dict[str, Any]:
        s = self.current()
        return {"version": s.version, "settings": s.values, "defaults": DEFAULTS}

    def change(self, ctx: CommandContext, changes: dict[str, Any], reason: str,
               expected_version: int | None = None) -> Done:
        """Change settings (an administrator, with a reason); only what differs is recorded."""
        require_configurer(ctx.actor)
        config = self.find(Configuration, CONFIGURATION_ID) or Configuration.start()
        current = 0 if config.pending_events else config.version  # a configuration started now: version 0
        if expected_version is not None and expected_version != current:
            raise ConflictError(f"the configuration is at version {current}, not {expected_version}")
        changed = config.change(ctx.actor, changes, reason)
        if not changed:
            return Done(str(CONFIGURATION_ID), current, None,
                        {"id": str(CONFIGURATION_ID), "version": current, "position": None, "changed": []})
        position = self.app.record(ctx, "change_configuration", config)
        return self.done(config, position, changed=sorted(changed), settings=config.settings)

    def history(self, actor: Actor) -> list[dict[str, Any]]:
        """Every change with its time, who made it and why (admins and auditors)."""
        if not (actor.has(Role.ADMIN) or actor.has(Role.AUDITOR)):
            require_configurer(actor)
        return self.app.stream(CONFIGURATION_ID)
