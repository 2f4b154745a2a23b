"""Guided decoding in the engine: a random tiny Llama still produces what the grammar says.

The model is random, so only the grammar can make its output JSON. The tokenizer is the project's
byte-level one (the grammar works on token bytes), and the model has that tokenizer's vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase

from inference.generation import GenerationEngine
from inference.guided import GuidedDecoder
from inference.request import (
    FinishReason,
    GenerationOutput,
    GenerationRequest,
    GuidedDecoding,
    GuideType,
)
from tests.inference.tiny_llama import collect, save_tiny_llama, tokens_of

jsonschema = pytest.importorskip("jsonschema")

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "legs": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["soft", "loud"]}},
    },
    "required": ["name", "legs", "tags"],
    "additionalProperties": False,
}
PROMPT = (5, 17, 42, 99)


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    tokenizer_dir: Path,
    tokenizer: PreTrainedTokenizerBase,
) -> Iterator[GenerationEngine]:
    model_dir = save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-tok"), len(tokenizer))
    engine = GenerationEngine.from_pretrained(model_dir, tokenizer_dir=tokenizer_dir)
    engine.start()
    yield engine
    engine.close()


def request(
    tokenizer: PreTrainedTokenizerBase, guided: GuidedDecoding, **kwargs: object
) -> GenerationRequest:
    fields: dict[str, object] = {"end_id": tokenizer.eos_token_id, "temperature": 0.0}
    fields.update(kwargs)
    return GenerationRequest(PROMPT, 48, guided_decoding=guided, **fields)  # type: ignore[arg-type]


def closing_bias(tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> torch.Tensor:
    """Make the random model close strings, arrays and objects (and end) whenever it may."""
    bias = torch.zeros(vocab_size)
    for text in ('"', "}", "]", ","):
        bias[tokenizer.convert_tokens_to_ids(text)] = 6.0
    bias[tokenizer.eos_token_id] = 6.0
    return bias


def text_of(tokenizer: PreTrainedTokenizerBase, outputs: list[GenerationOutput]) -> str:
    return str(tokenizer.decode(tokens_of(outputs), skip_special_tokens=True))


@pytest.mark.parametrize(
    "guided",
    [GuidedDecoding(GuideType.JSON), GuidedDecoding(GuideType.JSON_SCHEMA, json.dumps(SCHEMA))],
    ids=["json", "json_schema"],
)
def test_output_that_ends_with_the_end_id_is_valid(
    engine: GenerationEngine, tokenizer: PreTrainedTokenizerBase, guided: GuidedDecoding
) -> None:
    bias = closing_bias(tokenizer, engine.vocab_size)
    ended = 0
    for seed in range(8):
        sampled = request(
            tokenizer, guided, temperature=1.0, top_k=50, seed=seed, embedding_bias=bias
        )
        outputs = collect(engine, sampled)
        assert outputs[-1].finish_reason in (FinishReason.END_ID, FinishReason.LENGTH)
        if outputs[-1].finish_reason is FinishReason.END_ID:
            ended += 1
            document = json.loads(text_of(tokenizer, outputs))
            if guided.guide_type is GuideType.JSON_SCHEMA:
                jsonschema.validate(document, SCHEMA)
    assert ended >= 4


def test_greedy_without_help_still_gives_valid_json_or_runs_out(
    engine: GenerationEngine, tokenizer: PreTrainedTokenizerBase
) -> None:
    guided = GuidedDecoding(GuideType.JSON_SCHEMA, json.dumps(SCHEMA))
    outputs = collect(engine, request(tokenizer, guided))
    text = text_of(tokenizer, outputs)
    assert text.startswith('{"name": "')
    if outputs[-1].finish_reason is FinishReason.END_ID:
        jsonschema.validate(json.loads(text), SCHEMA)
    else:
        assert outputs[-1].finish_reason is FinishReason.LENGTH


def test_max_tokens_cuts_the_document_short(
    engine: GenerationEngine, tokenizer: PreTrainedTokenizerBase
) -> None:
    guided = GuidedDecoding(GuideType.JSON_SCHEMA, json.dumps(SCHEMA))
    outputs = collect(engine, replace(request(tokenizer, guided), max_new_tokens=3))
    assert outputs[-1].finish_reason is FinishReason.LENGTH
    with pytest.raises(json.JSONDecodeError):
        json.loads(text_of(tokenizer, outputs))


@pytest.mark.parametrize(
    ("guided", "allowed"),
    [
        (GuidedDecoding(GuideType.REGEX, "(yes|no)"), {"yes", "no"}),
        (GuidedDecoding(GuideType.EBNF_GRAMMAR, 'root ::= "up" | "down"'), {"up", "down"}),
    ],
    ids=["regex", "ebnf"],
)
def test_regex_and_grammar_end_when_complete(
    engine: GenerationEngine,
    tokenizer: PreTrainedTokenizerBase,
    guided: GuidedDecoding,
    allowed: set[str],
) -> None:
    for streaming in (True, False):
        outputs = collect(engine, request(tokenizer, guided, streaming=streaming))
        assert outputs[-1].finish_reason is FinishReason.END_ID
        assert text_of(tokenizer, outputs) in allowed


def test_a_grammar_that_contradicts_min_tokens_fails_only_its_request(
    engine: GenerationEngine, tokenizer: PreTrainedTokenizerBase
) -> None:
    guided = GuidedDecoding(GuideType.REGEX, "ok")
    outputs = collect(engine, request(tokenizer, guided, min_tokens=10))
    assert outputs[-1].finish_reason is FinishReason.ERROR
    assert "no token satisfies" in (outputs[-1].error or "")
    fine = collect(engine, request(tokenizer, guided))
    assert text_of(tokenizer, fine) == "ok"


@pytest.mark.parametrize(
    ("guided", "message"),
    [
        (GuidedDecoding(GuideType.JSON_SCHEMA, "{not json"), "json_schema guide does not compile"),
        (GuidedDecoding(GuideType.REGEX, "("), "regex guide does not compile"),
        (GuidedDecoding(GuideType.EBNF_GRAMMAR, 'start ::= "a"'), "root"),
    ],
)
def test_guides_that_do_not_compile_are_request_errors(
    engine: GenerationEngine,
    tokenizer: PreTrainedTokenizerBase,
    guided: GuidedDecoding,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=f"^invalid_guided_decoding: .*{message}"):
        engine.submit(request(tokenizer, guided), lambda output: None)


def test_guided_requests_need_the_tokenizer_and_an_end_id(
    tmp_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    guided = GuidedDecoding(GuideType.JSON)
    model = AutoModelForCausalLM.from_pretrained(save_tiny_llama(tmp_path, len(tokenizer)))
    without = GenerationEngine(model)
    with pytest.raises(ValueError, match=r"^invalid_guided_decoding: .*not enabled"):
        without.submit(request(tokenizer, guided), lambda output: None)
    with_decoder = GenerationEngine(model, guided_decoder=GuidedDecoder(tokenizer, len(tokenizer)))
    with pytest.raises(ValueError, match="needs an end_id"):
        with_decoder.submit(request(tokenizer, guided, end_id=None), lambda output: None)


@pytest.mark.parametrize(
    ("guide_type", "guide", "message"),
    [
        ("xml", "", "must be one of json, json_schema, regex, ebnf_grammar"),
        ("regex", "", "required"),
    ],
)
def test_guided_decoding_inputs_are_validated(guide_type: str, guide: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^invalid_guided_decoding: .*{message}"):
        GuidedDecoding.parse(guide_type, guide)
    assert GuidedDecoding.parse("json", None) == GuidedDecoding(GuideType.JSON, "")
