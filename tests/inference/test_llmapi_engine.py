"""inference.llmapi_engine against a fake ``tensorrt_llm`` (no machine here runs the real one).

The fake follows the upstream shapes read for the engine (NVIDIA/TensorRT-LLM main, commit
000a01de66f0: tensorrt_llm/sampling_params.py, tensorrt_llm/llmapi/llm.py,
tensorrt_llm/executor/result.py): ``SamplingParams``/``GuidedDecodingParams`` take keyword
arguments only (here they record them), ``LLM.generate_async`` returns a ``RequestOutput`` that
``async for`` iterates step by step, each step's ``outputs[0]`` holding the cumulative token ids.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import types
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from inference.engine import InferenceEngine
from inference.generation import GenerationEngine
from inference.llmapi_engine import LLMAPIEngine, WordsProcessor, load_options
from inference.request import (
    GUIDED_ERROR_PREFIX,
    FinishReason,
    GenerationOutput,
    GenerationRequest,
    GuidedDecoding,
)

VOCAB = 50
END = 2


class Recorded:
    """A fake SamplingParams / GuidedDecodingParams: keeps its keyword arguments."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


@dataclass
class Completion:
    token_ids: list[int]
    logprobs: list[Any] = field(default_factory=list)
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    generation_logits: torch.Tensor | None = None


@dataclass
class Step:
    outputs: list[Completion]
    finished: bool = False


class FakeResult:
    """A RequestOutput: yields the scripted steps; abort() ends the stream as cancelled."""

    def __init__(self, steps: list[Step], hold: bool) -> None:
        self.steps = steps
        self.aborted = threading.Event()
        self.hold = hold

    def abort(self) -> None:
        self.aborted.set()

    async def _steps(self) -> AsyncIterator[Step]:
        import asyncio

        for step in self.steps:
            if self.aborted.is_set():
                return
            yield step
        while self.hold and not self.aborted.is_set():  # a long generation, until aborted
            await asyncio.sleep(0.005)
        if self.hold:
            last = self.steps[-1].outputs[0] if self.steps else Completion([])
            yield Step([Completion(list(last.token_ids), finish_reason="cancelled")], True)

    def __aiter__(self) -> AsyncIterator[Step]:
        return self._steps()


class FakeLLM:
    def __init__(self, script: list[Step], hold: bool = False, refuse: str = "") -> None:
        self.script = script
        self.hold = hold
        self.refuse = refuse
        self.calls: list[tuple[list[int], Any, bool]] = []
        self.results: list[FakeResult] = []
        self.shut = False

    def generate_async(self, inputs: list[int], sampling_params: Any, streaming: bool) -> Any:
        if self.refuse:
            raise ValueError(self.refuse)
        self.calls.append((inputs, sampling_params, streaming))
        result = FakeResult(self.script, self.hold)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.shut = True


def fake_api() -> types.ModuleType:
    module = types.ModuleType("tensorrt_llm")
    module.SamplingParams = Recorded  # type: ignore[attr-defined]
    module.GuidedDecodingParams = Recorded  # type: ignore[attr-defined]
    return module


def steps(*chunks: list[int], reason: str = "length", stop_reason: Any = None) -> list[Step]:
    """Cumulative steps growing by each chunk; the last one finishes with ``reason``."""
    tokens: list[int] = []
    out = []
    for index, chunk in enumerate(chunks):
        tokens = tokens + chunk
        last = index == len(chunks) - 1
        logprobs = [-0.5] * len(tokens)
        completion = Completion(
            list(tokens),
            logprobs,
            reason if last else None,
            stop_reason if last else None,
        )
        out.append(Step([completion], finished=last))
    return out


class Collector:
    def __init__(self) -> None:
        self.outputs: list[GenerationOutput] = []
        self.done = threading.Event()

    def __call__(self, output: GenerationOutput) -> None:
        self.outputs.append(output)
        if output.finished:
            self.done.set()

    def wait(self) -> list[GenerationOutput]:
        assert self.done.wait(5), "no final output"
        return self.outputs


@pytest.fixture
def make_engine() -> Iterator[Any]:
    engines: list[LLMAPIEngine] = []

    def make(llm: FakeLLM, guided: bool = True) -> LLMAPIEngine:
        engine = LLMAPIEngine(
            llm, fake_api(), VOCAB, END, cancel_check_period_s=0.01, guided_decoding=guided
        )
        engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def request(**kwargs: Any) -> GenerationRequest:
    values: dict[str, Any] = {"input_ids": (5, 6, 7), "max_new_tokens": 4, "end_id": END}
    values.update(kwargs)
    return GenerationRequest(**values)


def submitted_kwargs(make_engine: Any, **kwargs: Any) -> dict[str, Any]:
    llm = FakeLLM(steps([9]))
    sink = Collector()
    make_engine(llm).submit(request(**kwargs), sink)
    sink.wait()
    params = llm.calls[0][1]
    assert isinstance(params, Recorded)
    return params.kwargs


def test_both_engines_satisfy_the_protocol() -> None:
    def accepts(engine: InferenceEngine) -> InferenceEngine:
        return engine

    assert accepts(LLMAPIEngine(FakeLLM([]), fake_api(), VOCAB, END))
    assert callable(GenerationEngine.submit) and isinstance(GenerationEngine.vocab_size, property)


def test_every_sampling_field_reaches_its_llm_api_argument(make_engine: Any) -> None:
    kwargs = submitted_kwargs(
        make_engine,
        max_new_tokens=7,
        end_id=3,
        pad_id=4,
        temperature=0.7,
        top_k=5,
        top_p=0.9,
        seed=42,
        min_tokens=2,
        repetition_penalty=1.3,
        presence_penalty=0.4,
        frequency_penalty=0.6,
        return_log_probs=True,
        return_generation_logits=True,
    )
    assert kwargs == {
        "max_tokens": 7,
        "end_id": 3,
        "pad_id": 4,
        "temperature": 0.7,
        "top_k": 5,
        "top_p": 0.9,
        "seed": 42,
        "min_tokens": 2,
        "repetition_penalty": 1.3,
        "presence_penalty": 0.4,
        "frequency_penalty": 0.6,
        "logprobs": 1,
        "return_generation_logits": True,
    }


def test_prompt_is_passed_as_token_ids_and_streamed(make_engine: Any) -> None:
    llm = FakeLLM(steps([9]))
    sink = Collector()
    make_engine(llm).submit(request(input_ids=(8, 1, 3)), sink)
    sink.wait()
    assert llm.calls[0][0] == [8, 1, 3]
    assert llm.calls[0][2] is True


def test_greedy_sends_top_k_one_and_no_temperature(make_engine: Any) -> None:
    kwargs = submitted_kwargs(make_engine, temperature=0.0, top_k=7, top_p=0.5)
    assert kwargs["top_k"] == 1
    assert "temperature" not in kwargs and "top_p" not in kwargs


def test_no_limits_sampling_is_not_turned_greedy(make_engine: Any) -> None:
    # top_k 0 with top_p 1 samples the whole vocabulary; None/None would be greedy upstream.
    kwargs = submitted_kwargs(make_engine, temperature=1.0, top_k=0, top_p=1.0)
    assert kwargs["top_k"] is None and kwargs["top_p"] == 1.0


def test_missing_seed_draws_a_fresh_one(make_engine: Any) -> None:
    seeds = {submitted_kwargs(make_engine)["seed"] for _ in range(3)}
    assert len(seeds) == 3


def test_missing_end_id_takes_the_checkpoint_default(make_engine: Any) -> None:
    assert submitted_kwargs(make_engine, end_id=None)["end_id"] == END


def test_single_token_words_go_to_token_id_lists(make_engine: Any) -> None:
    kwargs = submitted_kwargs(make_engine, stop_words=((11,), (12, 13)), bad_words=((14,),))
    assert kwargs["stop_token_ids"] == [11]
    assert kwargs["bad_token_ids"] == [14]
    assert "logits_processor" not in kwargs


def test_bias_and_long_bad_words_become_a_logits_processor(make_engine: Any) -> None:
    bias = torch.zeros(VOCAB)
    bias[4] = 2.0
    kwargs = submitted_kwargs(make_engine, embedding_bias=bias, bad_words=((20, 21),))
    processor = kwargs["logits_processor"]
    assert isinstance(processor, WordsProcessor)
    logits = torch.zeros(1, VOCAB)
    processor(0, logits, [[5, 20]], None, None)
    assert logits[0, 4] == 2.0
    assert logits[0, 21] == float("-inf")
    untouched = torch.zeros(1, VOCAB)
    WordsProcessor(None, ((20, 21),))(0, untouched, [[5, 19]], None, None)
    assert torch.equal(untouched, torch.zeros(1, VOCAB))


def test_min_tokens_holds_back_single_token_stop_words(make_engine: Any) -> None:
    # TensorRT-LLM's min_tokens bans only end_id; the model's other end ids come as stop
    # words and would end the reply early (seen on the CPU twin: 31 tokens for min_tokens 64).
    kwargs = submitted_kwargs(make_engine, stop_words=((11,), (12, 13)), min_tokens=2)
    assert kwargs["min_tokens"] == 2 and kwargs["stop_token_ids"] == [11]
    processor = kwargs["logits_processor"]
    assert isinstance(processor, WordsProcessor)
    masked = []
    for step in range(3):  # token_ids grow by one generated token per call
        logits = torch.zeros(1, VOCAB)
        processor(0, logits, [[5, 6, *range(step)]], None, None)
        masked.append(bool(logits[0, 11] == float("-inf")))
        assert logits[0, 12] == 0.0  # multi-token stop words are not held back
    assert masked == [True, True, False]
    assert "logits_processor" not in submitted_kwargs(make_engine, stop_words=((11,),))


@pytest.mark.parametrize(
    ("guide_type", "guide", "expected"),
    [
        ("json", None, {"json_object": True}),
        ("json_schema", '{"type": "object"}', {"json": '{"type": "object"}'}),
        ("regex", "[a-z]+", {"regex": "[a-z]+"}),
        ("ebnf_grammar", 'root ::= "a"', {"grammar": 'root ::= "a"'}),
    ],
)
def test_guides_map_to_guided_decoding_params(
    make_engine: Any, guide_type: str, guide: str | None, expected: dict[str, Any]
) -> None:
    guided = GuidedDecoding.parse(guide_type, guide)
    kwargs = submitted_kwargs(make_engine, guided_decoding=guided)
    assert kwargs["guided_decoding"].kwargs == expected


def test_streaming_delivers_each_steps_new_tokens(make_engine: Any) -> None:
    llm = FakeLLM(steps([9], [10, 11], [12]))
    sink = Collector()
    make_engine(llm).submit(request(streaming=True, return_log_probs=True), sink)
    outputs = sink.wait()
    assert [o.token_ids for o in outputs] == [(9,), (10, 11), (12,)]
    assert [o.finished for o in outputs] == [False, False, True]
    assert outputs[-1].finish_reason is FinishReason.LENGTH
    assert outputs[1].log_probs == (-0.5, -0.5)
    assert outputs[-1].cum_log_prob == pytest.approx(-2.0)
    assert outputs[-1].num_generated_tokens == 4 and outputs[-1].num_input_tokens == 3


def test_without_streaming_one_delivery_carries_every_token(make_engine: Any) -> None:
    llm = FakeLLM(steps([9], [10], [11]))
    sink = Collector()
    make_engine(llm).submit(request(streaming=False), sink)
    outputs = sink.wait()
    assert [(o.token_ids, o.finished) for o in outputs] == [((9, 10, 11), True)]
    assert outputs[0].log_probs == (0.0, 0.0, 0.0)  # not asked for


def test_end_id_is_not_emitted(make_engine: Any) -> None:
    llm = FakeLLM(steps([9], [END], reason="stop"))
    sink = Collector()
    make_engine(llm).submit(request(streaming=False), sink)
    (output,) = sink.wait()
    assert output.token_ids == (9,) and output.finish_reason is FinishReason.END_ID


def test_topk_logprob_maps_give_the_sampled_tokens_value(make_engine: Any) -> None:
    class Logprob:
        def __init__(self, value: float) -> None:
            self.logprob = value

    script = [Step([Completion([9, 10], [{9: Logprob(-0.1)}, {10: Logprob(-0.2)}], "length")])]
    sink = Collector()
    make_engine(FakeLLM(script)).submit(request(return_log_probs=True), sink)
    (output,) = sink.wait()
    assert output.log_probs == (-0.1, -0.2)


def test_multi_token_stop_word_cuts_the_output_and_aborts(make_engine: Any) -> None:
    llm = FakeLLM(steps([9], [30, 31, 40], [41]))
    sink = Collector()
    make_engine(llm).submit(request(streaming=True, stop_words=((30, 31),)), sink)
    outputs = sink.wait()
    assert [o.token_ids for o in outputs] == [(9,), (30, 31)]
    assert outputs[-1].finish_reason is FinishReason.STOP_WORDS
    assert llm.results[0].aborted.is_set()


def test_cancel_by_id_aborts_the_request_output(make_engine: Any) -> None:
    llm = FakeLLM(steps([9]), hold=True)
    llm.script[-1].finished = False
    llm.script[-1].outputs[0].finish_reason = None
    engine = make_engine(llm)
    sink = Collector()
    engine.submit(request(request_id="r1", streaming=True), sink)
    assert engine.cancel("r1")
    outputs = sink.wait()
    assert llm.results[0].aborted.is_set()
    assert outputs[-1].finish_reason is FinishReason.CANCELLED
    assert not engine.cancel("r1")  # no longer in flight


def test_is_cancelled_is_polled_and_aborts(make_engine: Any) -> None:
    llm = FakeLLM([], hold=True)
    flag = threading.Event()
    sink = Collector()
    make_engine(llm).submit(request(), sink, is_cancelled=flag.is_set)
    flag.set()
    outputs = sink.wait()
    assert llm.results[0].aborted.is_set()
    assert outputs[-1].finish_reason is FinishReason.CANCELLED


def test_close_fails_requests_in_flight_and_shuts_the_llm(make_engine: Any) -> None:
    llm = FakeLLM([], hold=True)
    engine = make_engine(llm)
    sink = Collector()
    engine.submit(request(), sink)
    engine.close()
    outputs = sink.wait()
    assert outputs[-1].error is not None and llm.shut


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_ids": ()}, "input_ids"),
        ({"input_ids": (VOCAB,)}, "input_ids"),
        ({"max_new_tokens": 0}, "request_output_len"),
        ({"stop_words": ((VOCAB,),)}, "stop_words"),
        ({"bad_words": ((1, -1),)}, "bad_words"),
        ({"embedding_bias": torch.zeros(3)}, "embedding_bias"),
        ({"embedding_bias": torch.zeros(2, VOCAB)}, "embedding_bias"),
    ],
)
def test_unsupported_requests_raise_value_error(
    make_engine: Any, fields: dict[str, Any], message: str
) -> None:
    llm = FakeLLM(steps([9]))
    with pytest.raises(ValueError, match=message):
        make_engine(llm).submit(request(**fields), Collector())
    assert llm.calls == []


def test_guides_are_refused_when_the_llm_has_no_guided_backend(make_engine: Any) -> None:
    llm = FakeLLM(steps([9]))
    guided = GuidedDecoding.parse("regex", "a+")
    with pytest.raises(ValueError, match=GUIDED_ERROR_PREFIX):
        make_engine(llm, guided=False).submit(request(guided_decoding=guided), Collector())


def test_the_llm_apis_own_refusal_is_a_value_error(make_engine: Any) -> None:
    llm = FakeLLM([], refuse="prompt too long")
    with pytest.raises(ValueError, match="prompt too long"):
        make_engine(llm).submit(request(), Collector())


def test_model_yaml_options_are_llm_arguments(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "model_repository" / "llm_llmapi"
    options = load_options(shipped / "tensorrt_llm" / "1" / "model.yaml")
    assert options["kv_cache_config"]["free_gpu_memory_fraction"] == 0.85
    assert options["guided_decoding_backend"] == "xgrammar"
    custom = tmp_path / "model.yaml"
    custom.write_text("model: x\ntriton_config: {a: 1}\nmax_batch_size: 4\n")
    assert load_options(custom) == {"max_batch_size": 4}
    custom.write_text("- 1\n")
    with pytest.raises(ValueError, match="mapping"):
        load_options(custom)


def test_from_options_builds_the_llm_lazily(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[dict[str, Any]] = []
    module = fake_api()

    def llm(**kwargs: Any) -> FakeLLM:
        built.append(kwargs)
        return FakeLLM([])

    module.LLM = llm  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorrt_llm", module)
    (tmp_path / "config.json").write_text('{"vocab_size": 77, "eos_token_id": [5, 6]}')
    engine = LLMAPIEngine.from_options(tmp_path, {"max_batch_size": 4, "tensor_parallel_size": 1})
    assert built == [{"model": str(tmp_path), "max_batch_size": 4, "tensor_parallel_size": 1}]
    assert (engine.vocab_size, engine.default_end_id, engine.counts.max_active) == (77, 5, 4)


def test_cpu_adapter_never_imports_tensorrt_llm() -> None:
    """Importing the Triton adapter (with a stand-in for Triton's stub module) and both model.py
    shims loads neither tensorrt_llm nor the LLM-API engine."""
    code = """
import sys, types, importlib.util
stub = types.ModuleType("triton_python_backend_utils")
stub.TRITONSERVER_RESPONSE_COMPLETE_FINAL = 1
sys.modules["triton_python_backend_utils"] = stub
for root in ("llm_cpu", "llm_llmapi"):
    path = f"model_repository/{root}/tensorrt_llm/1/model.py"
    spec = importlib.util.spec_from_file_location(f"model_{root}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.TritonPythonModel.__module__ == "inference.triton_llm_model"
loaded = [m for m in sys.modules if m.startswith("tensorrt_llm") or m == "inference.llmapi_engine"]
assert not loaded, loaded
print("ok")
"""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
