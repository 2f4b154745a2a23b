"""The ``response`` object as OpenAI sends it (SDK 3.63.0 ``openai.types.responses.Response``)."""

from __future__ import annotations

from typing import Any

from api.schemas.responses import CreateResponse
from api.storage.responses import ResponseRecord


def echo_params(body: CreateResponse) -> dict[str, Any]:
    """What the response object repeats of its request, with OpenAI's defaults filled in."""
    conversation = body.conversation_id()
    return {
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "metadata": body.metadata or {},
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": body.previous_response_id,
        "conversation": {"id": conversation} if conversation else None,
        "store": body.stored(),
        "temperature": 1.0 if body.temperature is None else body.temperature,
        "top_p": 1.0 if body.top_p is None else body.top_p,
        "top_logprobs": body.top_logprobs or 0,
        "text": {"format": {"type": "text"}, **(body.text or {})},
        "tool_choice": body.tool_choice or "auto",
        "tools": body.tools or [],
        "truncation": body.truncation or "disabled",
        "user": body.user,
        "safety_identifier": body.safety_identifier,
        "prompt_cache_key": body.prompt_cache_key,
    }


def response_json(record: ResponseRecord) -> dict[str, Any]:
    completed = record.completed_at
    return {
        "id": record.id,
        "object": "response",
        "created_at": int(record.created_at.timestamp()),
        "status": record.status,
        "background": record.background,
        "completed_at": int(completed.timestamp()) if completed else None,
        "error": record.error,
        "incomplete_details": record.incomplete_details,
        "model": record.model,
        "output": record.output,
        "usage": record.usage,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        **record.params,
    }


def usage_json(input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def output_text(record: ResponseRecord) -> str:
    return "".join(
        part.get("text", "")
        for item in record.output
        if item.get("type") == "message"
        for part in item.get("content", [])
    )
