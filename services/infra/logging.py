"""structlog set-up: JSON lines or console, request context from contextvars, secrets never logged.

Both formats are what a server logs every request with, so both are kept cheap (one processor for level and time,
one write a line): JSON through msgspec, the console format as plain ``time [level] event key=value`` lines
(structlog's coloured, aligned console renderer only on a terminal, where a person reads it: it costs about three
times as much a line, tests/bench/README.md). Every line carries the request's context (``correlation_id``, and
``actor``/``department`` once authenticated) through ``merge_contextvars``; keys that could hold secrets or
personal data are redacted.
"""

import datetime as dt
import logging
import re
import sys
import threading
from typing import Any, TextIO

import msgspec
import structlog

_REDACT = {"authorization", "token", "password", "secret", "secret_key", "body", "data"}
_UTC = dt.UTC
_LEVELS = {"warn": "warning", "exception": "error"}  # as structlog's add_log_level names them
_encoder = msgspec.json.Encoder(enc_hook=repr)  # what JSON cannot hold is logged as its repr
_write_locks: dict[int, threading.Lock] = {}


_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s,]*:)[^@\s,]*@")


def mask_credentials(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` with the password as ``***`` (lists of URLs too)."""
    return _CREDENTIALS.sub(r"\1***@", text) if "@" in text else text


def _redact(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Keys that may hold secrets or personal data are redacted; a password inside any URL is masked."""
    for key, value in event_dict.items():
        if key.lower() in _REDACT:
            event_dict[key] = "[redacted]"
        elif type(value) is str and "@" in value:
            event_dict[key] = mask_credentials(value)
    return event_dict


def _level_and_time(_: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """``add_log_level`` and ``TimeStamper(fmt="iso", utc=True)`` in one step."""
    event_dict["level"] = _LEVELS.get(method_name, method_name)
    event_dict["timestamp"] = dt.datetime.now(_UTC).isoformat().replace("+00:00", "Z")
    return event_dict


def _render_json(_: Any, __: str, event_dict: dict[str, Any]) -> str:
    """One JSON object (UTF-8 text, non-ASCII kept as is, like ``JSONRenderer(ensure_ascii=False)``)."""
    try:
        return _encoder.encode(event_dict).decode()
    except TypeError:  # keys that are not strings: let the standard library stringify them
        import json

        return json.dumps(event_dict, ensure_ascii=False, default=repr)


_PLAIN = re.compile(r"[^\s\"'=\\\x00-\x1f\x7f-\x9f\u2028\u2029]+")  # written as is; anything else is quoted


def _console_value(value: Any) -> str:
    """A value of a console line: a plain word as it is, anything else quoted (``repr``), so that a line is one
    line and its ``key=value`` pairs split at spaces (a value with a newline cannot forge another line)."""
    text = value if type(value) is str else str(value) if type(value) in (int, float, bool) else repr(value)
    return text if _PLAIN.fullmatch(text) else repr(text)


def _render_console(_: Any, __: str, event_dict: dict[str, Any]) -> str:
    """``<timestamp> [<level>] <event> key=value ...`` in the order the values were given (then the context),
    an exception's traceback on the lines after it."""
    timestamp = event_dict.pop("timestamp", "")
    level = event_dict.pop("level", "")
    event = event_dict.pop("event", "")
    exception = event_dict.pop("exception", None)
    stack = event_dict.pop("stack", None)
    line = f"{timestamp} [{level}] {event}" if type(event) is str and "\n" not in event else \
        f"{timestamp} [{level}] {_console_value(event)}"
    if event_dict:
        line += " " + " ".join(f"{key}={_console_value(value)}" for key, value in event_dict.items())
    for text in (stack, exception):
        if text:
            line += "\n" + str(text).rstrip("\n")
    return line


class _LineLogger:
    """Writes each rendered line and flushes it; one lock per file, shared by every logger on it."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lock = _write_locks.setdefault(id(file), threading.Lock())

    def msg(self, message: str) -> None:
        with self._lock:
            self._file.write(message + "\n")
            self._file.flush()

    log = debug = info = warn = warning = error = err = critical = exception = fatal = failure = msg


class _LineLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _LineLogger:
        return _LineLogger(self._file)


def configure_logging(log_format: str = "console", level: str = "INFO") -> None:
    """Configure structlog and the standard library once for the process: ``json``, or ``console`` (plain lines;
    coloured and aligned when stderr is a terminal)."""
    if log_format == "json" or not sys.stderr.isatty():
        processors: list[Any] = [
            structlog.contextvars.merge_contextvars,
            _level_and_time,
            _redact,
            structlog.processors.format_exc_info,
            _render_json if log_format == "json" else _render_console,
        ]
        factory: Any = _LineLoggerFactory(sys.stderr)
    else:
        processors = [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(colors=True),
        ]
        factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    for noisy in ("sqlalchemy", "nats", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
