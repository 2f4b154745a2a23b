"""The API's errors as gRPC statuses: the code, and the OpenAI error object in the details.

One mapping from the HTTP status every ``APIError`` carries, so a gRPC client sees the same
error a REST client would: ``google.rpc.ErrorInfo`` (reason = code; metadata = type, code,
param), ``google.rpc.BadRequest`` naming the parameter, ``google.rpc.RetryInfo`` after a
limit, and the same values as plain trailing metadata for clients without the rich status.
"""

from __future__ import annotations

import math

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from api.errors import APIError

DOMAIN = "llm.v1"
DETAILS_KEY = "grpc-status-details-bin"
Metadata = tuple[tuple[str, str | bytes], ...]

STATUS_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    409: grpc.StatusCode.ABORTED,
    # A request too large is the client's to fix, never to retry as it is.
    413: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    431: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    500: grpc.StatusCode.INTERNAL,
    501: grpc.StatusCode.UNIMPLEMENTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def grpc_code(http_status: int) -> grpc.StatusCode:
    """The gRPC code of an HTTP status; one not listed falls back by its class."""
    if http_status in STATUS_CODES:
        return STATUS_CODES[http_status]
    return grpc.StatusCode.FAILED_PRECONDITION if http_status < 500 else grpc.StatusCode.INTERNAL


def error_status(error: APIError) -> tuple[grpc.StatusCode, str, Metadata]:
    """The code, message and trailing metadata (rich status included) of ``error``."""
    code = grpc_code(error.status_code)
    fields = {"type": error.error_type, "code": error.code, "param": error.param}
    present = {name: value for name, value in fields.items() if value is not None}
    details = [
        _packed(
            error_details_pb2.ErrorInfo(
                reason=error.code or error.error_type, domain=DOMAIN, metadata=present
            )
        )
    ]
    if error.param is not None:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=error.param, description=error.message
        )
        details.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
    if (retry_ms := _retry_ms(error)) is not None:
        delay = duration_pb2.Duration(seconds=retry_ms // 1000, nanos=retry_ms % 1000 * 10**6)
        details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    status = status_pb2.Status(code=code.value[0], message=error.message, details=details)
    plain = {f"error-{name}": value for name, value in present.items()}
    plain.update({name.lower(): value for name, value in error.headers.items()})
    trailing: Metadata = (
        (DETAILS_KEY, status.SerializeToString()),
        *((name, _ascii(value)) for name, value in plain.items()),
    )
    return code, error.message, trailing


def _packed(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _retry_ms(error: APIError) -> int | None:
    if "retry-after-ms" in error.headers:
        return int(error.headers["retry-after-ms"])
    if "retry-after" in error.headers:
        return math.ceil(float(error.headers["retry-after"]) * 1000)
    return None


def _ascii(value: str) -> str:
    # Plain metadata values are printable ASCII; a parameter path may hold anything a client
    # named (the rich status carries it intact).
    return value.encode("ascii", "backslashreplace").decode()
