"""Log probabilities in OpenAI's two shapes (chat ``content`` list, legacy completions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.backend.types import TokenLogprob


def _token(raw: bytes) -> str:
    # A token can hold part of a multi-byte character: show it, keep the exact bytes beside it.
    return raw.decode("utf-8", errors="replace")


def chat_logprobs(entries: Sequence[TokenLogprob], top_n: int) -> dict[str, Any]:
    """``{"content": [{token, logprob, bytes, top_logprobs}], "refusal": None}``."""
    return {
        "content": [
            {
                "token": _token(entry.token),
                "logprob": entry.logprob,
                "bytes": list(entry.token),
                "top_logprobs": [
                    {"token": _token(token), "logprob": logprob, "bytes": list(token)}
                    for token, logprob in entry.top[:top_n]
                ],
            }
            for entry in entries
        ],
        "refusal": None,
    }


def completion_logprobs(
    entries: Sequence[TokenLogprob], top_n: int, text_offset: int
) -> dict[str, Any]:
    """The legacy shape: parallel lists and one ``{token: logprob}`` map per position."""
    offsets, position = [], text_offset
    for entry in entries:
        offsets.append(position)
        position += len(_token(entry.token))
    return {
        "tokens": [_token(entry.token) for entry in entries],
        "token_logprobs": [entry.logprob for entry in entries],
        "top_logprobs": [
            {_token(token): logprob for token, logprob in entry.top[:top_n]} for entry in entries
        ],
        "text_offset": offsets,
    }
