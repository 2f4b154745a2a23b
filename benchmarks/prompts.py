"""The prompts both paths send, so that the same token ids reach the model on either path.

The chat endpoint wraps a user's text in the model's chat template, which adds its control
tokens (about 8 with tiny-chat's ChatML) to every prompt. A direct client of the ensemble that
wants a chat reply has to render that template itself; one that sent the bare text would give
the model less to prefill and make the API look slower by work that is not the API's. So the
API path gets plain prompts as its user messages, and the direct path gets the same prompts
rendered by the same template code the ``preprocessing`` model runs.

genai-perf 0.0.16 strips each prompt it reads from a file, which drops the template's final
newline (after ``assistant``): the direct path's prompts are one token shorter than the API
path's. That difference favours the direct path, never the API.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import orjson
from transformers import PreTrainedTokenizerBase

from inference.tokenization import load_tokenizer, render_prompt

# Recorded with each run, and printed above its table.
METHOD = (
    "the same prompts on both paths: the API path's as user messages, the direct path's "
    "rendered through the chat template as a direct client would send them (the same token ids "
    "reach the model, less the template's final newline, which genai-perf strips)"
)

# Plain words: each is a token or a few with tiny-chat's byte-level BPE, and none is a control
# token. A fixed list keeps the prompts the same from run to run and machine to machine.
_WORD_TEXT = (
    "the of and to in is was he for it with as his on be at by had are but from or have an "
    "they which one you were her all she there would their we him been has when who will more "
    "no if out so said what up its about into than them can only other new some could time "
    "these two may then do first any my now such like our over man me even most made after "
    "also did many before must through back years where much your way well down should "
    "because each just those people how too little state good very make world still own see "
    "men work long get here between both life being under never day same another know while "
    "last might us great old year off come since against go came right used take three"
)
WORDS = tuple(_WORD_TEXT.split())


@dataclass(frozen=True)
class PromptFiles:
    """genai-perf ``--input-file`` JSONL files, one ``{"text": ...}`` line per prompt."""

    plain: Path  # the API path's user messages
    templated: Path  # the same prompts through the chat template, for the direct path


def make_prompts(
    tokenizer: PreTrainedTokenizerBase, count: int, tokens: int, seed: int
) -> list[str]:
    """``count`` different prompts of exactly ``tokens`` tokens each (no special tokens)."""
    if tokens < 1:
        raise ValueError(f"a prompt needs at least one token, not {tokens}")
    draw = random.Random(seed)
    prompts: list[str] = []
    while len(prompts) < count:
        prompt = _prompt_of(tokenizer, tokens, draw)
        if prompt not in prompts:
            prompts.append(prompt)
    return prompts


def _prompt_of(tokenizer: PreTrainedTokenizerBase, tokens: int, draw: random.Random) -> str:
    """Words until the prompt holds ``tokens`` tokens; a word that overshoots is replaced."""
    words: list[str] = []
    for _ in range(tokens * 20):
        words.append(draw.choice(WORDS))
        length = _length(tokenizer, " ".join(words))
        if length == tokens:
            return " ".join(words)
        if length > tokens:
            words.pop()
    raise RuntimeError(f"could not compose a prompt of exactly {tokens} tokens")


def _length(tokenizer: PreTrainedTokenizerBase, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def templated(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """What a direct client sends for a chat reply: the prompt as one user message, rendered
    with the generation prompt by the code the ``preprocessing`` model runs."""
    return render_prompt(tokenizer, [{"role": "user", "content": prompt}])


def write_prompt_files(
    tokenizer_dir: Path, count: int, tokens: int, seed: int, folder: Path
) -> PromptFiles:
    """Write both files for one workload into ``folder``."""
    tokenizer = load_tokenizer(tokenizer_dir)
    prompts = make_prompts(tokenizer, count, tokens, seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = PromptFiles(
        plain=folder / f"plain-{tokens}.jsonl", templated=folder / f"templated-{tokens}.jsonl"
    )
    _write(files.plain, prompts)
    _write(files.templated, [templated(tokenizer, prompt) for prompt in prompts])
    return files


def _write(path: Path, texts: list[str]) -> None:
    path.write_bytes(b"".join(orjson.dumps({"text": text}) + b"\n" for text in texts))
