"""Logit processing and token choice, on hand-made logits."""

from __future__ import annotations

import math

import pytest
import torch

from inference.request import GenerationRequest
from inference.sampling import (
    apply_penalties,
    bad_word_bans,
    ban_tokens,
    choose_token,
    ends_with,
    process_logits,
    token_log_prob,
    top_k_mask,
    top_p_mask,
)

NEG_INF = float("-inf")


def request(**kwargs: object) -> GenerationRequest:
    return GenerationRequest((1,), 4, **kwargs)  # type: ignore[arg-type]


def test_repetition_penalty_divides_positive_and_multiplies_negative_seen_logits() -> None:
    logits = torch.tensor([2.0, -2.0, 2.0, -2.0])
    counts = torch.tensor([1, 3, 0, 0])
    assert apply_penalties(logits, counts, repetition=2.0).tolist() == [1.0, -4.0, 2.0, -2.0]


def test_presence_penalty_subtracts_once_per_seen_token() -> None:
    logits = torch.zeros(3)
    counts = torch.tensor([0, 1, 5])
    assert apply_penalties(logits, counts, presence=0.5).tolist() == [0.0, -0.5, -0.5]


def test_frequency_penalty_subtracts_per_occurrence() -> None:
    logits = torch.zeros(3)
    counts = torch.tensor([0, 1, 5])
    assert apply_penalties(logits, counts, frequency=0.5).tolist() == [0.0, -0.5, -2.5]


def test_neutral_penalties_leave_logits_alone() -> None:
    logits = torch.tensor([1.0, -1.0])
    assert torch.equal(apply_penalties(logits, torch.tensor([2, 2])), logits)


def test_ban_tokens_ignores_out_of_vocabulary_ids_and_copies() -> None:
    logits = torch.zeros(3)
    banned = ban_tokens(logits, [1, 7, -1])
    assert banned.tolist() == [0.0, NEG_INF, 0.0]
    assert logits.tolist() == [0.0, 0.0, 0.0]


def test_ends_with() -> None:
    assert ends_with([1, 2, 3], [2, 3])
    assert not ends_with([1, 2, 3], [1, 2])
    assert not ends_with([1, 2, 3], [])
    assert not ends_with([3], [2, 3])


def test_bad_words_ban_the_last_token_when_the_prefix_matches() -> None:
    bad = ((9,), (4, 5), (1, 2, 6))
    assert bad_word_bans([3, 4], bad) == {9, 5}
    assert bad_word_bans([1, 2], bad) == {9, 6}
    assert bad_word_bans([2, 1], bad) == {9}


def test_top_k_keeps_the_k_largest() -> None:
    logits = torch.tensor([1.0, 4.0, 3.0, 2.0])
    assert top_k_mask(logits, 2).tolist() == [NEG_INF, 4.0, 3.0, NEG_INF]
    assert torch.equal(top_k_mask(logits, 0), logits)
    assert torch.equal(top_k_mask(logits, 9), logits)


@pytest.mark.parametrize(
    ("p", "kept"),
    [(0.5, [True, False, False, False]), (0.7, [True, True, False, False]), (0.96, [True] * 4)],
)
def test_top_p_keeps_the_smallest_prefix_reaching_p(p: float, kept: list[bool]) -> None:
    logits = torch.log(torch.tensor([0.3, 0.5, 0.15, 0.05]))[[1, 0, 2, 3]]
    masked = top_p_mask(logits, p)
    assert (masked > NEG_INF).tolist() == kept


def test_top_p_outside_the_open_unit_interval_keeps_everything() -> None:
    logits = torch.tensor([0.0, 1.0])
    assert torch.equal(top_p_mask(logits, 0.0), logits)
    assert torch.equal(top_p_mask(logits, 1.0), logits)


def test_process_logits_applies_bias_then_temperature_then_penalties() -> None:
    logits = torch.tensor([4.0, 2.0, 0.0])
    processed = process_logits(
        logits,
        request(
            temperature=2.0,
            top_p=0.9,
            presence_penalty=1.0,
            embedding_bias=torch.tensor([0.0, 2.0, 0.0]),
        ),
        counts=torch.tensor([1, 0, 0]),
        tokens=[1, 0],
        num_generated=0,
    )
    assert processed.tolist() == [1.0, 2.0, 0.0]


def test_min_tokens_bans_the_end_id_until_reached() -> None:
    logits = torch.zeros(4)
    counts = torch.zeros(4, dtype=torch.long)
    early = process_logits(logits, request(end_id=3, min_tokens=2), counts, [1], num_generated=1)
    late = process_logits(logits, request(end_id=3, min_tokens=2), counts, [1], num_generated=2)
    assert early[3] == NEG_INF
    assert late[3] == 0.0


def test_min_tokens_also_holds_back_single_token_stop_words() -> None:
    # The model's other end ids (tiny-chat: <|endoftext|> beside <|im_end|>) are sent as
    # single-token stop words: before min_tokens they are banned like the end id.
    logits = torch.zeros(6)
    counts = torch.zeros(6, dtype=torch.long)
    held = request(end_id=3, min_tokens=2, stop_words=((0,), (4, 5)))
    early = process_logits(logits, held, counts, [1], num_generated=1)
    late = process_logits(logits, held, counts, [1], num_generated=2)
    assert early[0] == NEG_INF and early[3] == NEG_INF
    assert early[4] == 0.0 and early[5] == 0.0  # a multi-token stop word is not banned
    assert late[0] == 0.0


@pytest.mark.parametrize(
    "params",
    [{"temperature": 0.0, "top_p": 0.9}, {"top_k": 1}, {"top_k": 0, "top_p": 0.0}],
)
def test_greedy_settings_take_the_arg_max(params: dict[str, float]) -> None:
    req = request(**params)
    assert req.is_greedy
    assert choose_token(torch.tensor([0.0, 3.0, 1.0]), req, torch.Generator()) == 1


def test_token_log_prob_is_the_raw_log_softmax() -> None:
    logits = torch.tensor([0.0, 3.0, 1.0])
    assert token_log_prob(logits, 1) == pytest.approx(3.0 - math.log(1 + math.exp(3) + math.e))


def test_sampling_respects_top_k_and_is_reproducible_with_a_seed() -> None:
    logits = torch.tensor([1.0, 1.1, 1.2, 5.0, 4.9])
    req = request(top_k=2)
    assert not req.is_greedy

    def draws(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return [choose_token(logits, req, generator) for _ in range(200)]

    first = draws(11)
    assert set(first) == {3, 4}
    assert draws(11) == first
    assert draws(12) != first


def test_sampling_with_top_p_only_draws_from_the_nucleus() -> None:
    logits = torch.log(torch.tensor([0.6, 0.3, 0.05, 0.05]))
    generator = torch.Generator().manual_seed(0)
    tokens = {choose_token(logits, request(top_p=0.8), generator) for _ in range(200)}
    assert tokens == {0, 1}
