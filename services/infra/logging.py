"""structlog set-up: JSON lines or console, request context from contextvars, secrets never logged.

The JSON format is the one a server logs every request with, so it is kept cheap (about half the cost of
structlog's stock chain: one processor for level and time, msgspec for the JSON, one write a line). Every line
carries the request's context (``correlation_id``, and ``actor``/``department`` once authenticated) through
``merge_contextvars``; keys that could hold secrets or personal data are redacted.
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
    """Configure structlog and the standard library once for the process."""
    if log_format == "json":
        processors: list[Any] = [
            structlog.contextvars.merge_contextvars,
            _level_and_time,
            _redact,
            structlog.processors.format_exc_info,
            _render_json,
        ]
        factory: Any = _LineLoggerFactory(sys.stderr)
    else:
        processors = [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
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
