"""Logit processing and token choice for one sequence, in TensorRT-LLM's order.

The order is: embedding bias, temperature, repetition / presence / frequency penalties, the end id
banned until ``min_tokens``, bad words banned, the grammar of guided decoding
(:mod:`inference.guided`), then top-k and top-p truncation and the draw. Log probabilities are
not taken from that processed distribution but from the raw logits (:func:`token_log_prob`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from inference.request import GenerationRequest, TokenWords


def apply_penalties(
    logits: torch.Tensor,
    counts: torch.Tensor,
    repetition: float = 1.0,
    presence: float = 0.0,
    frequency: float = 0.0,
) -> torch.Tensor:
    """Penalise tokens by how often they already occur (``counts``: occurrences per token id).

    Repetition divides positive logits and multiplies negative ones by ``repetition`` for every
    token seen at least once; presence subtracts ``presence`` once per seen token; frequency
    subtracts ``frequency`` per occurrence.
    """
    seen = counts > 0
    if repetition != 1.0:
        penalised = torch.where(logits < 0, logits * repetition, logits / repetition)
        logits = torch.where(seen, penalised, logits)
    if presence != 0.0:
        logits = logits - presence * seen.to(logits.dtype)
    if frequency != 0.0:
        logits = logits - frequency * counts.to(logits.dtype)
    return logits


def ban_tokens(logits: torch.Tensor, token_ids: Iterable[int]) -> torch.Tensor:
    """Set the logits of ``token_ids`` to minus infinity (out-of-vocabulary ids are ignored)."""
    banned = [token for token in token_ids if 0 <= token < logits.shape[-1]]
    if not banned:
        return logits
    logits = logits.clone()
    logits[banned] = float("-inf")
    return logits


def ends_with(sequence: Sequence[int], suffix: Sequence[int]) -> bool:
    """Whether ``sequence`` ends with ``suffix`` (an empty suffix never matches)."""
    return 0 < len(suffix) <= len(sequence) and list(sequence[-len(suffix) :]) == list(suffix)


def bad_word_bans(sequence: Sequence[int], bad_words: TokenWords) -> set[int]:
    """Tokens that would complete a bad word given the tokens so far.

    A bad word's last token is banned when the sequence ends with the rest of it, so single-token
    bad words are always banned.
    """
    return {
        word[-1]
        for word in bad_words
        if word and (len(word) == 1 or ends_with(sequence, word[:-1]))
    }


def top_k_mask(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits (ties at the boundary kept); ``k <= 0`` keeps all."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    threshold = torch.topk(logits, k).values[-1]
    return logits.masked_fill(logits < threshold, float("-inf"))


def top_p_mask(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches ``p``.

    ``p`` outside ``(0, 1)`` keeps all. The most likely token is always kept.
    """
    if p <= 0.0 or p >= 1.0:
        return logits
    probs, order = torch.sort(torch.softmax(logits, dim=-1), descending=True)
    # A token stays if the mass before it is still short of p.
    drop_sorted = (torch.cumsum(probs, dim=-1) - probs) >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def process_logits(
    logits: torch.Tensor,
    request: GenerationRequest,
    counts: torch.Tensor,
    tokens: Sequence[int],
    num_generated: int,
) -> torch.Tensor:
    """Apply bias, temperature, penalties, ``min_tokens`` and bad words to one row of logits."""
    if request.embedding_bias is not None:
        logits = logits + request.embedding_bias
    if not request.is_greedy and request.temperature != 1.0:
        logits = logits / request.temperature
    logits = apply_penalties(
        logits,
        counts,
        request.repetition_penalty,
        request.presence_penalty,
        request.frequency_penalty,
    )
    banned = bad_word_bans(tokens, request.bad_words)
    if num_generated < request.min_tokens:
        banned.update(min_tokens_bans(request))
    return ban_tokens(logits, banned)


def min_tokens_bans(request: GenerationRequest) -> set[int]:
    """What cannot be generated before ``min_tokens``: the end id and every single-token stop
    word (the model's other end-of-sequence ids arrive as such, e.g. ``<|endoftext|>`` beside
    ``<|im_end|>``), as vLLM treats ``stop_token_ids``; else a reply would end there early."""
    banned = {word[0] for word in request.stop_words if len(word) == 1}
    if request.end_id is not None:
        banned.add(request.end_id)
    return banned


def choose_token(
    logits: torch.Tensor,
    request: GenerationRequest,
    generator: torch.Generator | None,
) -> int:
    """Pick the next token from processed logits."""
    if request.is_greedy:
        return int(torch.argmax(logits).item())
    # TensorRT-LLM treats top_p == 0 with a top-k as "top-k only".
    top_p = 1.0 if request.top_p == 0.0 else request.top_p
    truncated = top_p_mask(top_k_mask(logits, request.top_k), top_p)
    probs = torch.softmax(truncated, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator).item())


def token_log_prob(raw_logits: torch.Tensor, token: int) -> float:
    """The model's own log probability of ``token``: log-softmax of the raw logits.

    Raw means before bias, temperature, penalties, bans and grammar, as the default "raw" mode of
    TensorRT-LLM's PyTorch backend (its C++ backend reports the temperature-scaled value). It is
    what OpenAI's ``logprobs`` describe, and the same distribution ``top_logprobs`` are taken
    from (``generation_logits`` are raw too), so the two always agree.
    """
    return float(torch.log_softmax(raw_logits.float(), dim=-1)[token].item())
