"""The OpenAPI 3.1 document, generated from the pydantic wire schemas.

Each route is described once in ``OPERATIONS`` (path, method, request and response schema,
an example); the JSON Schemas come from pydantic so the spec cannot drift from validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.schemas.chat import ChatCompletion, ChatCompletionRequest
from api.schemas.common import ErrorResponse
from api.schemas.completions import Completion, CompletionRequest
from api.schemas.embeddings import EmbeddingRequest, EmbeddingResponse
from api.schemas.models import ModelCard, ModelList

REF = "#/components/schemas/{model}"
_ERROR_STATUSES = {
    "400": "Invalid request (malformed JSON, wrong types, unsupported option, context length)",
    "401": "Missing or invalid API key",
    "404": "Unknown model or route",
    "429": "Rate limit or quota exceeded, or model overloaded",
    "500": "Server error",
    "503": "Inference backend unavailable or overloaded",
    "504": "Request deadline exceeded",
}


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    summary: str
    tag: str
    response: type[BaseModel] | None
    request: type[BaseModel] | None = None
    example: dict[str, Any] | None = None
    streams: bool = False
    parameters: list[dict[str, Any]] = field(default_factory=list)


_CHAT_EXAMPLE = {
    "model": "tiny-chat",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "max_tokens": 32,
}
_MODEL_PARAM = [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}]

OPERATIONS = [
    Operation("/v1/chat/completions", "post", "Create a chat completion", "chat",
              ChatCompletion, ChatCompletionRequest, _CHAT_EXAMPLE, streams=True),
    Operation("/v1/completions", "post", "Create a text completion (legacy)", "completions",
              Completion, CompletionRequest,
              {"model": "tiny-chat", "prompt": "Once upon a time", "max_tokens": 16}, streams=True),
    Operation("/v1/embeddings", "post", "Create embeddings", "embeddings", EmbeddingResponse,
              EmbeddingRequest, {"model": "all-minilm-l6-v2", "input": ["hello", "world"]}),
    Operation("/v1/models", "get", "List models", "models", ModelList),
    Operation("/v1/models/{model}", "get", "Retrieve a model", "models", ModelCard,
              parameters=_MODEL_PARAM),
    Operation("/health/live", "get", "Liveness probe", "health", None),
    Operation("/health/ready", "get", "Readiness probe (Triton and every model)", "health", None),
]  # fmt: skip


def build_openapi(operations: list[Operation], version: str) -> dict[str, Any]:
    """The whole document: paths from ``operations``, components from pydantic."""
    models: set[type[BaseModel]] = {ErrorResponse}
    for operation in operations:
        models.update(m for m in (operation.request, operation.response) if m is not None)
    _, schemas = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Triton OpenAI Gateway",
            "version": version,
            "description": "OpenAI-compatible API in front of NVIDIA Triton Inference Server.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(operation: Operation) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "summary": operation.summary,
        "tags": [operation.tag],
        "operationId": f"{operation.method}_{operation.path.strip('/').replace('/', '_')}",
        "responses": {"200": _success(operation), **_errors()},
    }
    if operation.parameters:
        spec["parameters"] = operation.parameters
    if operation.request is not None:
        content: dict[str, Any] = {"schema": {"$ref": REF.format(model=operation.request.__name__)}}
        if operation.example is not None:
            content["example"] = operation.example
        spec["requestBody"] = {"required": True, "content": {"application/json": content}}
    return spec


def _success(operation: Operation) -> dict[str, Any]:
    if operation.response is None:
        return {
            "description": "OK",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": REF.format(model=operation.response.__name__)}}
    }
    if operation.streams:
        content["text/event-stream"] = {
            "description": "With stream=true: `data: <chunk JSON>` frames, then `data: [DONE]`.",
            "schema": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {
                        "type": "string",
                        "description": "A chunk object as JSON, an error object, or [DONE]",
                    }
                },
            },
        }
    return {"description": "OK", "content": content}


def _errors() -> dict[str, Any]:
    schema = {"$ref": REF.format(model=ErrorResponse.__name__)}
    return {
        status: {"description": text, "content": {"application/json": {"schema": schema}}}
        for status, text in _ERROR_STATUSES.items()
    }
