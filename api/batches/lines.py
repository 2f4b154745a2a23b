"""Input lines parsed and checked; output and error lines in OpenAI's shape.

A malformed line does not fail the batch: it becomes a ``failed`` line whose error line is
ready before anything runs. Only a file that is not a batch at all (empty, too many lines)
fails the whole batch.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from api.storage.batch_lines import NewLine

ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")


class BatchInvalidError(Exception):
    """The input file as a whole cannot be a batch (shown in the batch's ``errors``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def public(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"code": self.code, "message": self.message, "param": None, "line": None}],
        }


def line_request_id(batch_id: str, index: int) -> str:
    """Stable per line: a rerun after a crash reuses it (and its usage record id)."""
    digest = hashlib.sha256(f"{batch_id}:{index}".encode()).hexdigest()
    return f"batch_req_{digest[:24]}"


def parse_input(data: bytes, batch_id: str, endpoint: str, max_lines: int) -> list[NewLine]:
    """One ``NewLine`` per non-empty line of ``data``, in order."""
    raw_lines = [line for line in data.splitlines() if line.strip()]
    if not raw_lines:
        raise BatchInvalidError("empty_file", "The input file has no requests.")
    if len(raw_lines) > max_lines:
        raise BatchInvalidError(
            "too_many_requests",
            f"The input file has {len(raw_lines)} requests; a batch holds at most {max_lines}.",
        )
    seen: set[str] = set()
    return [
        _parse_line(raw, index, batch_id, endpoint, seen) for index, raw in enumerate(raw_lines)
    ]


def _parse_line(raw: bytes, index: int, batch_id: str, endpoint: str, seen: set[str]) -> NewLine:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _malformed(batch_id, index, None, "invalid_json_line", f"Invalid JSON: {exc}")
    if not isinstance(payload, dict):
        return _malformed(batch_id, index, None, "invalid_json_line", "A line must be an object.")
    custom_id = payload.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return _malformed(
            batch_id, index, None, "missing_custom_id", "'custom_id' must be a non-empty string."
        )
    problem = _problem(payload, endpoint, custom_id, seen)
    if problem is not None:
        return _malformed(batch_id, index, custom_id, *problem)
    seen.add(custom_id)
    return NewLine(index=index, custom_id=custom_id, request=payload["body"])


def _problem(
    payload: dict[str, Any], endpoint: str, custom_id: str, seen: set[str]
) -> tuple[str, str] | None:
    if custom_id in seen:
        return "duplicate_custom_id", f"The custom_id {custom_id!r} is used by an earlier line."
    if payload.get("method") != "POST":
        return "invalid_method", "'method' must be 'POST'."
    if payload.get("url") != endpoint:
        return "invalid_url", f"'url' must be the batch's endpoint {endpoint!r}."
    if not isinstance(payload.get("body"), dict):
        return "invalid_body", "'body' must be a JSON object."
    return None


def _malformed(
    batch_id: str, index: int, custom_id: str | None, code: str, message: str
) -> NewLine:
    error = {"code": code, "message": f"Line {index + 1}: {message}"}
    return NewLine(
        index=index,
        custom_id=custom_id,
        request=None,
        result=error_line(batch_id, index, custom_id, None, error),
    )


def output_line(
    batch_id: str, index: int, custom_id: str, status_code: int, body: dict[str, Any]
) -> str:
    """``{id, custom_id, response: {status_code, request_id, body}, error: null}``."""
    request_id = line_request_id(batch_id, index)
    response = {"status_code": status_code, "request_id": request_id, "body": body}
    return error_line(batch_id, index, custom_id, response, None)


def error_line(
    batch_id: str,
    index: int,
    custom_id: str | None,
    response: dict[str, Any] | None,
    error: dict[str, Any] | None,
) -> str:
    record = {
        "id": line_request_id(batch_id, index),
        "custom_id": custom_id,
        "response": response,
        "error": error,
    }
    return orjson.dumps(record).decode()
