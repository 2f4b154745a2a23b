"""Which stored messages go into the prompt: the truncation policy.

The tokenizer runs inside Triton, so the API estimates tokens the way the limiter does
(``api.limits.estimate``: four characters per token plus a few per message). The prompt is
the system prompt (always kept) plus the newest messages whose estimate fits in
``context_length - max_tokens``; older messages are dropped whole, never cut, and the newest
message (the user's turn) is always sent. Should Triton still find the prompt too long (the
estimate is only an estimate), the caller drops the older half of what is left and retries
(``shorter``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from api.limits.estimate import CHARS_PER_TOKEN, TOKENS_PER_MESSAGE


class Turn(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE


def fit_history(
    system_prompt: str | None, turns: Sequence[Turn], context_length: int, max_tokens: int
) -> list[Turn]:
    """The newest ``turns`` that fit beside the system prompt and the reply's budget."""
    budget = context_length - max_tokens
    if system_prompt:
        budget -= estimate_tokens(system_prompt)
    kept: list[Turn] = []
    for turn in reversed(turns):
        cost = estimate_tokens(turn.content)
        if kept and cost > budget:
            break
        kept.append(turn)
        budget -= cost
    return kept[::-1]


def shorter(turns: Sequence[Turn]) -> list[Turn] | None:
    """Half the turns (the newest), or None when only the last one is left."""
    if len(turns) <= 1:
        return None
    return list(turns[len(turns) // 2 :])


def prompt_messages(system_prompt: str | None, turns: Sequence[Turn]) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return head + [{"role": turn.role, "content": turn.content} for turn in turns]
