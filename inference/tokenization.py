"""Prompts to token ids: chat templates, stop/bad word lists, the context-length check.

Plain Python over a Hugging Face tokenizer; the Triton `preprocessing` model is a thin adapter
over this module and `inference.preprocessing`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from api.schemas.bounds import text_bytes
from inference.token_bytes import token_bytes_table

Message = Mapping[str, Any]
Prompt = str | Sequence[Message]
Tools = Sequence[Mapping[str, Any]]
IntArray = npt.NDArray[np.int32]

# Request errors about the tools input start with this, so the API can tell them apart.
TOOLS_ERROR_PREFIX = "invalid_tools:"
# Offsets rows are padded with -1 (TensorRT-LLM reads -1 as "no more words"); ids rows with 0.
_OFFSET_PAD = -1
_ID_PAD = 0


class ContextLengthExceededError(ValueError):
    """The prompt plus the completion budget does not fit the model's context window."""

    def __init__(
        self, max_context: int, prompt_tokens: int, completion_tokens: int, source: str
    ) -> None:
        self.max_context = max_context
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        requested = prompt_tokens + completion_tokens
        super().__init__(
            f"context_length_exceeded: This model's maximum context length is {max_context} "
            f"tokens. However, you requested {requested} tokens ({prompt_tokens} in the "
            f"{source}, {completion_tokens} in the completion). Please reduce the length of the "
            f"{source} or completion."
        )


class PromptTooLongError(ValueError):
    """The prompt has more bytes than any prompt that fits the context: refused untokenized."""

    def __init__(self, max_context: int, max_bytes: int, prompt_bytes: int, source: str) -> None:
        self.max_context = max_context
        self.max_bytes = max_bytes
        self.prompt_bytes = prompt_bytes
        super().__init__(
            f"context_length_exceeded: This model's maximum context length is {max_context} "
            f"tokens, which no prompt of more than {max_bytes} bytes fits. However, you sent "
            f"{prompt_bytes} bytes in the {source}. Please reduce the length of the {source}."
        )


def prompt_byte_limit(tokenizer: PreTrainedTokenizerBase, max_context: int) -> int:
    """The most UTF-8 bytes a prompt of ``max_context`` tokens can hold, for this tokenizer.

    No token stands for more bytes than the longest in the vocabulary (special tokens written
    out included), so a longer prompt cannot fit and is refused before the tokenizer spends
    time and memory on it (8 MB took 8 s and 1.2 GB). A tokenizer with a normalizer may
    shorten text before it splits it (NFC composes up to 3 bytes into 1), hence 4x then.
    """
    table = token_bytes_table(tokenizer)
    longest = max([len(piece) for piece in table] + [len(t) for t in tokenizer.all_special_tokens])
    backend = getattr(tokenizer, "backend_tokenizer", None)
    factor = 4 if backend is None or backend.normalizer is not None else 1
    return max_context * max(longest, 1) * factor


def prompt_bytes(prompt: Prompt, tools: Tools | None = None) -> int:
    """UTF-8 bytes of a prompt's text: a raw prompt, or every string of every message (and of
    ``tools`` when given), counted as the API counts them before Triton."""
    return text_bytes([prompt, tools])


def check_prompt_bytes(
    prompt: Prompt, tools: Tools | None, max_bytes: int, max_context: int, source: str
) -> None:
    """Raise `PromptTooLongError` for a prompt of more than ``max_bytes`` (before tokenizing)."""
    size = prompt_bytes(prompt, tools)
    if size > max_bytes:
        raise PromptTooLongError(max_context, max_bytes, size, source)


def template_renders_tools(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the chat template reads ``tools`` (their text is then part of the prompt)."""
    return "tools" in str(getattr(tokenizer, "chat_template", None) or "")


def load_tokenizer(tokenizer_dir: str | Path) -> PreTrainedTokenizerBase:
    """Load a Hugging Face tokenizer from a local directory, never from the hub."""
    tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
        str(tokenizer_dir), local_files_only=True
    )
    return tokenizer


def parse_messages(raw: str | bytes) -> list[dict[str, Any]]:
    """Decode the JSON list of chat messages carried by the `MESSAGES` tensor."""
    try:
        messages = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"messages is not valid JSON: {exc}") from exc
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty JSON list")
    if not all(isinstance(m, dict) and "role" in m for m in messages):
        raise ValueError("every message must be an object with a 'role'")
    return [_flatten_content(m) for m in messages]


def parse_tools(raw: str | bytes) -> list[dict[str, Any]] | None:
    """Decode the JSON list of OpenAI tool definitions carried by the `TOOLS` tensor.

    An empty string or an empty list means no tools. The definitions go to the chat template
    unchanged (`{"type": "function", "function": {...}}`); the template decides how to render them.
    """
    if not raw:
        return None
    try:
        tools = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{TOOLS_ERROR_PREFIX} tools is not valid JSON: {exc}") from exc
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise ValueError(f"{TOOLS_ERROR_PREFIX} tools must be a JSON list of objects")
    return tools or None


def _flatten_content(message: dict[str, Any]) -> dict[str, Any]:
    # Most chat templates concatenate `content` as a string; OpenAI also allows a list of
    # text parts, which is joined here so such templates still render.
    content = message.get("content")
    if not isinstance(content, list):
        return message
    texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return {**message, "content": "".join(texts)}


def render_prompt(
    tokenizer: PreTrainedTokenizerBase, prompt: Prompt, tools: Tools | None = None
) -> str:
    """Render the text the model sees: raw text as is, messages through the chat template."""
    if isinstance(prompt, str):
        return prompt
    rendered = tokenizer.apply_chat_template(
        [dict(m) for m in prompt],
        tools=_tool_list(tools),
        tokenize=False,
        add_generation_prompt=True,
    )
    if not isinstance(rendered, str):
        raise TypeError(f"chat template rendered {type(rendered).__name__}, expected str")
    return rendered


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase, prompt: Prompt, tools: Tools | None = None
) -> list[int]:
    """Token ids of a prompt.

    Raw text gets the tokenizer's own special tokens (e.g. BOS). Messages are encoded by the chat
    template, which already writes its special tokens; control tokens typed *inside* message
    contents (`<|im_start|>system ...`) are encoded as plain text so users cannot forge turns.
    `tools` (OpenAI tool definitions) go to the template, so they need messages.
    """
    if isinstance(prompt, str):
        if tools:
            raise ValueError(f"{TOOLS_ERROR_PREFIX} tools need messages, not a raw prompt")
        return list(tokenizer.encode(prompt, add_special_tokens=True))
    ids = tokenizer.apply_chat_template(
        [dict(m) for m in prompt],
        tools=_tool_list(tools),
        tokenize=True,
        return_dict=False,
        add_generation_prompt=True,
        sanitize_control_tokens=True,
    )
    flat = [i for i in ids if isinstance(i, int)] if isinstance(ids, list) else []
    if not flat or len(flat) != len(ids):
        raise TypeError("chat template did not produce a flat list of token ids")
    return flat


def _tool_list(tools: Tools | None) -> list[dict[Any, Any] | Callable[..., Any]] | None:
    if not tools:
        return None
    return [dict(tool) for tool in tools]


def encode_words(tokenizer: PreTrainedTokenizerBase, words: Sequence[str]) -> list[list[int]]:
    """Token id sequences for stop/bad words, without special tokens; empty words are dropped.

    Byte-level BPE folds the preceding space into a word's first token ("danke" after a space
    is the token " danke", not "danke"), so a word encoded alone rarely matches the generated
    ids. Each word not starting with whitespace is therefore also encoded with a leading space;
    either id sequence decodes to text containing the word, so matching it is always right.
    """
    encoded: list[list[int]] = []
    for word in words:
        variants = [word, " " + word] if word and not word[0].isspace() else [word]
        for variant in variants:
            ids = list(tokenizer.encode(variant, add_special_tokens=False))
            if ids and ids not in encoded:
                encoded.append(ids)
    return encoded


def to_word_list_format(batch: Sequence[Sequence[Sequence[int]]]) -> IntArray:
    """Pack per-item word id lists into TensorRT-LLM's `[batch, 2, L]` word-list layout.

    Row 0 holds the concatenated ids of the item's words, row 1 the cumulative end offset of
    each word; both are padded to the longest item (ids with 0, offsets with -1). A batch with
    no words at all gives `L == 0`, as TensorRT-LLM's own preprocessing does.
    """
    flat = [[token for word in words for token in word] for words in batch]
    width = max((len(ids) for ids in flat), default=0)
    packed = np.empty((len(batch), 2, width), dtype=np.int32)
    packed[:, 0, :] = _ID_PAD
    packed[:, 1, :] = _OFFSET_PAD
    for row, (words, ids) in enumerate(zip(batch, flat, strict=True)):
        offsets = np.cumsum([len(word) for word in words], dtype=np.int32)
        packed[row, 0, : len(ids)] = ids
        packed[row, 1, : len(offsets)] = offsets
    return packed


def encode_word_lists(
    tokenizer: PreTrainedTokenizerBase, batch: Sequence[Sequence[str]]
) -> IntArray:
    """Stop/bad strings of every batch item -> `[batch, 2, L]` ids + offsets."""
    return to_word_list_format([encode_words(tokenizer, words) for words in batch])


def check_context_length(
    prompt_tokens: int, max_tokens: int, max_context: int, source: str = "messages"
) -> None:
    """Raise `ContextLengthExceededError` when prompt + completion exceed the context window.

    `source` names the prompt in the message: "messages" (chat) or "prompt" (completions).
    """
    if prompt_tokens + max_tokens > max_context:
        raise ContextLengthExceededError(max_context, prompt_tokens, max_tokens, source)


def max_context_from_model_dir(model_dir: str | Path) -> int | None:
    """The context window declared by a model directory's `config.json`, if any.

    Reads Hugging Face's `max_position_embeddings`, or `build_config.max_seq_len` of a
    TensorRT-LLM engine directory.
    """
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return None
    config = json.loads(path.read_text(encoding="utf-8"))
    for value in (
        config.get("max_position_embeddings"),
        config.get("build_config", {}).get("max_seq_len"),
        config.get("pretrained_config", {}).get("max_position_embeddings"),
    ):
        if isinstance(value, int) and value > 0:
            return value
    return None


def end_ids_from_model_dir(model_dir: str | Path) -> list[int]:
    """Every end-of-sequence id the model declares (`generation_config.json`, else
    `config.json`): chat models often list several (Llama 3, Qwen, our tiny-chat)."""
    for name in ("generation_config.json", "config.json"):
        path = Path(model_dir) / name
        if not path.is_file():
            continue
        eos = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
        if isinstance(eos, int):
            return [eos]
        if isinstance(eos, list) and eos:
            return [int(token) for token in eos]
    return []


def resolve_max_context(
    configured: int | None, model_dir: str | Path, tokenizer: PreTrainedTokenizerBase
) -> int:
    """The context window to enforce: the configured value when positive, else the model's own.

    Falls back to the tokenizer's `model_max_length` (HF sets a huge sentinel when unknown, so
    values above 10**8 are ignored); fails when nothing declares a window.
    """
    if configured is not None and configured > 0:
        return configured
    from_config = max_context_from_model_dir(model_dir)
    if from_config is not None:
        return from_config
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 10**8:
        return model_max
    raise ValueError(f"no max context: configure one or add config.json to {model_dir}")
