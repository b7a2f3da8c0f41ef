"""Messages for the account events: who may act. No secret is ever in one (no password or token hash)."""

from typing import Any

from domain.accounts import Account
from domain.contracts.base import Message, contract


@contract(Account.Changed)
class AccountChangedV1(Message, frozen=True):
    changes: dict[str, Any]
    reason: str


@contract(Account.Created)
class AccountCreatedV1(Message, frozen=True):
    username: str
    display_name: str
    department: str
    roles: list[str]
    inspector: str | None
    kind: str
    reason: str


@contract(Account.Deactivated)
class AccountDeactivatedV1(Message, frozen=True):
    reason: str


@contract(Account.PasswordSet)
class AccountPasswordSetV1(Message, frozen=True):
    by_admin: bool


@contract(Account.Reactivated)
class AccountReactivatedV1(Message, frozen=True):
    reason: str


@contract(Account.TokenIssued)
class AccountTokenIssuedV1(Message, frozen=True):
    token_id: str
    name: str
    expires_at: int
    session: bool


@contract(Account.TokenRevoked)
class AccountTokenRevokedV1(Message, frozen=True):
    token_id: str
    reason: str
