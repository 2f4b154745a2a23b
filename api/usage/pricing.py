"""The cost of a request from per-model prices (USD per million tokens).

USD per million tokens times tokens is micro-dollars; costs are kept as integer nano-dollars
so that sums over millions of requests stay exact.
"""

from __future__ import annotations

from collections.abc import Mapping

from api.settings import ModelPrice

NANOS_PER_USD = 1_000_000_000


def cost_nanos(
    prices: Mapping[str, ModelPrice],
    model: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
) -> int:
    """Cached prompt tokens are billed at the cached price (the prompt price if none)."""
    price = prices.get(model or "")
    if price is None:
        return 0
    cached = min(cached_tokens, prompt_tokens)
    cached_price = price.prompt if price.cached is None else price.cached
    micros = (
        (prompt_tokens - cached) * price.prompt
        + cached * cached_price
        + completion_tokens * price.completion
    )
    return round(micros * 1000)


def format_usd(nanos: int) -> str:
    """``0.000123`` style, enough digits for one token of a cheap model."""
    return f"{nanos / NANOS_PER_USD:.9f}".rstrip("0").rstrip(".") or "0"
