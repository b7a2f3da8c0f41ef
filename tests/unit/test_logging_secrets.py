"""Secrets never reach the log: a password inside any URL is masked, secret-named keys are redacted."""

import io
import json
import string
import sys

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from services.infra.logging import configure_logging, get_logger, mask_credentials
from services.infra.store import safe_url

_USER = st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12)
_PASSWORD = st.text(string.ascii_letters + string.digits + "-_.~!$&'()*+;=%", min_size=4, max_size=24)


@given(user=_USER, password=_PASSWORD, hosts=st.lists(st.sampled_from(["h1", "10.0.0.2", "nats.example"]),
                                                      min_size=1, max_size=3))
def test_no_password_survives_masking_in_a_list_of_urls(user: str, password: str, hosts: list[str]) -> None:
    url = ",".join(f"nats://{user}:{password}@{h}:4222" for h in hosts)
    masked = mask_credentials(url)
    assert masked == ",".join(f"nats://{user}:***@{h}:4222" for h in hosts)
    assert safe_url(url) == masked


def test_a_url_without_credentials_is_left_as_it_is() -> None:
    assert mask_credentials("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
    assert mask_credentials("mail me at someone@example.org") == "mail me at someone@example.org"


def test_the_relays_nats_password_is_not_written_by_any_log_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for fmt in ("json", "console"):
        out = io.StringIO()
        monkeypatch.setattr(sys, "stderr", out)
        configure_logging(fmt, "INFO")
        log = get_logger("test")
        log.info("serving", nats="nats://relay:pa55-w0rd@127.0.0.1:4222", database="sqlite:///x.db")
        log.info("relay_nats_disconnected", url="nats://relay:pa55-w0rd@a:4222,nats://relay:pa55-w0rd@b:4222")
        log.info("token_checked", token="eyJhbGciOi.secret", password="pa55-w0rd")
        text = out.getvalue()
        assert "pa55-w0rd" not in text and "eyJhbGciOi" not in text, text
        assert "relay:***@127.0.0.1:4222" in text
        if fmt == "json":
            assert [json.loads(line)["event"] for line in text.splitlines()] == [
                "serving", "relay_nats_disconnected", "token_checked"]
    structlog.reset_defaults()
