"""The `preprocessing` step on numpy arrays: prompts in, TensorRT-LLM request tensors out.

Shapes follow model_repository/README.md (batch dimension first). The Triton model only moves
tensors between `pb_utils` and the dataclasses below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from transformers import PreTrainedTokenizerBase

from inference.logit_bias import FloatArray, dense_logit_bias
from inference.tokenization import (
    IntArray,
    Prompt,
    Tools,
    check_context_length,
    encode_prompt,
    encode_word_lists,
    load_tokenizer,
    parse_messages,
    parse_tools,
    resolve_max_context,
)

ObjectArray = npt.NDArray[np.object_]


@dataclass(frozen=True)
class PreprocessRequest:
    """The inputs of one Triton request; `None` where an optional input was not sent."""

    output_lengths: IntArray  # [B, 1]
    queries: ObjectArray | None = None  # [B, 1] bytes
    messages: ObjectArray | None = None  # [B, 1] bytes (JSON)
    stop_words: ObjectArray | None = None  # [B, W] bytes
    bad_words: ObjectArray | None = None  # [B, W] bytes
    end_ids: IntArray | None = None  # [B, 1]
    pad_ids: IntArray | None = None  # [B, 1]
    tools: ObjectArray | None = None  # [B, 1] bytes (JSON list of OpenAI tool definitions)
    logit_bias_ids: IntArray | None = None  # [B, N]
    logit_bias_weights: FloatArray | None = None  # [B, N]


@dataclass(frozen=True)
class PreprocessResult:
    """The outputs, named after the Triton tensors they become."""

    input_id: IntArray  # INPUT_ID [B, L], right-padded with the pad id
    request_input_len: IntArray  # REQUEST_INPUT_LEN [B, 1]
    request_output_len: IntArray  # REQUEST_OUTPUT_LEN [B, 1]
    stop_words_ids: IntArray  # STOP_WORDS_IDS [B, 2, L]
    bad_words_ids: IntArray  # BAD_WORDS_IDS [B, 2, L]
    out_end_id: IntArray  # OUT_END_ID [B, 1]
    out_pad_id: IntArray  # OUT_PAD_ID [B, 1]
    embedding_bias: FloatArray  # EMBEDDING_BIAS [B, vocab], or [B, 0] without logit_bias


class Preprocessor:
    """Tokenizes prompts and enforces the context window for one tokenizer."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_context: int) -> None:
        self._tokenizer = tokenizer
        self.max_context = max_context
        # Every id the tokenizer knows, added tokens included (TensorRT-LLM sizes its bias so).
        self.vocab_size = len(tokenizer)
        eos = tokenizer.eos_token_id
        if not isinstance(eos, int):
            raise ValueError("the tokenizer defines no eos token; end_id cannot default")
        self.end_id = eos
        pad = tokenizer.pad_token_id
        # Models without a pad token pad with eos: padding is never read past the lengths.
        self.pad_id = pad if isinstance(pad, int) else eos

    @classmethod
    def from_dir(cls, tokenizer_dir: str | Path, max_context_tokens: int | None) -> Preprocessor:
        """Load the tokenizer; a non-positive `max_context_tokens` means "from config.json"."""
        tokenizer = load_tokenizer(tokenizer_dir)
        return cls(tokenizer, resolve_max_context(max_context_tokens, tokenizer_dir, tokenizer))

    def __call__(self, request: PreprocessRequest) -> PreprocessResult:
        """Tokenize every batch item; raises `ValueError` (incl. context errors) on bad input."""
        prompts, source = _prompts(request)
        output_lengths = request.output_lengths.reshape(-1, 1).astype(np.int32)
        if len(output_lengths) != len(prompts):
            raise ValueError("REQUEST_OUTPUT_LEN and the prompt have different batch sizes")
        tools = _tools(request.tools, len(prompts))
        ids = [encode_prompt(self._tokenizer, p, t) for p, t in zip(prompts, tools, strict=True)]
        for item_ids, max_tokens in zip(ids, output_lengths[:, 0], strict=True):
            if max_tokens < 1:
                raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
            check_context_length(len(item_ids), int(max_tokens), self.max_context, source)
        pad_ids = _ids_or_default(request.pad_ids, self.pad_id, len(ids))
        return PreprocessResult(
            input_id=_pad_right(ids, pad_ids[:, 0]),
            request_input_len=np.array([[len(x)] for x in ids], dtype=np.int32),
            request_output_len=output_lengths,
            stop_words_ids=self._word_lists(request.stop_words, len(ids)),
            bad_words_ids=self._word_lists(request.bad_words, len(ids)),
            out_end_id=_ids_or_default(request.end_ids, self.end_id, len(ids)),
            out_pad_id=pad_ids,
            embedding_bias=dense_logit_bias(
                request.logit_bias_ids, request.logit_bias_weights, self.vocab_size, len(ids)
            ),
        )

    def _word_lists(self, words: ObjectArray | None, batch_size: int) -> IntArray:
        if words is None:
            return encode_word_lists(self._tokenizer, [[] for _ in range(batch_size)])
        return encode_word_lists(self._tokenizer, [_strings(row) for row in words])


def _prompts(request: PreprocessRequest) -> tuple[list[Prompt], str]:
    if (request.queries is None) == (request.messages is None):
        raise ValueError("exactly one of text_input and messages must be given")
    if request.messages is not None:
        return [parse_messages(row[0]) for row in request.messages], "messages"
    assert request.queries is not None
    return [_string(row[0]) for row in request.queries], "prompt"


def _tools(tools: ObjectArray | None, batch_size: int) -> list[Tools | None]:
    if tools is None:
        return [None] * batch_size
    return [parse_tools(row[0]) for row in tools]


def _string(value: object) -> str:
    # Triton hands BYTES tensors over as numpy object arrays of `bytes`.
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _strings(row: Sequence[object]) -> list[str]:
    return [s for s in (_string(v) for v in row) if s]


def _ids_or_default(ids: IntArray | None, default: int, batch_size: int) -> IntArray:
    if ids is None:
        return np.full((batch_size, 1), default, dtype=np.int32)
    return ids.reshape(-1, 1).astype(np.int32)


def _pad_right(ids: list[list[int]], pad_ids: IntArray) -> IntArray:
    width = max(len(x) for x in ids)
    out = np.empty((len(ids), width), dtype=np.int32)
    for row, (item, pad) in enumerate(zip(ids, pad_ids, strict=True)):
        out[row, : len(item)] = item
        out[row, len(item) :] = pad
    return out
