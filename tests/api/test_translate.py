"""generation/translate.py: what the served model bounds, refused as a 400 before Triton sees it."""

from __future__ import annotations

import pytest

from api.errors import InvalidRequestError
from api.generation.translate import chat_to_generation, completion_to_generations
from api.schemas.chat import ChatCompletionRequest
from api.schemas.completions import CompletionRequest
from api.settings import ServedModel


def _model(**fields: object) -> ServedModel:
    return ServedModel.model_validate(
        {"id": "m", "kind": "chat", "triton_model": "ensemble", **fields}
    )


def _chat(top_logprobs: int) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "logprobs": True,
            "top_logprobs": top_logprobs,
        }
    )


def _completion(logprobs: int) -> CompletionRequest:
    return CompletionRequest.model_validate({"model": "m", "prompt": "hi", "logprobs": logprobs})


def test_top_logprobs_within_the_deployment_limit_pass() -> None:
    generation = chat_to_generation(_chat(3), _model(max_top_logprobs=3), "r")
    assert generation.params.top_logprobs == 3
    [one] = completion_to_generations(_completion(3), _model(max_top_logprobs=3), "r")
    assert one.params.top_logprobs == 3


@pytest.mark.parametrize(("limit", "offered"), [(2, "at most 2"), (0, "none")])
def test_top_logprobs_above_the_limit_name_the_parameter_and_limit(
    limit: int, offered: str
) -> None:
    with pytest.raises(InvalidRequestError) as chat:
        chat_to_generation(_chat(3), _model(max_top_logprobs=limit), "r")
    assert chat.value.param == "top_logprobs"
    assert "'top_logprobs' is too large: 3" in str(chat.value)
    assert offered in str(chat.value)
    with pytest.raises(InvalidRequestError) as completion:
        completion_to_generations(_completion(3), _model(max_top_logprobs=limit), "r")
    assert completion.value.param == "logprobs"
    assert offered in str(completion.value)


def test_logprobs_without_alternatives_need_no_generation_logits() -> None:
    generation = chat_to_generation(_chat(0), _model(max_top_logprobs=0), "r")
    assert generation.params.return_log_probs
    assert generation.params.top_logprobs == 0
