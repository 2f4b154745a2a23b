"""Log probabilities end to end without Triton: engine -> tensorrt_llm arrays -> postprocessing.

The values must be the log-softmax of the model's raw logits, whatever the sampling settings,
and the top alternatives a plain top-k of that same distribution.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from inference.generation import GenerationEngine
from inference.logprobs import LogprobsBuilder, log_softmax, top_k
from inference.request import GenerationOutput, GenerationRequest
from inference.trtllm_io import ParsedRequest, response_arrays
from tests.inference.tiny_llama import VOCAB_SIZE, collect, save_tiny_llama, tokens_of

PROMPT = (5, 17, 42, 99, 7)
TABLE = [f"<{i}>".encode() for i in range(VOCAB_SIZE)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Iterator[GenerationEngine]:
    engine = GenerationEngine.from_pretrained(model_dir)
    engine.start()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def reference_model(model_dir: Path) -> PreTrainedModel:
    model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return model


def sampled(streaming: bool) -> GenerationRequest:
    """Temperature, top-k and a penalty: the sampled distribution is not the model's."""
    return GenerationRequest(
        PROMPT,
        6,
        temperature=0.7,
        top_k=20,
        seed=3,
        repetition_penalty=1.3,
        return_log_probs=True,
        return_generation_logits=True,
        streaming=streaming,
    )


def model_logits(model: PreTrainedModel, tokens: list[int]) -> torch.Tensor:
    """The logits each generated token was drawn from, by a plain forward pass."""
    with torch.inference_mode():
        logits: torch.Tensor = model(torch.tensor([PROMPT + tuple(tokens)])).logits[0]
    return logits[len(PROMPT) - 1 : -1]


def postprocess(
    outputs: list[GenerationOutput], request: GenerationRequest
) -> list[npt.NDArray[Any]]:
    """Each response through response_arrays and the builder; columns: ids, values, top ids."""
    builder = LogprobsBuilder(TABLE, top_logprobs=5)
    parsed = ParsedRequest(request, exclude_input_in_output=True)
    tokens, values, top_tokens, top_values = [], [], [], []
    for output in outputs:
        if not output.token_ids:
            continue
        arrays = response_arrays(output, parsed)
        result = builder(
            arrays["output_ids"].astype(np.int32),
            arrays["sequence_length"].astype(np.int32),
            arrays["output_log_probs"],
            arrays["generation_logits"],
        )
        tokens += [TABLE.index(t) for t in result.tokens[0]]
        values += result.logprobs[0].tolist()
        top_tokens += [[TABLE.index(t) for t in row] for row in result.top_tokens[0]]
        top_values += result.top_logprobs[0].tolist()
    return [np.array(tokens), np.array(values), np.array(top_tokens), np.array(top_values)]


@pytest.mark.parametrize("streaming", [True, False])
def test_logprobs_and_top_logprobs_are_the_raw_models(
    engine: GenerationEngine, reference_model: PreTrainedModel, streaming: bool
) -> None:
    request = sampled(streaming)
    outputs = collect(engine, request)
    tokens = tokens_of(outputs)
    expected = torch.log_softmax(model_logits(reference_model, tokens), dim=-1)
    chosen = [float(expected[i, t]) for i, t in enumerate(tokens)]
    engine_values = [value for output in outputs for value in output.log_probs]
    assert engine_values == pytest.approx(chosen, abs=1e-4)

    ids, values, top_ids, top_values = postprocess(outputs, request)
    assert ids.tolist() == tokens
    assert values.tolist() == pytest.approx(chosen, abs=1e-4)
    best = torch.topk(expected, 5)
    assert top_ids.tolist() == best.indices.tolist()
    assert top_values == pytest.approx(best.values.numpy(), abs=1e-4)


def test_generation_logits_only_when_asked(engine: GenerationEngine) -> None:
    outputs = collect(engine, GenerationRequest(PROMPT, 3, temperature=0.0, streaming=False))
    assert all(output.generation_logits is None for output in outputs)
    asked = collect(
        engine, GenerationRequest(PROMPT, 3, return_generation_logits=True, streaming=False)
    )
    final = asked[-1].generation_logits
    assert final is not None and final.shape == (3, VOCAB_SIZE)


def test_builder_without_logits_reports_tokens_and_given_values() -> None:
    builder = LogprobsBuilder(TABLE)
    tokens = np.array([[[5, 6, 7, 8, 9]]], dtype=np.int32)  # prompt 5, 6, 7 kept in the output
    log_probs = np.array([[[-0.25, -1.5]]], dtype=np.float32)
    result = builder(tokens, np.array([[5]], dtype=np.int32), log_probs)
    assert result.tokens.tolist() == [[b"<8>", b"<9>"]]
    assert result.logprobs.tolist() == [[-0.25, -1.5]]
    assert result.top_tokens.shape == result.top_logprobs.shape == (1, 2, 0)
    bare = builder(tokens, np.array([[2]], dtype=np.int32))
    assert bare.tokens.tolist() == [[b"<5>", b"<6>"]]
    assert bare.logprobs.shape == (1, 0)


def test_top_k_clamps_to_the_vocabulary_and_breaks_ties_by_id() -> None:
    log_probs = log_softmax(np.array([[0.0, 2.0, 2.0, -np.inf]]))
    assert top_k(log_probs, 3).tolist() == [[1, 2, 0]]
    assert top_k(log_probs, 10).shape == (1, 4)
    assert np.exp(log_probs).sum() == pytest.approx(1.0)
    builder = LogprobsBuilder([b"a", b"b", b"\x00", b"d"], top_logprobs=20)
    logits = np.array([[[[0.0, 1.0, 3.0, 2.0]]]], dtype=np.float32)
    result = builder(
        np.array([[[2]]], dtype=np.int32), np.array([[1]], dtype=np.int32), None, logits
    )
    assert result.tokens.tolist() == [[b"\x00"]]  # a NUL byte survives
    assert result.top_tokens.tolist() == [[[b"\x00", b"d", b"b", b"a"]]]
    assert result.logprobs[0, 0] == pytest.approx(result.top_logprobs[0, 0, 0])
