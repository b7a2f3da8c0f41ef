"""One rule for every text that enters: what a person or a file may put in a field, on every store alike.

C0 control characters other than tab and line feed are refused (U+0000 cannot be stored in a PostgreSQL text
column at all, and the others have no meaning in a name, an address or a finding, but can break logs, exports and
terminals); a carriage return is not refused but becomes a line feed (browsers send CR LF from a textarea).
"""

import re

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")


def normalise_newlines(text: str) -> str:
    """CR LF and a lone CR become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def control_character(text: str) -> str | None:
    """The first refused control character of ``text`` as ``U+XXXX`` (None: there is none). Call it after
    ``normalise_newlines``, which removes the carriage returns it would otherwise report."""
    found = _CONTROL.search(text)
    return None if found is None else f"U+{ord(found.group()):04X}"


CONTROL_RULE = "control_character"

MAX_REASON = 1000
"""The longest reason a person records (why a task is ad hoc, why a draw overlaps or is withdrawn): a reason is
read by people and published to partners with its event, never a document."""
REASON_RULE = "max_length"


def reason_message(limit: int = MAX_REASON) -> str:
    return f"must be at most {limit} characters"


def control_message(code: str) -> str:
    return f"must not contain the control character {code} (only tab and line feed are allowed)"
