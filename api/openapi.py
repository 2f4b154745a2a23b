"""The OpenAPI 3.1 document, generated from the pydantic wire schemas.

Each route is described once in ``OPERATIONS`` (path, method, request and response schema,
an example); the JSON Schemas come from pydantic so the spec cannot drift from validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.schemas.admin import CreateKey, CreateOrganization
from api.schemas.batches import Batch, BatchList, CancelBatch, CreateBatch
from api.schemas.chat import ChatCompletion, ChatCompletionRequest
from api.schemas.common import ErrorResponse
from api.schemas.completions import Completion, CompletionRequest
from api.schemas.conversations import (
    AppendMessage,
    ConversationDeleted,
    ConversationItemList,
    ConversationList,
    ConversationObject,
    CreateConversation,
    CreateItems,
    MessageList,
    MessageObject,
    UpdateConversation,
)
from api.schemas.embeddings import EmbeddingRequest, EmbeddingResponse
from api.schemas.files import FileDeleted, FileList, FileObject, FileUpload
from api.schemas.models import ModelCard, ModelList
from api.schemas.moderations import ModerationRequest, ModerationResponse
from api.schemas.responses import CancelResponse, CountInputTokens, CreateResponse
from api.settings import TierLimits

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
    stream_frames: str = "`data: <chunk>` frames, then `data: [DONE]`"
    parameters: list[dict[str, Any]] = field(default_factory=list)
    status: str = "200"
    media_type: str = "application/json"
    public: bool = False
    request_media: str = "application/json"


_CHAT_EXAMPLE = {
    "model": "tiny-chat",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "max_tokens": 32,
}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "string"},
            "description": description}  # fmt: skip


_MODEL_PARAM = [_path("model")]
_USAGE_PARAMS = [
    _query("start", "First day, YYYY-MM-DD (default: 29 days before end)"),
    _query("end", "Last day, YYYY-MM-DD (default: today, UTC)"),
    _query("group_by", "Comma-separated: day, model, org_id, key_id"),
]

_PAGE_PARAMS = [
    _query("after", "Cursor: the id of the last object of the previous page"),
    _query("limit", "Page size (1-100)"),
]
_BATCH_EXAMPLE = {
    "input_file_id": "file-abc123",
    "endpoint": "/v1/chat/completions",
    "completion_window": "24h",
}
_CONVERSATION_PARAM = [_path("conversation_id")]
_ITEM_PARAMS = [*_CONVERSATION_PARAM, _path("item_id")]
_INCLUDE = _query("include", "Extra output to include (checked; this server stores none)")
_ITEM_EXAMPLE = {"items": [{"type": "message", "role": "user", "content": "Hello!"}]}
_CONVERSATION_OPERATIONS = [
    Operation("/v1/conversations", "post", "Create a conversation (up to 20 items)",
              "conversations", ConversationObject, CreateConversation,
              {**_ITEM_EXAMPLE, "metadata": {"topic": "demo"}}),
    Operation("/v1/conversations", "get", "List conversations (newest first; an extension)",
              "conversations", ConversationList, parameters=_PAGE_PARAMS),
    Operation("/v1/conversations/{conversation_id}", "get", "Retrieve a conversation",
              "conversations", ConversationObject, parameters=_CONVERSATION_PARAM),
    Operation("/v1/conversations/{conversation_id}", "post", "Update a conversation's metadata",
              "conversations", ConversationObject, UpdateConversation, {"metadata": {"k": "v"}},
              parameters=_CONVERSATION_PARAM),
    Operation("/v1/conversations/{conversation_id}", "delete", "Delete a conversation",
              "conversations", ConversationDeleted, parameters=_CONVERSATION_PARAM),
    Operation("/v1/conversations/{conversation_id}/items", "post",
              "Add items (up to 20) to a conversation", "conversations", ConversationItemList,
              CreateItems, _ITEM_EXAMPLE, parameters=[*_CONVERSATION_PARAM, _INCLUDE]),
    Operation("/v1/conversations/{conversation_id}/items", "get",
              "List a conversation's items (newest first; order=asc)", "conversations",
              ConversationItemList, parameters=[*_CONVERSATION_PARAM, *_PAGE_PARAMS,
                                                _query("order", "asc or desc"), _INCLUDE]),
    Operation("/v1/conversations/{conversation_id}/items/{item_id}", "get", "Retrieve an item",
              "conversations", None, parameters=[*_ITEM_PARAMS, _INCLUDE]),
    Operation("/v1/conversations/{conversation_id}/items/{item_id}", "delete",
              "Delete an item (answers with the conversation)", "conversations",
              ConversationObject, parameters=_ITEM_PARAMS),
    Operation("/v1/conversations/{conversation_id}/messages", "post",
              "Deprecated (use items and /v1/responses): add a user message; the reply "
              "(streamed with stream=true) is generated and stored",
              "conversations", MessageObject, AppendMessage,
              {"content": "What is the capital of France?", "model": "tiny-chat"}, streams=True,
              parameters=_CONVERSATION_PARAM),
    Operation("/v1/conversations/{conversation_id}/messages", "get",
              "Deprecated (use items): list a conversation's messages (oldest first; "
              "order=desc)", "conversations",
              MessageList, parameters=[*_CONVERSATION_PARAM, *_PAGE_PARAMS,
                                       _query("order", "asc or desc")]),
]  # fmt: skip
_BATCH_OPERATIONS = [
    Operation(
        "/v1/files",
        "post",
        "Upload a file (purpose batch: JSONL of requests)",
        "files",
        FileObject,
        FileUpload,
        {"purpose": "batch"},
        request_media="multipart/form-data",
    ),
    Operation(
        "/v1/files",
        "get",
        "List files",
        "files",
        FileList,
        parameters=[*_PAGE_PARAMS, _query("purpose", "Only files of this purpose")],
    ),
    Operation(
        "/v1/files/{file_id}",
        "get",
        "Retrieve a file",
        "files",
        FileObject,
        parameters=[_path("file_id")],
    ),
    Operation(
        "/v1/files/{file_id}",
        "delete",
        "Delete a file",
        "files",
        FileDeleted,
        parameters=[_path("file_id")],
    ),
    Operation(
        "/v1/files/{file_id}/content",
        "get",
        "A file's bytes",
        "files",
        None,
        parameters=[_path("file_id")],
        media_type="application/octet-stream",
    ),
    Operation(
        "/v1/batches", "post", "Create a batch", "batches", Batch, CreateBatch, _BATCH_EXAMPLE
    ),
    Operation(
        "/v1/batches",
        "get",
        "List batches (newest first)",
        "batches",
        BatchList,
        parameters=_PAGE_PARAMS,
    ),
    Operation(
        "/v1/batches/{batch_id}",
        "get",
        "Retrieve a batch (request_counts: progress)",
        "batches",
        Batch,
        parameters=[_path("batch_id")],
    ),
    Operation(
        "/v1/batches/{batch_id}/cancel",
        "post",
        "Cancel a batch",
        "batches",
        Batch,
        CancelBatch,
        {},
        parameters=[_path("batch_id")],
    ),
    *_CONVERSATION_OPERATIONS,
]

_RESPONSE_PARAM = [_path("response_id")]
_RESPONSE_OPERATIONS = [
    Operation("/v1/responses", "post",
              "Create a response (stream=true: typed `event:`/`data:` frames with "
              "sequence_number, no [DONE]; background=true: runs after the reply)",
              "responses", None, CreateResponse,
              {"model": "tiny-chat", "input": "Say hello.", "max_output_tokens": 16},
              streams=True, stream_frames="`event: <type>` and `data: <event>` frames, no [DONE]"),
    Operation("/v1/responses/input_tokens", "post", "Count a response's input tokens",
              "responses", None, CountInputTokens, {"model": "tiny-chat", "input": "Hi"}),
    Operation("/v1/responses/{response_id}", "get",
              "Retrieve a response (stream=true&starting_after=N: a background one's events)",
              "responses", None, streams=True,
              stream_frames="`event: <type>` and `data: <event>` frames, no [DONE]",
              parameters=[*_RESPONSE_PARAM, _query("stream", "true: replay and follow events"),
                          _query("starting_after", "Sequence number to resume after")]),
    Operation("/v1/responses/{response_id}", "delete", "Delete a response", "responses", None,
              parameters=_RESPONSE_PARAM),
    Operation("/v1/responses/{response_id}/cancel", "post", "Cancel a background response",
              "responses", None, CancelResponse, {}, parameters=_RESPONSE_PARAM),
    Operation("/v1/responses/{response_id}/input_items", "get",
              "List a response's input items (newest first; order=asc)", "responses", None,
              parameters=[*_RESPONSE_PARAM, *_PAGE_PARAMS, _query("order", "asc or desc")]),
]  # fmt: skip

OPERATIONS = [
    Operation("/v1/chat/completions", "post", "Create a chat completion", "chat",
              ChatCompletion, ChatCompletionRequest, _CHAT_EXAMPLE, streams=True),
    Operation("/v1/completions", "post", "Create a text completion (legacy)", "completions",
              Completion, CompletionRequest,
              {"model": "tiny-chat", "prompt": "Once upon a time", "max_tokens": 16}, streams=True),
    Operation("/v1/embeddings", "post", "Create embeddings", "embeddings", EmbeddingResponse,
              EmbeddingRequest, {"model": "all-minilm-l6-v2", "input": ["hello", "world"]}),
    Operation("/v1/moderations", "post", "Classify text with the content filter", "moderations",
              ModerationResponse, ModerationRequest, {"input": ["hello", "world"]}),
    Operation("/v1/models", "get", "List models", "models", ModelList),
    Operation("/v1/models/{model}", "get", "Retrieve a model", "models", ModelCard,
              parameters=_MODEL_PARAM),
    Operation("/v1/usage", "get", "Usage and cost of the calling key", "usage", None,
              parameters=_USAGE_PARAMS),
    Operation("/metrics", "get", "Prometheus metrics (metrics or operator scope)", "operations",
              None, media_type="text/plain"),
    Operation("/v1/admin/organizations", "post", "Create an organization", "admin", None,
              CreateOrganization, {"name": "acme", "tier": "default"}, status="201"),
    Operation("/v1/admin/organizations", "get", "List organizations", "admin", None),
    Operation("/v1/admin/keys", "post", "Create an API key (shown once)", "admin", None,
              CreateKey, {"org_id": "org_123", "name": "ci", "scopes": ["inference"]},
              status="201"),
    Operation("/v1/admin/keys", "get", "List API keys (hashes are never returned)", "admin",
              None, parameters=[_query("org_id", "Only this organization's keys")]),
    Operation("/v1/admin/keys/{key_id}", "delete", "Revoke an API key", "admin", None,
              parameters=[_path("key_id")]),
    Operation("/v1/admin/tiers/{name}", "put", "Create or replace a tier's limits", "admin",
              None, TierLimits, {"requests_per_minute": 60}, parameters=[_path("name")]),
    Operation("/v1/admin/usage", "get", "Usage by day, model, organization or key", "admin",
              None, parameters=[*_USAGE_PARAMS, _query("org_id", "Filter"),
                                _query("key_id", "Filter"), _query("model", "Filter")]),
    *_BATCH_OPERATIONS,
    *_RESPONSE_OPERATIONS,
    Operation("/health/live", "get", "Liveness probe", "health", None, public=True),
    Operation("/health/ready", "get", "Readiness probe (Triton and every model)", "health", None,
              public=True),
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
        "operationId": _operation_id(operation),
        "responses": {operation.status: _success(operation), **_errors()},
    }
    if not operation.public:
        spec["security"] = [{"bearerAuth": []}]
    if operation.parameters:
        spec["parameters"] = operation.parameters
    if operation.request is not None:
        content: dict[str, Any] = {"schema": {"$ref": REF.format(model=operation.request.__name__)}}
        if operation.example is not None:
            content["example"] = operation.example
        spec["requestBody"] = {"required": True, "content": {operation.request_media: content}}
    return spec


def _operation_id(operation: Operation) -> str:
    path = operation.path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
    return f"{operation.method}_{path}".replace(".", "_")


def _success(operation: Operation) -> dict[str, Any]:
    if operation.response is None:
        schema = {"type": "object" if operation.media_type == "application/json" else "string"}
        content: dict[str, Any] = {operation.media_type: {"schema": schema}}
    else:
        ref = REF.format(model=operation.response.__name__)
        content = {"application/json": {"schema": {"$ref": ref}}}
    if operation.streams:
        # OpenAPI's Media Type Object has no description; the schema carries it.
        content["text/event-stream"] = {"schema": _event_stream(operation.stream_frames)}
    return {"description": "OK", "content": content}


def _event_stream(frames: str) -> dict[str, Any]:
    return {
        "description": f"With stream=true: {frames}.",
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "string",
                "description": "A chunk or event object as JSON, an error object, or [DONE]",
            }
        },
    }


def _errors() -> dict[str, Any]:
    schema = {"$ref": REF.format(model=ErrorResponse.__name__)}
    return {
        status: {"description": text, "content": {"application/json": {"schema": schema}}}
        for status, text in _ERROR_STATUSES.items()
    }
