"""RFC 8785 JSON Canonicalization Scheme (JCS): the one byte form of a JSON value that audit leaves hash.

Objects sort their members by the UTF-16 code units of the names, strings are escaped minimally (only ``"``,
``\\`` and the control characters, the latter as ``\\b \\t \\n \\f \\r`` or ``\\u00xx``), numbers are written as
ECMAScript writes an IEEE 754 double, and there is no whitespace. The output is UTF-8.
"""

import math
from json.encoder import encode_basestring  # the C escaper, ensure_ascii=False
from typing import Any

import msgspec

SAFE_INT = 2**53  # integers beyond +-2^53 have no exact IEEE 754 double: RFC 8785 writes them rounded
# Sorted by code point, RFC 8785 escaping, compact: canonical for values ``_plain`` accepts (tested).
_FAST = msgspec.json.Encoder(order="sorted")


class CanonicalFormError(ValueError):
    """The value has no RFC 8785 form (NaN, infinity, a lone surrogate, a non-JSON type) or is not JSON."""


def canonicalize(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value`` (dicts with str keys, lists/tuples, str, int, float, bool, None)."""
    if _plain(value):
        return canonicalize_plain(value)
    try:
        return _encode(value).encode("utf-8")
    except CanonicalFormError:
        raise
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as exc:
        raise CanonicalFormError(f"no canonical JSON form: {exc}") from None


def canonicalize_plain(value: Any) -> bytes:
    """The RFC 8785 bytes of a value the caller knows to be plain: decoded JSON without floats, integers
    within +-2^53, and member names below U+D800 (where code-point order is UTF-16 order). Without floats
    the C encoder's output is already canonical (same escaping, same separators) and ~30x faster."""
    try:
        return _FAST.encode(value)
    except (TypeError, ValueError, UnicodeEncodeError, msgspec.EncodeError) as exc:
        raise CanonicalFormError(f"no canonical JSON form: {exc}") from None


def number(value: float | int) -> str:
    """An IEEE 754 double as ECMAScript's Number.prototype.toString writes it (RFC 8785 §3.2.2.3)."""
    if isinstance(value, int):
        if -SAFE_INT < value < SAFE_INT:
            return str(value)
        try:
            value = float(value)
        except OverflowError:
            raise CanonicalFormError(f"{value} is beyond the range of an IEEE 754 double") from None
    if math.isnan(value) or math.isinf(value):
        raise CanonicalFormError(f"{value!r} has no JSON form")
    if value == 0:
        return "0"  # also -0
    sign = "-" if value < 0 else ""
    text = repr(abs(value))  # the shortest digits that round-trip, as ECMAScript chooses them
    mantissa, _, exp = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    stripped = digits.lstrip("0")
    # value = 0.<stripped> x 10^n
    n = len(whole) + (int(exp) if exp else 0) - (len(digits) - len(stripped))
    s = stripped.rstrip("0")
    k = len(s)
    if k <= n <= 21:
        out = s + "0" * (n - k)
    elif 0 < n <= 21:
        out = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * -n + s
    else:
        e = n - 1
        out = (s if k == 1 else s[0] + "." + s[1:]) + ("e+" if e > 0 else "e-") + str(abs(e))
    return sign + out


def _utf16_key(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        value.encode("utf-8")  # a lone surrogate raises here (RFC 8785 §3.2.2.2)
        return encode_basestring(value)
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalFormError(f"object member names must be strings, not {type(key).__name__}")
        members = sorted(value.items(), key=lambda kv: _utf16_key(kv[0]))
        return "{" + ",".join(_encode(k) + ":" + _encode(v) for k, v in members) + "}"
    raise CanonicalFormError(f"{type(value).__name__} is not a JSON type")


def _plain(value: Any) -> bool:
    """True when json.dumps(sort_keys=True) gives the canonical form: no floats, no unsafe integers, and
    no member name with a character at or above U+D800 (where code-point and UTF-16 order differ)."""
    t = type(value)
    if t is str or value is None or t is bool:
        return True
    if t is int:
        n: int = value
        return -SAFE_INT < n < SAFE_INT
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or not (k.isascii() or max(k) < "\ud800"):
                return False
            if not _plain(v):
                return False
        return True
    if t is list:
        return all(_plain(v) for v in value)
    return False
