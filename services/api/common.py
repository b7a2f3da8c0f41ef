"""What every router shares: the command context of a request, a struct's given fields, the answers of a write
(ETag, X-Log-Position), If-Match, read-your-writes waits, uploads, and the documented responses of an operation."""

import re
from functools import cache
from typing import Annotated, Any, TypedDict

import msgspec
from litestar import Request, Response
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, BodyKwarg, Parameter

from domain.access import Actor
from domain.errors import FieldProblem, InvalidInputError
from services.api.errors import PROBLEM, NotReadyError
from services.api.schemas import EXAMPLES, Json, Problem, Recorded
from services.application import CommandContext, Written
from services.runtime import Runtime
from services.usecases.common import Done

AnyRequest = Request[Actor, Any, Any]

WRITE = (
    " Answers with the aggregate id, its version and the log position of the write (`X-Log-Position`); pass "
    "that position as `min_position` to a listing to read your own write."
)
DATE = " Dates are YYYY-MM-DD; omitted, today."
SECURED: list[dict[str, list[str]]] = [{"BearerToken": []}, {"SessionCookie": []}]  # either one

MAX_POSITION = 2**63 - 1  # log positions, offsets and sizes: a signed 64-bit integer in both stores

MinPosition = Annotated[
    int | None, Parameter(ge=0, le=MAX_POSITION, description="read your writes: wait for this log position")
]
Department = Annotated[
    str | None, Parameter(description="department code; default: yours (admins and auditors: any)")
]
Limit = Annotated[int, Parameter(ge=1, le=500, description="page size")]
Offset = Annotated[int, Parameter(ge=0, le=MAX_POSITION, description="rows to skip")]


def example(name: str) -> BodyKwarg:
    """A JSON body documented with one of the main examples (``schemas.EXAMPLES``)."""
    summary, value = EXAMPLES[name]
    return Body(media_type=RequestEncodingType.JSON, examples=[Example(summary=summary, value=value)])


def runtime(request: Request[Any, Any, Any]) -> Runtime:
    return request.app.state.runtime


def ctx(request: AnyRequest) -> CommandContext:
    """The command context of a request: the token's actor and the request's correlation id."""
    return CommandContext(actor=request.user, correlation_id=request.scope["state"]["correlation_id"])


def given(struct: msgspec.Struct) -> dict[str, Any]:
    """The fields a request body gave (unset ones left out)."""
    return {k: v for k, v in msgspec.structs.asdict(struct).items() if v is not msgspec.UNSET}


def _write_headers(version: int, position: int | None) -> dict[str, str]:
    headers = {"ETag": f'"{version}"'}
    if position is not None:
        headers["X-Log-Position"] = str(position)
    return headers


def done(request: AnyRequest, result: Done, status: int = 200) -> Response[Json]:
    """The answer of a task or execution command: its summary, ETag (version) and X-Log-Position."""
    runtime(request).after_write()
    return Response(result.body, status_code=status, headers=_write_headers(result.version, result.position))


def written(request: AnyRequest, w: Written, status: int) -> Response[Json]:
    """The answer of a directory write."""
    runtime(request).after_write()
    body = {"id": w.id, "version": w.version, "position": w.position, "changed": list(w.changed)}
    return Response(body, status_code=status, headers=_write_headers(w.version, w.position))


def if_match(request: AnyRequest) -> int | None:
    """The entry version of an ``If-Match`` header, if any (400 when it is not a version)."""
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    text = raw.strip().strip('"')
    if not text.isdigit():
        raise ValidationException(
            "If-Match must be an entry version",
            extra=[{"key": "If-Match", "message": "must be a version number", "source": "header"}],
        )
    return int(text)


def wait(request: AnyRequest, min_position: int | None, names: list[str] | None = None,
         what: str = "the read models have") -> None:
    """Read your writes: check that the read models (``names``, default all) reached the position.

    The waiting itself happened before the handler took a thread (``services.api.waits``: up to 5 s with a token,
    1 s without); here a position beyond the log's head is refused (it was never written, so no wait can reach
    it) and a position not reached is a 503, at once."""
    if min_position is None:
        return
    runner = runtime(request).runner
    if runner.applied(min_position, names):
        return
    head = runner.head()
    if min_position > head:
        raise InvalidInputError([FieldProblem("min_position", "range",
                                              f"is beyond the log's head ({head}): no write has that position")])
    if not runner.wait_for(min_position, timeout=0, names=names):
        raise NotReadyError(f"{what} not yet reached position {min_position}")


_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_RULES = (  # the rule of a msgspec validation message, by its wording (first match wins)
    (re.compile(r"^Object missing required field `(?P<name>[^`]+)`"), "required"),
    (re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`"), "unknown_field"),
    (re.compile(r"^Expected `[^`]+` (?:>=|<=|>|<) "), "range"),
    (re.compile(r"^Expected `[^`]+` of length "), "length"),
    (re.compile(r"^Expected `[^`]+` matching regex "), "format"),
    (re.compile(r"^Invalid enum value "), "choice"),
)


def body_problem(message: str) -> dict[str, str]:
    """The field and rule of a body's msgspec validation message: ``Expected `int`, got `str` - at `$.year```
    is field ``year`` rule ``type``; ``Object missing required field `city``` is field ``city`` rule ``required``
    (a nested one ``rules[0].kind``); a body of the wrong shape is field ``body``."""
    found = _PATH.search(message)
    path = found.group("path") if found else ""
    text = message[: found.start()] if found else message
    rule = "type"
    for pattern, name in _RULES:
        if m := pattern.match(text):
            rule = name
            if "name" in pattern.groupindex:
                path = f"{path}.{m.group('name')}" if path and not path.endswith("]") else path + m.group("name")
            break
    return {"key": path or "body", "rule": rule, "message": text, "source": "body"}


@cache
def _strict_decoder(annotation: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(annotation, strict=True)


async def strict_body(request: Request[Any, Any, Any]) -> None:
    """Decode a JSON body strictly before litestar does (its signature model converts leniently, for query
    strings): ``"2025"`` or ``2027.0`` is not an integer. A 400 naming the field and the rule (``type``,
    ``required``, ``unknown_field``, ``range``...); malformed JSON and empty bodies are left to litestar."""
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return
    kwarg = data.kwarg_definition
    if isinstance(kwarg, BodyKwarg) and kwarg.media_type != RequestEncodingType.JSON:
        return  # multipart and forms: their own decoding
    body = await request.body()
    if not body.strip():
        return
    try:
        _strict_decoder(data.annotation).decode(body)
    except msgspec.ValidationError as exc:
        problem = body_problem(str(exc))
        raise ValidationException(f"{problem['key']}: {problem['message']}", extra=[problem]) from None
    except msgspec.DecodeError:
        return  # not JSON: litestar answers it as before


def multipart_file(**extra: dict[str, Any]) -> Any:
    """The ``Body`` of an upload: multipart, documented as its one required field ``file`` (binary) and the
    ``extra`` optional fields (litestar would otherwise describe a ``dict`` body as ``files``, an array)."""
    return Body(media_type=RequestEncodingType.MULTI_PART, schema_extra={
        "properties": {"file": {"type": "string", "format": "binary", "description": "the file"}, **extra},
        "required": ["file"],
    })


def upload(data: dict[str, Any]) -> UploadFile:
    """The file of a multipart body's ``file`` field (422 without one)."""
    found = data.get("file") if isinstance(data, dict) else None
    if not isinstance(found, UploadFile):
        raise InvalidInputError([FieldProblem("file", "required", "upload the file in the multipart field 'file'")])
    return found


PROBLEM_TEXT = {
    400: "the request is malformed: a parameter or body field of the wrong type, unknown or missing",
    401: "no valid bearer token",
    403: "the token's department or roles may not do this (auditors never write)",
    404: "no such resource",
    409: "a conflict: the entry changed meanwhile (If-Match), or the thing exists already",
    413: "the JSON body is larger than DUALRANDOM_MAX_JSON_KB (default 1,024 KiB; `errors`: `body`, `max_size`), or "
    "an upload larger than DUALRANDOM_MAX_UPLOAD_MB; nothing was stored",
    422: "a rule of the domain refuses the input; `errors` names each field and rule",
    429: "too many requests from this address (DUALRANDOM_PUBLIC_RATE_PER_MINUTE); `Retry-After` says when again",
    503: "the server is at its limit of requests in flight (DUALRANDOM_MAX_IN_FLIGHT): refused at once, "
    "`Retry-After` says when to retry; or, where `min_position` is accepted, the read models have not reached it "
    "within 5 s (1 s without a token), or too many requests are waiting already (1,000 with a token, 100 without)",
}
READ = (400, 401, 403, 404, 422)
WRITE_PROBLEMS = (400, 401, 403, 404, 409, 413, 422)


class Command(TypedDict):
    """The route options of a command: its success status, documented responses, run in a thread."""

    status_code: int
    responses: dict[int, ResponseSpec]
    sync_to_thread: bool


def command(status: int = 200) -> Command:
    """``@post(path, **command(), ...)``: a write answering ``status`` with the Recorded summary."""
    return Command(status_code=status, responses=answers(status, Recorded, WRITE_PROBLEMS), sync_to_thread=True)


def answers(
    status: int,
    schema: type[Any] | None,
    problems: tuple[int, ...] = READ,
    *,
    media_type: str | None = None,
    description: str = "success",
    also: tuple[int, ...] = (),
) -> dict[int, ResponseSpec]:
    """The documented responses of an operation: the success ``status`` with ``schema`` (None: a body not JSON,
    of ``media_type``) and each problem status with the Problem schema (application/problem+json)."""
    spec: dict[int, ResponseSpec] = {
        status: ResponseSpec(
            data_container=schema if schema is not None else bytes,
            description=description,
            media_type=media_type or "application/json",
            generate_examples=False,
        )
    }
    overload = (503,) if problems else ()  # any operation behind the in-flight limit (services/api/overload.py)
    for code in sorted({*problems, *also, *overload}):
        spec[code] = ResponseSpec(
            data_container=Problem, description=PROBLEM_TEXT[code], media_type=PROBLEM, generate_examples=False
        )
    return spec
