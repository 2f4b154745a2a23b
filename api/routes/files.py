"""``/v1/files``: upload (multipart, purpose ``batch``), retrieve, list, content, delete.

Files belong to the key's organization; another organization's file is a 404.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from api.auth.identity import identity_of
from api.batches.state import stores_of
from api.errors import InvalidRequestError, PayloadTooLargeError
from api.http.json_response import json_response
from api.routes.pages import page, page_params
from api.services import services_of

PURPOSES = ("batch",)


async def upload_file(request: Request) -> Response:
    identity = identity_of(request)
    limit = services_of(request).settings.files.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLargeError(f"A file may hold at most {limit} bytes.")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequestError(
            "Upload the file as multipart/form-data with 'file' and 'purpose'.", param="file"
        )
    async with request.form(max_files=1, max_fields=4, max_part_size=limit) as form:
        purpose, upload = form.get("purpose"), form.get("file")
        if purpose not in PURPOSES:
            raise InvalidRequestError(
                f"'purpose' must be one of {list(PURPOSES)}.", param="purpose"
            )
        if not isinstance(upload, UploadFile):
            raise InvalidRequestError("Missing required parameter: 'file'.", param="file")
        data = await upload.read(limit + 1)
        filename = upload.filename or "upload.jsonl"
    if len(data) > limit:
        raise PayloadTooLargeError(f"A file may hold at most {limit} bytes.")
    record = await stores_of(request).files.create(
        identity.org_id, identity.key_id, filename, str(purpose), data
    )
    return json_response(record.public())


async def list_files(request: Request) -> Response:
    after, limit = page_params(request, default=100, maximum=10_000)
    purpose = request.query_params.get("purpose")
    records = await stores_of(request).files.records.page(
        identity_of(request).org_id, after, limit + 1, purpose
    )
    return json_response(page([record.public() for record in records], limit))


async def retrieve_file(request: Request) -> Response:
    files = stores_of(request).files
    record = await files.owned(request.path_params["file_id"], identity_of(request).org_id)
    return json_response(record.public())


async def file_content(request: Request) -> Response:
    files = stores_of(request).files
    record = await files.owned(request.path_params["file_id"], identity_of(request).org_id)
    return Response(await files.content(record), media_type="application/octet-stream")


async def delete_file(request: Request) -> Response:
    files = stores_of(request).files
    record = await files.owned(request.path_params["file_id"], identity_of(request).org_id)
    await files.delete(record)
    return json_response({"id": record.id, "object": "file", "deleted": True})
