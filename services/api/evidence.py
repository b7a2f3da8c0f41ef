"""The evidence store: upload and download."""

from typing import Annotated, Any, BinaryIO, cast

from litestar import Response, Router, get, post
from litestar.params import FromPath

from services.api.common import (
    READ,
    SECURED,
    WRITE_PROBLEMS,
    AnyRequest,
    answers,
    multipart_file,
    runtime,
    upload,
)
from services.api.schemas import EvidenceRef


@post(
    "/",
    responses=answers(201, EvidenceRef, WRITE_PROBLEMS),
    sync_to_thread=True,
    status_code=201,
    summary="Upload an evidence file",
    description="Multipart field `file`. Stored once per content (SHA-256); answers the reference `{sha256, size, "
    "name, media_type}` to put in findings, shared documents or referrals. Allowed types: PDF, JPEG, PNG, TIFF, "
    "MP4, MP3, plain text, DOCX, XLSX, ZIP (the content must match the declared type); at most "
    "DUALRANDOM_MAX_UPLOAD_MB. Too large, empty or another type: 422 naming `file.size` / `file.media_type`.",
)
def upload_evidence(
    request: AnyRequest,
    data: Annotated[dict[str, Any], multipart_file()],
) -> dict[str, Any]:
    rt = runtime(request)
    file = upload(data)
    return rt.evidence.upload_evidence(
        request.user,
        cast(BinaryIO, file.file),  # a SpooledTemporaryFile: a binary file
        file.filename or "",
        file.content_type or "",
    )


@get(
    "/{sha256:str}",
    responses=answers(200, None, READ, media_type="application/octet-stream"),
    sync_to_thread=True,
    summary="Download an evidence file",
    media_type="application/octet-stream",
    description="By SHA-256. Read as the record naming it: a finding's file by the department's team on that visit "
    "and its reviewers; a shared document by the visit's departments' staff; a referral's document by the referring "
    "and receiving departments' staff; a file no record names yet by its uploader. Auditors read every file, "
    "partners none (403); anyone else gets 404, as for a file that does not exist.",
)
def download_evidence(request: AnyRequest, sha256: FromPath[str]) -> Response:
    rt = runtime(request)
    content = b"".join(rt.evidence.open_evidence(request.user, sha256))
    return Response(content, media_type="application/octet-stream")


def router() -> Router:
    return Router(
        "/evidence",
        route_handlers=[upload_evidence, download_evidence],
        tags=["execution"], security=SECURED,
    )
