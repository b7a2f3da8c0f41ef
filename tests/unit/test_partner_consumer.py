"""Starting a partner's consumer over: the delete-and-create retries the server's transient internal error
(nats-server 2.15 may still be removing the deleted consumer's directory) and nothing else."""

import asyncio
from typing import Any

import pytest
from nats.js.api import DeliverPolicy
from nats.js.errors import BadRequestError, ServerError

from services.infra import partner
from services.infra.partner import ADD_CONSUMER_ATTEMPTS, Subscription

RENAME = "rename .../obs/hj-eeb/o.dat.tmp .../obs/hj-eeb/o.dat: no such file or directory"


class FlakyJetStream:
    """Records the calls; ``add_consumer`` fails with the given errors first."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = list(failures)
        self.calls: list[tuple[str, Any]] = []

    async def delete_consumer(self, stream: str, name: str) -> bool:
        self.calls.append(("delete", name))
        return True

    async def add_consumer(self, stream: str, config: Any) -> Any:
        self.calls.append(("add", config.opt_start_seq))
        if self.failures:
            raise self.failures.pop(0)
        return config


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(partner.asyncio, "sleep", sleep)
    return slept


def recreate(js: FlakyJetStream) -> None:
    sub = Subscription("nats://unused", "hj-eeb", from_position=7)
    sub._js = js
    asyncio.run(sub._recreate_consumer(sub._config(DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=42)))


@pytest.mark.parametrize("failures", range(ADD_CONSUMER_ATTEMPTS))
def test_transient_server_errors_are_retried_until_the_consumer_is_created(failures: int,
                                                                            no_sleep: list[float]) -> None:
    js = FlakyJetStream([ServerError(code=500, err_code=10012, description=RENAME)] * failures)
    recreate(js)
    assert js.calls == [("delete", "hj-eeb")] + [("add", 42)] * (failures + 1)
    assert no_sleep == sorted(no_sleep) and len(no_sleep) == failures  # backing off, one wait per failure


def test_a_server_error_that_persists_is_raised() -> None:
    js = FlakyJetStream([ServerError(code=500, err_code=10012, description=RENAME)] * ADD_CONSUMER_ATTEMPTS)
    with pytest.raises(ServerError):
        recreate(js)
    assert js.calls.count(("add", 42)) == ADD_CONSUMER_ATTEMPTS


def test_a_refusal_is_not_retried() -> None:
    js = FlakyJetStream([BadRequestError(code=400, err_code=10013, description="consumer name already in use")])
    with pytest.raises(BadRequestError):
        recreate(js)
    assert js.calls == [("delete", "hj-eeb"), ("add", 42)]
