"""Reading a JSON request body into a wire schema, with OpenAI-style errors."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request

from api.errors import InvalidRequestError, PayloadTooLargeError
from api.schemas.common import STREAM_DECIDES, LenientModel

logger = logging.getLogger(__name__)

SchemaT = TypeVar("SchemaT", bound=LenientModel)


async def parse_body(request: Request, schema: type[SchemaT], max_bytes: int) -> SchemaT:
    """Validate the body; unknown fields are accepted, logged and ignored."""
    # Over HTTP, `stream` alone decides whether the reply streams.
    context = {STREAM_DECIDES: True}
    return parse_payload(await read_body(request, max_bytes), schema, context)


def parse_payload(
    body: bytes | str, schema: type[SchemaT], context: dict[str, Any] | None = None
) -> SchemaT:
    """Validate one JSON document (an HTTP body or a WebSocket message); ``context`` goes to
    the schema's validators."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"We could not parse the JSON body of your request: {exc}", code="invalid_json"
        ) from None
    if not isinstance(payload, dict):
        raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
    return validate_payload(payload, schema, context)


def validate_payload(
    payload: dict[str, Any], schema: type[SchemaT], context: dict[str, Any] | None = None
) -> SchemaT:
    """Validate a parsed JSON object (a batch line's body) against ``schema``."""
    try:
        parsed = schema.model_validate(payload, context=context)
    except ValidationError as exc:
        raise _invalid(exc.errors(include_url=False)[0]) from None
    if unknown := parsed.unknown_fields():
        logger.info("ignoring unknown request fields", extra={"fields": unknown})
    return parsed


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refused with 413 past ``max_bytes`` (declared or as it arrives)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"The request body exceeds {max_bytes} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(f"The request body exceeds {max_bytes} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _invalid(error: ErrorDetails) -> InvalidRequestError:
    location = [str(part) for part in error["loc"] if not str(part).startswith("function-")]
    # A rule across fields (api.schemas.common.rule_error) names the field at fault.
    field = (error.get("ctx") or {}).get("field")
    if isinstance(field, str):
        location.append(field)
    param = _param_path(location)
    if error["type"] == "missing":
        return InvalidRequestError(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    message = error["msg"].removeprefix("Value error, ").rstrip(".")
    return InvalidRequestError(
        f"Invalid value for '{param}': {message}.", param=param, code="invalid_value"
    )


def _param_path(location: list[str]) -> str:
    # pydantic reports union members as extra location parts ("str", "list[...]"): drop them.
    parts = [
        part
        for part in location
        if not any(c in part for c in "[]") and part not in {"str", "int", "float", "bool", "list"}
    ]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or "body"
