"""The console log format off a terminal: one plain ``time [level] event key=value`` line an entry, cheap to write."""

import io
import re
import sys
from collections.abc import Callable
from typing import Any

import pytest
import structlog

from services.infra.logging import configure_logging, get_logger

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \[(?P<level>\w+)\] (?P<rest>.*)$")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _logged(monkeypatch: pytest.MonkeyPatch, emit: Callable[[Any], object], out: io.StringIO | None = None) -> str:
    out = out if out is not None else io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("console", "INFO")
    try:
        emit(get_logger("test"))
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
    return out.getvalue()


def test_a_console_line_is_time_level_event_and_the_values_in_the_order_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def emit(log: Any) -> None:
        structlog.contextvars.bind_contextvars(correlation_id="c-1")
        log.info("request", method="GET", path="/public/results", status=200, ms=1.25)

    text = _logged(monkeypatch, emit)
    assert text.endswith("\n") and text.count("\n") == 1
    found = LINE.match(text.rstrip("\n"))
    assert found, text
    assert found["level"] == "info"
    assert found["rest"] == "request method=GET path=/public/results status=200 ms=1.25 correlation_id=c-1"
    assert "\x1b[" not in text  # no colours off a terminal


def test_a_value_with_spaces_quotes_or_a_newline_is_quoted_and_cannot_forge_a_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def emit(log: Any) -> None:
        log.warning("odd", note="获嘉 县\n2026-01-01T00:00:00.000000Z [info] forged", empty="", items=[1, 2],
                    name="获嘉县", none=None, flag=True)

    text = _logged(monkeypatch, emit)
    assert text.count("\n") == 1, text
    rest = LINE.match(text.rstrip("\n"))["rest"]  # type: ignore[index]
    assert rest == ("odd note='获嘉 县\\n2026-01-01T00:00:00.000000Z [info] forged' empty='' items='[1, 2]' "
                    "name=获嘉县 none=None flag=True")


def test_an_exception_follows_its_line_as_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def emit(log: Any) -> None:
        try:
            raise ValueError("the reason")
        except ValueError:
            log.exception("failed", step="x")

    lines = _logged(monkeypatch, emit).splitlines()
    assert LINE.match(lines[0])["rest"] == "failed step=x"  # type: ignore[index]
    assert lines[0].split(" ")[1] == "[error]"
    assert lines[1] == "Traceback (most recent call last):" and lines[-1] == "ValueError: the reason"


def test_secrets_are_redacted_in_console_lines_too(monkeypatch: pytest.MonkeyPatch) -> None:
    def emit(log: Any) -> None:
        log.info("serving", database="postgresql+psycopg://app:pa55-w0rd@db/x", token="eyJhbGciOi.secret")

    text = _logged(monkeypatch, emit)
    assert "pa55-w0rd" not in text and "eyJhbGciOi" not in text
    assert "database=postgresql+psycopg://app:***@db/x token=[redacted]" in text


def test_on_a_terminal_the_console_format_is_structlogs_aligned_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _logged(monkeypatch, lambda log: log.info("serving", port=8000), _Terminal())
    assert "\x1b[" in text and "port" in text and "8000" in text
