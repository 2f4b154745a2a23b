"""scripts/tiny_models: the tokenizer, training sequences and loop both tiny models share."""

from __future__ import annotations

from pathlib import Path

import make_tiny_model
import pytest
import torch
from tiny_models.tokenizer import IM_END, render_chat, train_tokenizer
from tiny_models.training import (
    IGNORE_INDEX,
    Example,
    ModelSize,
    build_model,
    collate,
    encode_dialogue,
    learning_rate,
    train,
)
from transformers import PreTrainedTokenizerFast

TEXTS = ["user\nWhat is 2 plus 3?", "assistant\n2 plus 3 is 5.", "café 日本 😊"] * 20


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    made: PreTrainedTokenizerFast = train_tokenizer(TEXTS, 400)
    return made


def test_special_tokens_and_chat_template(tokenizer: PreTrainedTokenizerFast) -> None:
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", IM_END]) == [0, 1, 2]
    text = render_chat(tokenizer, [{"role": "user", "content": "Hi"}], add_generation_prompt=True)
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_the_loss_covers_assistant_replies_only(tokenizer: PreTrainedTokenizerFast) -> None:
    messages = [
        {"role": "user", "content": "What is 2 plus 3?"},
        {"role": "assistant", "content": "2 plus 3 is 5."},
    ]
    example = encode_dialogue(tokenizer, messages)
    taught = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label >= 0]
    assert tokenizer.decode(taught) == "2 plus 3 is 5." + IM_END
    assert len(encode_dialogue(tokenizer, messages * 40, max_len=50).input_ids) == 50


def test_collate_pads_right_with_ignored_labels() -> None:
    ids, mask, labels = collate([Example([5, 6, 7], [5, 6, 7]), Example([8], [IGNORE_INDEX])])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert labels.tolist() == [[5, 6, 7], [IGNORE_INDEX] * 3]


def test_learning_rate_warms_up_then_decays_to_a_tenth() -> None:
    rates = [learning_rate(step, 100, peak=1.0, warmup=10) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert rates[10] > rates[50] > rates[99] >= 0.1


def test_a_few_steps_lower_the_loss(tokenizer: PreTrainedTokenizerFast) -> None:
    torch.manual_seed(0)
    model = build_model(len(tokenizer), ModelSize(hidden=64, intermediate=128, layers=1, heads=2))
    messages = [
        {"role": "user", "content": "What is 2 plus 3?"},
        {"role": "assistant", "content": "2 plus 3 is 5."},
    ]
    example = encode_dialogue(tokenizer, messages)
    ids, mask, labels = collate([example])

    def loss() -> float:
        with torch.no_grad():
            return float(model(input_ids=ids, attention_mask=mask, labels=labels).loss)

    before = loss()
    result = train(model, [example] * 8, steps=40, seed=0, batch_size=4)
    assert (result.steps, result.batch_size) == (40, 4)
    assert loss() < 0.6 * before
    assert not model.training


def test_tiny_chat_keeps_an_existing_checkpoint_without_force(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert make_tiny_model.main(["--output", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_tiny_chat_corpus_is_deterministic() -> None:
    first = make_tiny_model.generate_corpus(3, n_dialogues=50, n_documents=5)
    assert first == make_tiny_model.generate_corpus(3, n_dialogues=50, n_documents=5)
    assert first != make_tiny_model.generate_corpus(4, n_dialogues=50, n_documents=5)
