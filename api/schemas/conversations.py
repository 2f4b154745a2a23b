"""`/v1/conversations` shapes: stored conversations whose replies come from their history."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.bounds import INT32_MAX, UINT64_MAX
from api.schemas.common import LenientModel, StopField, Usage


class CreateConversation(LenientModel):
    model: str
    system_prompt: str | None = None
    metadata: dict[str, str] | None = Field(default=None, max_length=16)


class AppendMessage(LenientModel):
    """The user's turn; the reply is generated from the stored history and stored too."""

    content: str = Field(min_length=1)
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
    model: str
    system_prompt: str | None = None
    metadata: dict[str, str] | None = None


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


class MessageObject(BaseModel):
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
