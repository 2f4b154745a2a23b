"""`/v1/conversations` shapes: OpenAI's conversations and items (openai 3.63.0's
``types/conversations``), plus the deprecated ``/messages`` turn and message shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from api.schemas.bounds import INT32_MAX, UINT64_MAX, check_json_bounds
from api.schemas.common import LenientModel, StopField, Usage

# OpenAI's metadata: up to 16 pairs, keys up to 64 characters, values up to 512.
Metadata = Annotated[
    dict[
        Annotated[str, StringConstraints(max_length=64)],
        Annotated[str, StringConstraints(max_length=512)],
    ],
    Field(max_length=16),
]


class CreateConversation(LenientModel):
    # Checked item by item by api.conversations.items (for the param path of each field).
    items: list[Any] | None = None
    metadata: Metadata | None = None
    safety_identifier: str | None = Field(default=None, max_length=64)
    # Deprecated, for the /messages routes: the model that replies, and a system prompt
    # (stored as the conversation's first item, a system message).
    model: str | None = None
    system_prompt: str | None = None

    @field_validator("items")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        check_json_bounds(value)
        return value


class UpdateConversation(LenientModel):
    metadata: Metadata | None


class CreateItems(LenientModel):
    items: list[Any]

    @field_validator("items")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        check_json_bounds(value)
        return value


class AppendMessage(LenientModel):
    """The user's turn (deprecated route); the reply is generated from the stored history."""

    content: str = Field(min_length=1)
    # The model, for a conversation created without one (through the OpenAI-shaped API).
    model: str | None = None
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: StopField = None
    # The engine's seed is a UINT64: a negative seed is refused, never wrapped.
    seed: int | None = Field(default=None, ge=0, le=UINT64_MAX)


class ConversationObject(BaseModel):
    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int
    metadata: dict[str, str]


class ConversationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ConversationObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class ConversationDeleted(BaseModel):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool


class ConversationItemList(BaseModel):
    """Items as OpenAI shows them (``message``, ``function_call``, ``function_call_output``)."""

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class MessageObject(BaseModel):
    """A user or assistant message item as the deprecated /messages routes show it."""

    id: str
    object: Literal["conversation.message"] = "conversation.message"
    conversation_id: str
    created_at: int
    role: Literal["user", "assistant"]
    content: str
    # incomplete: the reply was cut short (the client left, or the stream failed).
    status: Literal["completed", "incomplete"]
    usage: Usage | None = None


class MessageList(BaseModel):
    object: Literal["list"] = "list"
    data: list[MessageObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False
