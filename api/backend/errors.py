"""Translation of Triton/gRPC failures into the API's errors, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from api.errors import (
    APIError,
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ContextLengthExceededError,
    InvalidRequestError,
    RateLimitError,
)

_CONTEXT_PREFIX = "context_length_exceeded:"
# What Triton says inside a stream when the model cannot run right now (unloaded, loading,
# its Python-backend stub crashed): the client should retry, like UNAVAILABLE.
_UNAVAILABLE_MARKERS = ("unknown model", "is not ready", "is not healthy")
# Triton's own checks of a request's tensors (core 2.51, reported inside the stream without
# a status code): input errors, never a fault of the backend.
_TRITON_INPUT_MARKERS = (
    "unexpected shape for input",
    "unexpected datatype",
    "data-type is",
    "unexpected inference input",
    "unexpected number of string elements",
    "input byte size mismatch",
    "inputs but got",
)


class ReplicaLostError(BackendUnavailableError):
    """A replica failed while other replicas of its endpoint still serve the model.

    Still a 503 to the caller (an error event if the stream had begun), but a fault of that
    one replica, which the replica set takes out of rotation, not of the model: circuit
    breakers do not count it, so the surviving replicas go on taking traffic.
    """


# Every gRPC status maps to an API error; tests assert the table is complete.
_STATUS_ERRORS: dict[grpc.StatusCode, type[APIError]] = {
    grpc.StatusCode.CANCELLED: BackendUnavailableError,
    grpc.StatusCode.UNKNOWN: BackendError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.DEADLINE_EXCEEDED: BackendTimeoutError,
    grpc.StatusCode.NOT_FOUND: BackendError,
    grpc.StatusCode.ALREADY_EXISTS: BackendError,
    grpc.StatusCode.PERMISSION_DENIED: BackendError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimitError,
    grpc.StatusCode.FAILED_PRECONDITION: BackendError,
    grpc.StatusCode.ABORTED: BackendUnavailableError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidRequestError,
    grpc.StatusCode.UNIMPLEMENTED: BackendError,
    grpc.StatusCode.INTERNAL: BackendError,
    grpc.StatusCode.UNAVAILABLE: BackendUnavailableError,
    grpc.StatusCode.DATA_LOSS: BackendError,
    grpc.StatusCode.UNAUTHENTICATED: BackendError,
}


def error_for_status(code: grpc.StatusCode, details: str) -> APIError:
    """The API error for a failed RPC."""
    if code is grpc.StatusCode.OK:
        raise ValueError("an OK status is not an error")
    error_class = _STATUS_ERRORS[code]
    if error_class is BackendUnavailableError:
        return BackendUnavailableError(
            "The inference server is unavailable; retry shortly.", headers={"Retry-After": "1"}
        )
    if error_class is RateLimitError:
        return RateLimitError(
            "The model is overloaded; retry shortly.",
            code="model_overloaded",
            headers={"Retry-After": "1"},
        )
    return error_for_message(details, error_class)


# Prefixes the Triton models put on errors that are the client's (see model_repository/README).
_INVALID_PREFIXES: dict[str, str | None] = {
    "invalid_logit_bias:": "logit_bias",
    "invalid_guided_decoding:": "response_format",
    "invalid_tools:": "tools",
    "invalid_request:": None,
}


def error_for_message(message: str, default: type[APIError] = BackendError) -> APIError:
    """The API error for an error reported inside the stream (no status code there)."""
    if _CONTEXT_PREFIX in message:
        detail = message.split(_CONTEXT_PREFIX, 1)[1].strip()
        # Preprocessing names the prompt as the client sent it (inference.tokenization).
        param = "prompt" if "in the prompt" in detail else "messages"
        return ContextLengthExceededError(detail, param=param)
    for prefix, named in _INVALID_PREFIXES.items():
        if prefix in message:
            detail = message.split(prefix, 1)[1].strip()
            return InvalidRequestError(detail, param=named, code="invalid_value")
    if any(marker in message for marker in _TRITON_INPUT_MARKERS):
        return InvalidRequestError(message.strip().splitlines()[0], code="invalid_value")
    if any(marker in message for marker in _UNAVAILABLE_MARKERS):
        return BackendUnavailableError(
            "The model is unavailable right now; retry shortly.", headers={"Retry-After": "1"}
        )
    first_line = message.strip().splitlines()[0] if message.strip() else "inference failed"
    if default is BackendError:
        return BackendError(f"The inference backend failed: {first_line}")
    return default(first_line)


@contextmanager
def map_grpc_errors() -> Iterator[None]:
    """Re-raise gRPC failures as API errors."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise error_for_status(exc.code(), exc.details() or "") from exc
