"""The in-flight batching engine against a tiny random Llama, without Triton."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from inference.generation import GenerationEngine
from inference.request import FinishReason, GenerationOutput, GenerationRequest
from tests.inference.tiny_llama import MAX_POSITIONS, collect, drain, save_tiny_llama, tokens_of

PROMPTS = [(5, 6, 7), tuple(range(10, 40)), (1, 2, 3, 4, 5, 6, 7, 8), (200,), (17, 250, 3, 99)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def reference_model(model_dir: Path) -> PreTrainedModel:
    model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return model


@pytest.fixture
def engine(model_dir: Path) -> Iterator[GenerationEngine]:
    engine = GenerationEngine.from_pretrained(model_dir, max_num_sequences=4)
    engine.start()
    yield engine
    engine.close()


def greedy(
    prompt: tuple[int, ...], max_new_tokens: int = 12, **kwargs: object
) -> GenerationRequest:
    return GenerationRequest(prompt, max_new_tokens, temperature=0.0, end_id=None, **kwargs)  # type: ignore[arg-type]


def reference_greedy(model: PreTrainedModel, prompt: tuple[int, ...], n: int) -> list[int]:
    """Hugging Face's own generate(), one sequence at a time, as the ground truth."""
    with torch.inference_mode():
        ids = model.generate(  # type: ignore[operator]
            torch.tensor([prompt]),
            max_new_tokens=n,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
    return [int(token) for token in ids[0, len(prompt) :]]


def test_batched_greedy_matches_each_sequence_alone(
    engine: GenerationEngine, reference_model: PreTrainedModel
) -> None:
    """Prompts of different lengths join the running batch at different steps."""
    n = 16
    queues: list[queue.Queue[GenerationOutput]] = [queue.Queue() for _ in PROMPTS]
    joined_after = {2: 1, 5: 2, 6: 3}  # first sequence's token count -> next prompt to submit

    def first_sink(output: GenerationOutput) -> None:
        queues[0].put(output)
        # Runs on the engine thread, so the next prompt joins between two exact steps.
        follower = joined_after.get(output.num_generated_tokens)
        if follower is not None:
            engine.submit(greedy(PROMPTS[follower], n), queues[follower].put)

    engine.submit(greedy(PROMPTS[0], n), first_sink)
    engine.submit(greedy(PROMPTS[4], n), queues[4].put)
    results = [tokens_of(drain(outputs)) for outputs in queues]

    assert results == [reference_greedy(reference_model, prompt, n) for prompt in PROMPTS]
    assert engine.stats.max_batch_size == 4


def test_more_requests_than_slots_all_complete(engine: GenerationEngine) -> None:
    queues: list[queue.Queue[GenerationOutput]] = [queue.Queue() for _ in range(7)]
    for index, outputs in enumerate(queues):
        engine.submit(greedy(PROMPTS[index % len(PROMPTS)], 5 + index), outputs.put)
    lengths = [len(tokens_of(drain(outputs))) for outputs in queues]
    assert lengths == [5 + index for index in range(7)]
    assert engine.stats.max_batch_size == 4


def test_streaming_delivers_one_token_per_output(engine: GenerationEngine) -> None:
    outputs = collect(engine, greedy(PROMPTS[0], 5))
    assert [len(output.token_ids) for output in outputs] == [1] * 5
    assert [output.finished for output in outputs] == [False] * 4 + [True]
    assert outputs[-1].finish_reason is FinishReason.LENGTH
    assert outputs[-1].num_generated_tokens == 5
    assert outputs[-1].num_input_tokens == len(PROMPTS[0])


def test_without_streaming_one_output_carries_every_token(engine: GenerationEngine) -> None:
    streamed = tokens_of(collect(engine, greedy(PROMPTS[1], 7)))
    outputs = collect(engine, greedy(PROMPTS[1], 7, streaming=False))
    assert len(outputs) == 1
    assert outputs[0].finished
    assert list(outputs[0].token_ids) == streamed


def test_seed_makes_sampling_reproducible(engine: GenerationEngine) -> None:
    def sample(seed: int) -> list[int]:
        request = GenerationRequest(PROMPTS[2], 20, temperature=1.5, top_p=1.0, seed=seed)
        return tokens_of(collect(engine, request))

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_seeded_sample_does_not_depend_on_batch_neighbours(engine: GenerationEngine) -> None:
    request = GenerationRequest(PROMPTS[2], 10, temperature=1.2, top_k=50, seed=3, end_id=None)
    alone = tokens_of(collect(engine, request))
    neighbours: list[queue.Queue[GenerationOutput]] = [queue.Queue() for _ in range(2)]
    for index, outputs in enumerate(neighbours):
        engine.submit(
            GenerationRequest(PROMPTS[index], 10, temperature=1.0, top_p=0.9), outputs.put
        )
    together = tokens_of(collect(engine, request))
    for outputs in neighbours:
        drain(outputs)
    assert together == alone


def test_end_id_finishes_without_being_emitted(engine: GenerationEngine) -> None:
    free = tokens_of(collect(engine, greedy(PROMPTS[0], 12)))
    end_id = free[4]
    cut = free.index(end_id)
    outputs = collect(engine, GenerationRequest(PROMPTS[0], 12, temperature=0.0, end_id=end_id))
    assert tokens_of(outputs) == free[:cut]
    assert outputs[-1].finished and outputs[-1].token_ids == ()
    assert outputs[-1].finish_reason is FinishReason.END_ID


def test_min_tokens_suppresses_end_id(engine: GenerationEngine) -> None:
    free = tokens_of(collect(engine, greedy(PROMPTS[3], 8)))
    request = GenerationRequest(PROMPTS[3], 8, temperature=0.0, end_id=free[0], min_tokens=3)
    tokens = tokens_of(collect(engine, request))
    assert len(tokens) >= 3
    assert free[0] not in tokens[:3]


def test_max_new_tokens(engine: GenerationEngine) -> None:
    for n in (1, 3):
        outputs = collect(engine, greedy(PROMPTS[1], n))
        assert len(tokens_of(outputs)) == n
        assert outputs[-1].finish_reason is FinishReason.LENGTH


def test_stop_words_finish_after_emitting_them(engine: GenerationEngine) -> None:
    free = tokens_of(collect(engine, greedy(PROMPTS[0], 12)))
    stop = (free[3], free[4])
    outputs = collect(engine, greedy(PROMPTS[0], 12, stop_words=((299, 298), stop)))
    assert tokens_of(outputs) == free[:5]
    assert outputs[-1].finish_reason is FinishReason.STOP_WORDS


def test_bad_words_are_never_completed(engine: GenerationEngine) -> None:
    free = tokens_of(collect(engine, greedy(PROMPTS[0], 12)))
    single = tokens_of(collect(engine, greedy(PROMPTS[0], 12, bad_words=((free[0],),))))
    assert single[0] != free[0]
    pair = tokens_of(collect(engine, greedy(PROMPTS[0], 12, bad_words=((free[0], free[1]),))))
    assert pair[0] == free[0]
    assert pair[1] != free[1]


def test_log_probs_are_the_models_greedy_log_softmax(
    engine: GenerationEngine, reference_model: PreTrainedModel
) -> None:
    outputs = collect(engine, greedy(PROMPTS[2], 4, return_log_probs=True))
    tokens = tokens_of(outputs)
    with torch.inference_mode():
        logits = reference_model(torch.tensor([PROMPTS[2] + tuple(tokens)])).logits[0]
    expected = torch.log_softmax(logits, dim=-1)[len(PROMPTS[2]) - 1 : -1]
    log_probs = [value for output in outputs for value in output.log_probs]
    assert log_probs == pytest.approx(
        [float(expected[i, t]) for i, t in enumerate(tokens)], abs=1e-4
    )
    assert outputs[-1].cum_log_prob == pytest.approx(sum(log_probs))
    plain = collect(engine, greedy(PROMPTS[2], 4))
    assert all(value == 0.0 for output in plain for value in output.log_probs)


def test_cancel_from_handle_stops_at_next_step(engine: GenerationEngine) -> None:
    outputs: queue.Queue[GenerationOutput] = queue.Queue()
    holder: list[object] = []

    def sink(output: GenerationOutput) -> None:
        outputs.put(output)
        if output.num_generated_tokens == 3:
            holder[0].cancel()  # type: ignore[attr-defined]

    holder.append(engine.submit(greedy(PROMPTS[1], 50), sink))
    received = drain(outputs)
    assert received[-1].finish_reason is FinishReason.CANCELLED
    assert len(tokens_of(received)) == 3


def test_cancel_by_request_id_and_by_hook(model_dir: Path) -> None:
    engine = GenerationEngine.from_pretrained(model_dir, cancel_check_period_s=0.0)
    engine.start()
    try:
        gone = threading.Event()
        by_hook: queue.Queue[GenerationOutput] = queue.Queue()
        engine.submit(greedy(PROMPTS[0], 100), by_hook.put, is_cancelled=gone.is_set)
        by_id: queue.Queue[GenerationOutput] = queue.Queue()
        engine.submit(greedy(PROMPTS[1], 90, request_id="r1"), by_id.put)
        by_hook.get(timeout=10)
        gone.set()
        assert engine.cancel("r1")
        for outputs in (by_hook, by_id):
            received = drain(outputs)
            assert received[-1].finish_reason is FinishReason.CANCELLED
            assert len(tokens_of(received)) < 90
        assert not engine.cancel("r1")
    finally:
        engine.close()


def test_a_failing_sink_cancels_only_its_request(engine: GenerationEngine) -> None:
    def broken(output: GenerationOutput) -> None:
        raise ConnectionError("client went away")

    engine.submit(greedy(PROMPTS[0], 50), broken)
    assert len(tokens_of(collect(engine, greedy(PROMPTS[1], 20)))) == 20


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (GenerationRequest((), 4), "input_ids"),
        (GenerationRequest((1, 2), 0), "request_output_len"),
        (GenerationRequest((1, 300), 4), "input_ids"),
        (GenerationRequest((1,) * 100, MAX_POSITIONS), "context_length_exceeded"),
        (GenerationRequest((1,), 4, embedding_bias=torch.zeros(301)), "embedding_bias"),
        (GenerationRequest((1,), 4, stop_words=((5, 300),)), "stop_words_list"),
        (GenerationRequest((1,), 4, bad_words=((-1,),)), "bad_words_list"),
    ],
)
def test_invalid_requests_are_refused(
    engine: GenerationEngine, request_: GenerationRequest, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        engine.submit(request_, lambda output: None)


def test_close_fails_requests_in_flight(model_dir: Path) -> None:
    engine = GenerationEngine.from_pretrained(model_dir)
    engine.start()
    outputs: queue.Queue[GenerationOutput] = queue.Queue()
    engine.submit(greedy(PROMPTS[1], MAX_POSITIONS - len(PROMPTS[1])), outputs.put)
    outputs.get(timeout=10)
    engine.close()
    final = drain(outputs)[-1]
    assert final.finish_reason is FinishReason.ERROR
    with pytest.raises(RuntimeError):
        engine.submit(greedy(PROMPTS[0]), outputs.put)


def test_a_sampling_failure_fails_only_its_request(engine: GenerationEngine) -> None:
    sampled = GenerationRequest(PROMPTS[0], 5, temperature=1.0, top_p=0.9, seed=5, end_id=None)
    first = tokens_of(collect(engine, sampled))[0]
    # Same seed, so the same first token; after it every token completes a bad word.
    doomed = replace(sampled, bad_words=tuple((first, token) for token in range(300)))
    neighbour: queue.Queue[GenerationOutput] = queue.Queue()
    engine.submit(greedy(PROMPTS[1], 10), neighbour.put)
    failed = collect(engine, doomed)
    assert failed[-1].finish_reason is FinishReason.ERROR
    assert failed[-1].error is not None
    assert len(tokens_of(drain(neighbour))) == 10
