"""The API's error hierarchy, rendered once as OpenAI's error envelope.

Every failure a client can see is an ``APIError``: routes and the Triton boundary raise them,
one exception handler renders them. Nothing else reaches the client as a 500 with a traceback.
"""

from __future__ import annotations

from typing import Any

import orjson


class APIError(Exception):
    """An error with the HTTP status and the OpenAI ``type``/``code``/``param`` it maps to."""

    status_code: int = 500
    error_type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        """The body OpenAI sends: ``{"error": {message, type, param, code}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


class InvalidRequestError(APIError):
    status_code = 400
    error_type = "invalid_request_error"


class ContextLengthExceededError(InvalidRequestError):
    code = "context_length_exceeded"


class ContentFilterError(InvalidRequestError):
    """The prompt triggered the content filter (Azure OpenAI's 400 ``content_filter``)."""

    code = "content_filter"


class AuthenticationError(APIError):
    status_code = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDeniedError(APIError):
    status_code = 403
    error_type = "invalid_request_error"
    code = "permission_denied"


class NotFoundError(APIError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model '{model}' does not exist or you do not have access to it.",
            param="model",
        )


class MethodNotAllowedError(APIError):
    status_code = 405
    error_type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLargeError(APIError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class RateLimitError(APIError):
    status_code = 429
    error_type = "rate_limit_exceeded"
    code = "rate_limit_exceeded"


class BackendError(APIError):
    """The inference backend failed in a way that is not the client's fault."""

    status_code = 500
    error_type = "server_error"
    code = "backend_error"


class BackendUnavailableError(APIError):
    status_code = 503
    error_type = "server_error"
    code = "backend_unavailable"


class BackendTimeoutError(APIError):
    status_code = 504
    error_type = "server_error"
    code = "timeout"


class ModelOverloadedError(BackendUnavailableError):
    """Admission control refused the request: the model's queue is full."""

    code = "model_overloaded"


class CircuitOpenError(BackendUnavailableError):
    """The model's circuit breaker is open: failing fast instead of waiting on a broken backend."""

    code = "circuit_open"


class ShuttingDownError(BackendUnavailableError):
    """The server is draining before shutdown and takes no new work."""

    code = "shutting_down"
