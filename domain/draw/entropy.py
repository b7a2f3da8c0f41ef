"""The declared external entropy source of a target draw, and the values it accepts.

The commitment names where the draw's public entropy will come from (``福彩3D 2024年第059期开奖号码``: the
China Welfare Lottery 3D result of draw 2024059), before the pool is frozen. The draw then takes only a value
for that source: the request repeats the source (it must equal the declared one, character for character) and,
where the source's kind is known, the value must be in the kind's one canonical form, so that a public result
admits exactly one accepted value and nobody can try spellings (``5 8 1``, ``5-8-1``, ``581``) until a
selection suits them. Known kinds (by the source's first word):

- ``福彩3D``, ``排列3``, ``排列三``: three digits, e.g. ``581``;
- ``排列5``, ``排列五``: five digits, e.g. ``58123``;
- ``drand``: the round's ``randomness``, 64 lowercase hex digits.

A source that mentions a known kind anywhere (``中国福利彩票3D游戏…``, ``排列 五``, fullwidth ``３Ｄ``) is that kind.
Another source is accepted as declared, and its value must be non-empty text without any white space and without
compatibility characters (NFKC-normal: no fullwidth digits), so ``2 6 0`` and ``２６０`` are not spellings of
``260``: an auditor checks it against the public record. Such a source's value may still be written in more than
one way (``2-6-0``): declare a known kind where there is one. A known kind's value must match its form in full (a trailing line break is not a second spelling). No declared source (``""``) means the draw takes no external entropy at all.
"""

import re
import unicodedata

from domain.errors import FieldProblem, InvalidInputError
from domain.text import CONTROL_RULE, control_character, control_message

MAX_SOURCE_LENGTH = 200
MAX_VALUE_LENGTH = 200

KNOWN_KINDS: dict[str, tuple[re.Pattern[str], str]] = {
    "福彩3D": (re.compile(r"[0-9]{3}"), "three digits, e.g. 581"),
    "排列3": (re.compile(r"[0-9]{3}"), "three digits, e.g. 581"),
    "排列三": (re.compile(r"[0-9]{3}"), "three digits, e.g. 581"),
    "排列5": (re.compile(r"[0-9]{5}"), "five digits, e.g. 58123"),
    "排列五": (re.compile(r"[0-9]{5}"), "five digits, e.g. 58123"),
    "drand": (re.compile(r"[0-9a-f]{64}"), "the round's randomness: 64 lowercase hex digits"),
}


_NAMED = (  # what names a known kind anywhere in a source, after NFKC (fullwidth letters and digits folded)
    (re.compile(r"drand", re.IGNORECASE), "drand"),
    (re.compile(r"排列\s*[5五]"), "排列5"),
    (re.compile(r"排列\s*[3三]"), "排列3"),
    (re.compile(r"(?<![0-9A-Za-z])3\s*D(?![A-Za-z])", re.IGNORECASE), "福彩3D"),  # not "2023 Dec"
)


def source_kind(source: str) -> str | None:
    """The known kind a source names: its start (``福彩3D 2024年…``, ``排列五…``), else a mention anywhere, so that
    ``中国福利彩票3D游戏 2024年第300期`` is a 福彩3D source too and takes only that kind's one form (a known
    lottery cannot be declared under another name to take free text). None: another kind of source."""
    for kind in sorted(KNOWN_KINDS, key=len, reverse=True):
        if source.startswith(kind):
            return kind
    folded = unicodedata.normalize("NFKC", source)
    for pattern, kind in _NAMED:
        if pattern.search(folded):
            return kind
    return None


def check_source(source: object, field: str = "entropy_source") -> str:
    """A declared source: ``""`` (none) or text of at most 200 characters without control characters,
    stripped of surrounding white space."""
    if source is None:
        return ""
    if not isinstance(source, str):
        raise InvalidInputError([FieldProblem(field, "type", "must be text naming the public entropy source")])
    text = source.strip()
    if len(text) > MAX_SOURCE_LENGTH:
        raise InvalidInputError([FieldProblem(field, "max_length", f"must be at most {MAX_SOURCE_LENGTH} characters")])
    code = control_character(text)
    if code is not None:
        raise InvalidInputError([FieldProblem(field, CONTROL_RULE, control_message(code))])
    return text


WITHDRAW_AND_DECLARE = "withdraw the round (with a reason) and commit again naming the source"


def check_draw_entropy(declared: str, source: object, value: object, remedy: str = WITHDRAW_AND_DECLARE) -> str:
    """The external entropy a draw may use: ``value`` for the ``declared`` source, repeated as ``source``.

    Without a declared source, neither a source nor a value is accepted (``remedy`` says what to do instead).
    Returns the value (unchanged: it is hashed as given)."""
    problems: list[FieldProblem] = []
    given_source = source if isinstance(source, str) else ""
    text = value if isinstance(value, str) else None
    if text is None:
        raise InvalidInputError([FieldProblem("external_entropy", "type", "must be text ('' for none)")])
    if not declared:
        if given_source.strip() or text:
            problems.append(FieldProblem(
                "external_entropy", "no_declared_source",
                f"the commitment declared no entropy source, so the draw takes no external entropy: {remedy}",
            ))
        if problems:
            raise InvalidInputError(problems)
        return ""
    if given_source != declared:
        problems.append(FieldProblem("entropy_source", "declared_source",
                                     f"must repeat the source declared with the commitment: {declared}"))
    if not text:
        problems.append(FieldProblem("external_entropy", "required", f"the value published for {declared}"))
    elif len(text) > MAX_VALUE_LENGTH:
        problems.append(FieldProblem("external_entropy", "max_length",
                                     f"must be at most {MAX_VALUE_LENGTH} characters"))
    else:
        kind = source_kind(declared)
        if kind is not None:
            pattern, form = KNOWN_KINDS[kind]
            if not pattern.fullmatch(text):
                problems.append(FieldProblem("external_entropy", "source_format",
                                             f"a {kind} value is {form}, in that one form"))
        code = control_character(text)
        if code is not None:
            problems.append(FieldProblem("external_entropy", CONTROL_RULE, control_message(code)))
        elif kind is None and (any(c.isspace() for c in text) or unicodedata.normalize("NFKC", text) != text):
            problems.append(FieldProblem("external_entropy", "one_form",
                                         "must be the published value without white space and without fullwidth "
                                         "or other compatibility characters (e.g. 3489.78, not 3 489.78 or ３４８９.７８)"))
    if problems:
        raise InvalidInputError(problems)
    return text
