"""Guided decoding in the engine: a random tiny Llama still produces what the grammar says.

The model is random, so only the grammar can make its output JSON. The tokenizer is the project's
byte-level one (the grammar works on token bytes), and the model has that tokenizer's vocabulary.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import xgrammar as xgr
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase

from inference.generation import GenerationEngine
from inference.guide_limits import GuideLimits
from inference.guided import GuidedDecoder, GuidedOptions
from inference.request import (
    FinishReason,
    GenerationOutput,
    GenerationRequest,
    GuidedDecoding,
    GuideType,
)
from tests.inference.tiny_llama import collect, drain, save_tiny_llama, tokens_of

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
    fields: dict[str, object] = {
        "end_id": tokenizer.eos_token_id,
        "temperature": 0.0,
        "max_new_tokens": 48,
    }
    fields.update(kwargs)
    return GenerationRequest(PROMPT, guided_decoding=guided, **fields)  # type: ignore[arg-type]


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
        (GuidedDecoding(GuideType.REGEX, "("), "regex guide does not compile"),
        (GuidedDecoding(GuideType.EBNF_GRAMMAR, 'start ::= "a"'), "root"),
    ],
)
def test_guides_that_do_not_compile_fail_their_request(
    engine: GenerationEngine,
    tokenizer: PreTrainedTokenizerBase,
    guided: GuidedDecoding,
    message: str,
) -> None:
    # Compiled off the caller's thread: the error comes back as the request's final output.
    outputs = collect(engine, request(tokenizer, guided))
    assert [output.finish_reason for output in outputs] == [FinishReason.ERROR]
    assert re.match(f"^invalid_guided_decoding: .*{message}", outputs[-1].error or "")


def test_a_schema_that_is_not_json_is_refused_at_once(
    engine: GenerationEngine, tokenizer: PreTrainedTokenizerBase
) -> None:
    guided = GuidedDecoding(GuideType.JSON_SCHEMA, "{not json")
    with pytest.raises(ValueError, match=r"^invalid_guided_decoding: .*does not compile"):
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


# Within the default limits, yet far slower than 10 ms to compile: optional properties cost
# more than linearly (1,000 of them take 0.6-2.6 s on a 2-core machine).
SLOW_SCHEMA = json.dumps(
    {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(1000)}}
)


class HeldDecoder(GuidedDecoder):
    """Compiles with xgrammar once the test lets it: a compile of any length, on demand."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, options: GuidedOptions) -> None:
        super().__init__(tokenizer, len(tokenizer), options)
        self.gate = threading.Event()
        self.started = threading.Event()

    def _compile(self, guided: GuidedDecoding) -> xgr.CompiledGrammar:
        self.started.set()
        self.gate.wait(30)
        return super()._compile(guided)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: PreTrainedTokenizerBase) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-budget"), len(tokenizer))


def engine_with(model_dir: Path, decoder: GuidedDecoder) -> GenerationEngine:
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    engine = GenerationEngine(model, guided_decoder=decoder)
    engine.start()
    return engine


def test_a_repeated_schema_compiles_once(
    model_dir: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    decoder = GuidedDecoder(tokenizer, len(tokenizer))
    engine = engine_with(model_dir, decoder)
    try:
        guided = GuidedDecoding(GuideType.JSON_SCHEMA, json.dumps(SCHEMA))
        queues = [queue.Queue[GenerationOutput]() for _ in range(3)]
        for outputs in queues:  # at once: the later ones join the compile under way
            engine.submit(request(tokenizer, guided, max_new_tokens=4), outputs.put)
        texts = {text_of(tokenizer, drain(outputs)) for outputs in queues}
        assert len(texts) == 1 and texts.pop().startswith('{"name')
        collect(engine, request(tokenizer, guided, max_new_tokens=4))
        assert decoder.cache.compiles == 1
        collect(engine, request(tokenizer, GuidedDecoding(GuideType.REGEX, "(yes|no)")))
        assert decoder.cache.compiles == 2
    finally:
        engine.close()


def test_a_compiling_grammar_never_stalls_the_other_requests(
    model_dir: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    decoder = HeldDecoder(tokenizer, GuidedOptions(compile_budget_s=60))
    engine = engine_with(model_dir, decoder)
    try:
        guided = GuidedDecoding(GuideType.JSON_SCHEMA, json.dumps(SCHEMA))
        waiting: queue.Queue[GenerationOutput] = queue.Queue()
        engine.submit(request(tokenizer, guided, max_new_tokens=8), waiting.put)
        assert decoder.started.wait(10)
        # While that grammar compiles, plain requests are prefilled, decoded and finished.
        for _ in range(3):
            plain = collect(engine, GenerationRequest(PROMPT, 16, temperature=0.0), timeout_s=10)
            assert plain[-1].finish_reason is FinishReason.LENGTH
        assert waiting.empty()
        decoder.gate.set()
        assert text_of(tokenizer, drain(waiting)).startswith('{"name": "')
    finally:
        decoder.gate.set()
        engine.close()


def test_a_grammar_past_its_budget_fails_its_request_alone(
    model_dir: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    decoder = HeldDecoder(tokenizer, GuidedOptions(compile_budget_s=0.3))
    engine = engine_with(model_dir, decoder)
    try:
        guided = GuidedDecoding(GuideType.JSON_SCHEMA, json.dumps(SCHEMA))
        started = time.monotonic()
        late = collect(engine, request(tokenizer, guided), timeout_s=10)
        assert time.monotonic() - started < 5
        assert [output.finish_reason for output in late] == [FinishReason.ERROR]
        assert re.match(
            r"^invalid_guided_decoding: the json_schema guide took longer than 0\.3 s to compile",
            late[-1].error or "",
        )
        plain = collect(engine, GenerationRequest(PROMPT, 4, temperature=0.0))
        assert plain[-1].finish_reason is FinishReason.LENGTH
        # The compile goes on in the background and fills the cache: the same guide now runs.
        decoder.gate.set()
        decoder.cache.acquire(guided).result(30)
        again = collect(engine, request(tokenizer, guided, max_new_tokens=4))
        assert again[-1].finish_reason is FinishReason.LENGTH
        assert decoder.cache.compiles == 1
    finally:
        decoder.gate.set()
        engine.close()


def test_the_budget_bounds_a_real_xgrammar_compile(
    model_dir: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    decoder = GuidedDecoder(tokenizer, len(tokenizer), GuidedOptions(compile_budget_s=0.01))
    engine = engine_with(model_dir, decoder)
    try:
        guided = GuidedDecoding(GuideType.JSON_SCHEMA, SLOW_SCHEMA)
        outputs = collect(engine, request(tokenizer, guided), timeout_s=10)
        assert "took longer than 0.01 s to compile" in (outputs[-1].error or "")
        # It still compiles in the background, into the cache.
        decoder.cache.acquire(guided).result(120)
        assert decoder.cache.compiles == 1
    finally:
        engine.close()


def test_a_cancelled_request_stops_waiting_for_its_grammar(
    model_dir: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    decoder = HeldDecoder(tokenizer, GuidedOptions(compile_budget_s=60))
    engine = engine_with(model_dir, decoder)
    try:
        guided = GuidedDecoding(GuideType.JSON_SCHEMA, json.dumps(SCHEMA))
        outputs: queue.Queue[GenerationOutput] = queue.Queue()
        handle = engine.submit(request(tokenizer, guided, request_id="r1"), outputs.put)
        assert decoder.started.wait(10)
        handle.cancel()
        assert [output.finish_reason for output in drain(outputs, 5)] == [FinishReason.CANCELLED]
    finally:
        decoder.gate.set()
        engine.close()


@pytest.mark.parametrize(
    ("limits", "schema", "message"),
    [
        (GuideLimits(max_bytes=100), SCHEMA, r"guide is \d+ bytes, more than the 100"),
        (GuideLimits(max_properties=2), SCHEMA, "has 3 object properties, more than the 2"),
        (GuideLimits(max_enum_values=1), SCHEMA, "has 2 enum and const values"),
        (GuideLimits(max_alternatives=1), {"type": ["string", "null"]}, "has 2 alternatives"),
    ],
)
def test_guides_past_the_limits_are_refused_before_compiling(
    model_dir: Path,
    tokenizer: PreTrainedTokenizerBase,
    limits: GuideLimits,
    schema: object,
    message: str,
) -> None:
    decoder = GuidedDecoder(tokenizer, len(tokenizer), GuidedOptions(limits=limits))
    engine = engine_with(model_dir, decoder)
    try:
        guided = GuidedDecoding(GuideType.JSON_SCHEMA, json.dumps(schema))
        with pytest.raises(ValueError, match=f"^invalid_guided_decoding: .*{message}"):
            engine.submit(request(tokenizer, guided), lambda output: None)
        assert decoder.cache.compiles == 0
    finally:
        engine.close()
