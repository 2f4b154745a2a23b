"""The prompt files: exact lengths, and the same token ids into the model on both paths."""

from __future__ import annotations

from pathlib import Path

import orjson
from transformers import PreTrainedTokenizerBase

from benchmarks.prompts import make_prompts, templated, write_prompt_files
from inference.tokenization import encode_prompt


def _length(tokenizer: PreTrainedTokenizerBase, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def test_prompts_have_exactly_the_tokens_asked_for_and_all_differ(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    prompts = make_prompts(tokenizer, 20, 50, seed=7)
    assert len(set(prompts)) == 20
    assert {_length(tokenizer, prompt) for prompt in prompts} == {50}
    # genai-perf strips what it reads; a plain prompt must reach the API unchanged.
    assert all(prompt == prompt.strip() for prompt in prompts)


def test_the_seed_fixes_the_prompts(tokenizer: PreTrainedTokenizerBase) -> None:
    assert make_prompts(tokenizer, 3, 12, seed=1) == make_prompts(tokenizer, 3, 12, seed=1)
    assert make_prompts(tokenizer, 3, 12, seed=1) != make_prompts(tokenizer, 3, 12, seed=2)


def test_the_direct_prompt_gives_the_model_the_chat_path_ids_but_the_last_newline(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    for prompt in make_prompts(tokenizer, 5, 30, seed=3):
        chat_ids = encode_prompt(tokenizer, [{"role": "user", "content": prompt}])
        # What genai-perf sends as text_input after stripping, encoded as preprocessing does.
        direct_ids = encode_prompt(tokenizer, templated(tokenizer, prompt).strip())
        assert direct_ids == chat_ids[:-1]
        assert tokenizer.decode(chat_ids[-1:]) == "\n"
        # Far more than the bare prompt: the template's control tokens are prefilled too.
        assert len(direct_ids) > len(encode_prompt(tokenizer, prompt)) + 2


def test_both_files_hold_the_same_prompts(tokenizer_dir: Path, tmp_path: Path) -> None:
    files = write_prompt_files(tokenizer_dir, 4, 16, seed=7, folder=tmp_path)
    plain = [orjson.loads(line)["text"] for line in files.plain.read_bytes().splitlines()]
    rendered = [orjson.loads(line)["text"] for line in files.templated.read_bytes().splitlines()]
    assert len(plain) == len(rendered) == 4
    for prompt, text in zip(plain, rendered, strict=True):
        assert prompt in text and text.startswith("<|im_start|>user")
