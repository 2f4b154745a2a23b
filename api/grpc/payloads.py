"""gRPC messages to the REST API's JSON bodies and back.

Requests become the JSON body a REST client would send for the same call (field names are
the same), so the REST schemas validate them with the same rules, defaults and error
parameters. Replies are the REST objects, field by field.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from google.protobuf import json_format, struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from api.errors import InvalidRequestError
from api.grpc import llm_service_pb2 as pb

MessageT = TypeVar("MessageT", bound=Message)
# JSON-valued fields (response_format, tools, tool_choice, ...) carried as they are.
_JSON_TYPES = frozenset(
    {
        struct_pb2.Struct.DESCRIPTOR.full_name,
        struct_pb2.Value.DESCRIPTOR.full_name,
        struct_pb2.ListValue.DESCRIPTOR.full_name,
    }
)


def fields_of(message: Message) -> dict[str, Any]:
    """The fields ``message`` sets, by name, as JSON values (unset ones are left out, so the
    schema applies its defaults)."""
    return {field.name: _json(field, value) for field, value in message.ListFields()}


def _json(field: FieldDescriptor, value: Any) -> Any:
    kind = field.message_type
    if kind is None:
        return list(value) if _repeated(field) else value
    if kind.GetOptions().map_entry:
        return dict(value)
    if kind.full_name in _JSON_TYPES:
        convert = json_format.MessageToDict
    elif kind.full_name == pb.TokenIds.DESCRIPTOR.full_name:
        return [list(item.ids) for item in value] if _repeated(field) else list(value.ids)
    else:
        convert = fields_of
    return [convert(item) for item in value] if _repeated(field) else convert(value)


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


def chat_body(request: pb.ChatCompletionRequest, stream: bool) -> dict[str, Any]:
    """The chat completion request as REST's body (a streamed one always reports usage)."""
    body = fields_of(request)
    if "messages" in body:
        body["messages"] = [
            _message_content(message, index) for index, message in enumerate(body["messages"])
        ]
    return _streamed(body) if stream else body


def completion_body(request: pb.CompletionRequest, stream: bool) -> dict[str, Any]:
    body = _one_of(fields_of(request), "prompt", "prompt_tokens")
    return _streamed(body) if stream else body


def embedding_body(request: pb.EmbeddingRequest) -> dict[str, Any]:
    return _one_of(fields_of(request), "input", "input_tokens")


def _message_content(message: dict[str, Any], index: int) -> dict[str, Any]:
    parts = message.pop("content_parts", None)
    if parts is None:
        return message
    if "content" in message:
        raise InvalidRequestError(
            "Set 'content' or 'content_parts', not both.", param=f"messages[{index}].content"
        )
    return {**message, "content": parts}


def _one_of(body: dict[str, Any], texts: str, tokens: str) -> dict[str, Any]:
    """REST's one field of several shapes from the gRPC fields of each: one item is REST's
    single string or token list, several are its list."""
    ids = body.pop(tokens, None)
    if ids is not None and texts in body:
        raise InvalidRequestError(f"Set '{texts}' or '{tokens}', not both.", param=texts)
    items = body.get(texts) if ids is None else ids
    if items is not None:
        body[texts] = items[0] if len(items) == 1 else items
    return body


def _streamed(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "stream": True, "stream_options": {"include_usage": True}}


def to_message(payload: dict[str, Any] | bytes, kind: type[MessageT]) -> MessageT:
    """A REST reply object (or its JSON) as the gRPC message of the same fields."""
    data = orjson.loads(payload) if isinstance(payload, bytes) else payload
    message: MessageT = kind()
    json_format.ParseDict(data, message, ignore_unknown_fields=True)
    return message


def chat_chunk(payload: bytes) -> pb.ChatCompletionChunk:
    """A streamed ``chat.completion.chunk``; text deltas are built field by field (one per
    token: ParseDict costs about six times as much), anything else by ``to_message``."""
    data = orjson.loads(payload)
    choices = []
    for choice in data["choices"]:
        delta = choice["delta"]
        if choice.get("logprobs") is not None or delta.get("tool_calls"):
            return to_message(data, pb.ChatCompletionChunk)
        choices.append(
            pb.ChunkChoice(
                index=choice["index"],
                delta=pb.ChoiceDelta(role=delta.get("role"), content=delta.get("content")),
                finish_reason=choice.get("finish_reason"),
            )
        )
    return pb.ChatCompletionChunk(choices=choices, **_envelope(data))


def completion_chunk(payload: bytes) -> pb.Completion:
    """A streamed ``text_completion`` chunk (see ``chat_chunk``)."""
    data = orjson.loads(payload)
    choices = []
    for choice in data["choices"]:
        if choice.get("logprobs") is not None:
            return to_message(data, pb.Completion)
        choices.append(
            pb.CompletionChoice(
                text=choice["text"],
                index=choice["index"],
                finish_reason=choice.get("finish_reason"),
            )
        )
    return pb.Completion(choices=choices, **_envelope(data))


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    """The fields every chunk of a stream shares, and the usage of the last one."""
    fields = {
        name: data[name]
        for name in ("id", "object", "created", "model", "system_fingerprint")
        if data.get(name) is not None
    }
    usage = data.get("usage")
    if usage is not None:
        fields["usage"] = pb.Usage(
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage.get("completion_tokens", 0),
            total_tokens=usage["total_tokens"],
        )
    return fields
