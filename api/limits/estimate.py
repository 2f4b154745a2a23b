"""What a request will cost before it runs: its model and a token reservation.

Like OpenAI, prompt tokens are estimated from characters (about four per token) before
admission; the reservation adds ``max_tokens`` once per choice (every prompt x ``n``: each
runs as its own generation) and is settled against the real usage after.
"""

from __future__ import annotations

from typing import Any

import orjson

from api.errors import NotFoundError
from api.limits.rules import Demand
from api.registry import ModelRegistry
from api.settings import ModelKind

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


def estimate(body: bytes, registry: ModelRegistry) -> Demand:
    """Demand of a JSON request body; anything unparsable demands nothing (the route 400s)."""
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return Demand()
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), str):
        return Demand()
    try:
        model = registry.get(payload["model"])
    except NotFoundError:
        return Demand()
    prompt = prompt_tokens(payload)
    if model.kind is ModelKind.EMBEDDING:
        return Demand(model=model.id, tokens=prompt)
    completion = (
        _int(payload.get("max_completion_tokens"))
        or _int(payload.get("max_tokens"))
        or _int(payload.get("max_output_tokens"))  # the Responses API's name
    )
    count = choice_count(payload)
    return Demand(
        model=model.id,
        tokens=prompt + count * (completion or model.default_max_tokens),
        choices=count,
    )


def choice_count(payload: dict[str, Any]) -> int:
    """Generations a request runs: prompts x ``n`` (``best_of`` if larger: the route refuses
    it, but nothing reserves less than the request asks for)."""
    per_prompt = max(_int(payload.get("n")) or 1, _int(payload.get("best_of")) or 1)
    return _prompt_count(payload.get("prompt")) * per_prompt


def _prompt_count(prompt: Any) -> int:
    # A list of strings or of token-id lists holds one prompt per item; a string or one
    # token-id list (a list of ints) is a single prompt.
    if isinstance(prompt, list) and prompt and not all(isinstance(item, int) for item in prompt):
        return len(prompt)
    return 1


def prompt_tokens(payload: dict[str, Any]) -> int:
    chars, items = 0, 0
    messages = payload.get("messages")
    for message in messages if isinstance(messages, list) else []:  # any JSON may arrive here
        if isinstance(message, dict):
            chars += _chars(message.get("content"))
            items += 1
    for field in ("prompt", "input", "instructions"):
        chars += _chars(payload.get(field))
    return -(-chars // CHARS_PER_TOKEN) + items * TOKENS_PER_MESSAGE


def _chars(value: Any, depth: int = 0) -> int:
    if isinstance(value, int):  # a token id of a pre-tokenized prompt
        return CHARS_PER_TOKEN
    if isinstance(value, str):
        return len(value)
    # Two levels hold every valid shape (token-id lists of a prompt, a message's parts); any
    # JSON may arrive here, nested up to the parser's 1024 levels, and the route 400s it.
    if isinstance(value, list) and depth < 2:
        return sum(
            _chars(_item_text(item) if isinstance(item, dict) else item, depth + 1)
            for item in value
        )
    return 0


def _item_text(item: dict[str, Any]) -> Any:
    """A content part's text, or a Responses input item's content (or call output)."""
    for key in ("text", "content", "output", "arguments"):
        if key in item:
            return item[key]
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
