"""Tokenizers for the inference tests.

The byte-level tokenizer is the project's tiny model's (models/tiny-chat) when it exists, else
one trained here the same way (ChatML template, `<|im_end|>` eos), so the tests never depend on
another script having run. A Llama-style SentencePiece tokenizer (Metaspace + byte fallback)
covers the other leading-space convention.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from inference.tokenization import load_tokenizer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TINY_CHAT_DIR = PROJECT_ROOT / "models" / "tiny-chat"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
CORPUS = [
    "Hello! How can I help you today?",
    "The capital of France is Paris. The capital of Japan is Tokyo (東京).",
    "Zürich, café au lait, Très bien ! Schöne Grüße!",
    "Hello is こんにちは (konnichiwa) in Japanese. Japan is 日本.",
    "Here you go: 😊 🎉 — done.",
    "one two three four five six seven eight nine ten",
] * 20


def _train(backend: Tokenizer, trainer: trainers.BpeTrainer) -> Tokenizer:
    backend.train_from_iterator(CORPUS, trainer)
    return backend


def _byte_level_backend() -> Tokenizer:
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    return _train(backend, trainer)


def _sentencepiece_backend() -> Tokenizer:
    # Llama-2 style: spaces become "▁", unknown characters fall back to <0xNN> byte tokens.
    backend = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    backend.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    backend.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<unk>", "<s>", "</s>", *byte_tokens],
        show_progress=False,
    )
    return _train(backend, trainer)


def _save(backend: Tokenizer, directory: Path, eos: str, pad: str) -> Path:
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        eos_token=eos,
        pad_token=pad,
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
        chat_template=CHATML_TEMPLATE,
    )
    tokenizer.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-level BPE ChatML tokenizer directory (the tiny model's when present)."""
    if (TINY_CHAT_DIR / "tokenizer.json").is_file():
        return TINY_CHAT_DIR
    directory = tmp_path_factory.mktemp("byte-level-tokenizer")
    return _save(_byte_level_backend(), directory, eos="<|im_end|>", pad="<|endoftext|>")


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir: Path) -> PreTrainedTokenizerBase:
    """The byte-level tokenizer, loaded the way the Triton models load it."""
    return load_tokenizer(tokenizer_dir)


@pytest.fixture(scope="session")
def sentencepiece_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> PreTrainedTokenizerBase:
    """A Llama-style SentencePiece BPE tokenizer with byte fallback."""
    directory = tmp_path_factory.mktemp("sentencepiece-tokenizer")
    return load_tokenizer(_save(_sentencepiece_backend(), directory, eos="</s>", pad="<unk>"))
