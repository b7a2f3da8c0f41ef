"""Unified social credit code (统一社会信用代码) per GB 32100-2015."""

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3**i mod 31
_REG_AUTHORITIES = set("123456789ABCDEFGNY")


def check_character(first17: str) -> str:
    """The 18th character for the given first 17 (all must be in the alphabet)."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def credit_code_error(code: str) -> tuple[str, str] | None:
    """Return ``(rule, message)`` when ``code`` is not a valid code, else None."""
    if len(code) != 18:
        return ("length", f"must be 18 characters, got {len(code)}")
    bad = sorted({c for c in code if c not in _VALUE})
    if bad:
        return ("alphabet", f"characters not allowed by GB 32100-2015: {''.join(bad)}")
    if code[0] not in _REG_AUTHORITIES:
        return ("registration_authority", f"first character {code[0]!r} is not a registration authority code")
    if not code[2:8].isdigit():
        return ("division_code", "characters 3-8 must be a 6-digit administrative division code")
    expected = check_character(code[:17])
    if code[17] != expected:
        return (
            "check_digit",
            f"check character is {code[17]!r} but GB 32100-2015 gives {expected!r} for the first 17",
        )
    return None
