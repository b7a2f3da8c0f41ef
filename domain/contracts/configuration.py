"""Messages for the deployment's configuration (goals, baseline rules, result vocabulary)."""

from typing import Any

from domain.configuration import Configuration
from domain.contracts.base import Message, contract


@contract(Configuration.Started)
class ConfigurationStartedV1(Message, frozen=True):
    """The configuration's first change starts from these settings (the defaults)."""

    settings: dict[str, Any]


@contract(Configuration.Changed)
class ConfigurationChangedV1(Message, frozen=True):
    """An administrator changed settings (their new values), with the reason."""

    changes: dict[str, Any]
    reason: str
