"""The `preprocessing` step on numpy arrays: prompts in, TensorRT-LLM request tensors out.

Shapes follow model_repository/README.md (batch dimension first). The Triton model only moves
tensors between `pb_utils` and the dataclasses below.
"""

from __future__ import annotations

import json
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
    check_prompt_bytes,
    encode_prompt,
    encode_words,
    end_ids_from_model_dir,
    load_tokenizer,
    parse_messages,
    parse_tools,
    prompt_byte_limit,
    resolve_max_context,
    template_renders_tools,
    to_word_list_format,
)

ObjectArray = npt.NDArray[np.object_]


@dataclass(frozen=True)
class PreprocessRequest:
    """The inputs of one Triton request; `None` where an optional input was not sent."""

    output_lengths: IntArray  # [B, 1]
    fit_output_lengths: npt.NDArray[np.bool_] | None = None  # [B, 1]
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

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        max_context: int,
        end_ids: Sequence[int] = (),
        start_id: int | None = None,
        max_prompt_bytes: int | None = None,
        engine_vocab_size: int = 0,
    ) -> None:
        self._tokenizer = tokenizer
        self.max_context = max_context
        # A prompt longer than this cannot fit the context: refused before it is tokenized.
        self.max_prompt_bytes = max_prompt_bytes or prompt_byte_limit(tokenizer, max_context)
        self._tools_in_prompt = template_renders_tools(tokenizer)
        # Every id the tokenizer knows, added tokens included (TensorRT-LLM sizes its bias so).
        self.vocab_size = len(tokenizer)
        # embedding_bias is as wide as the engine's logits, which may be padded past the
        # tokenizer (vocab_size of the engine's config.json); 0: the tokenizer's size.
        if 0 < engine_vocab_size < self.vocab_size:
            raise ValueError(
                f"engine vocab_size {engine_vocab_size} is below the tokenizer's {self.vocab_size}"
            )
        self.bias_width = engine_vocab_size or self.vocab_size
        eos = tokenizer.eos_token_id
        if not isinstance(eos, int):
            raise ValueError("the tokenizer defines no eos token; end_id cannot default")
        self.end_id = eos
        pad = tokenizer.pad_token_id
        # Models without a pad token pad with eos: padding is never read past the lengths.
        self.pad_id = pad if isinstance(pad, int) else eos
        # TensorRT-LLM takes one end_id; a model that declares several end-of-sequence ids
        # (the model's config) stops on the others as single-token stop words.
        self.extra_end_ids = [[token] for token in dict.fromkeys(end_ids) if token != eos]
        # An empty prompt is valid (OpenAI writes from the start of a document) but the engine
        # needs one input token: the tokenizer's BOS, else the model's declared one (`start_id`),
        # else eos, which ends the document before (GPT-2's <|endoftext|> is both).
        candidates = (tokenizer.bos_token_id, start_id, eos)
        self.start_id: int = next(c for c in candidates if isinstance(c, int))

    @classmethod
    def from_dir(
        cls, tokenizer_dir: str | Path, max_context_tokens: int | None, vocab_size: int = 0
    ) -> Preprocessor:
        """Load the tokenizer; a non-positive `max_context_tokens` means "from config.json",
        a `vocab_size` of 0 sizes embedding_bias to the tokenizer."""
        tokenizer = load_tokenizer(tokenizer_dir)
        return cls(
            tokenizer,
            resolve_max_context(max_context_tokens, tokenizer_dir, tokenizer),
            end_ids_from_model_dir(tokenizer_dir),
            start_id=_bos_from_model_dir(tokenizer_dir),
            engine_vocab_size=vocab_size,
        )

    def __call__(self, request: PreprocessRequest) -> PreprocessResult:
        """Tokenize every batch item; raises `ValueError` (incl. context errors) on bad input."""
        prompts, source = _prompts(request)
        output_lengths = request.output_lengths.reshape(-1, 1).astype(np.int32)
        if len(output_lengths) != len(prompts):
            raise ValueError("REQUEST_OUTPUT_LEN and the prompt have different batch sizes")
        tools = _tools(request.tools, len(prompts))
        for prompt, item_tools in zip(prompts, tools, strict=True):
            check_prompt_bytes(
                prompt,
                item_tools if self._tools_in_prompt else None,
                self.max_prompt_bytes,
                self.max_context,
                source,
            )
        ids = [
            encode_prompt(self._tokenizer, p, t) or [self.start_id]
            for p, t in zip(prompts, tools, strict=True)
        ]
        fit = _flags(request.fit_output_lengths, len(prompts))
        for row, item_ids in enumerate(ids):
            if output_lengths[row, 0] < 1:
                raise ValueError(f"max_tokens must be at least 1, got {output_lengths[row, 0]}")
            if fit[row]:
                room = max(self.max_context - len(item_ids), 1)
                output_lengths[row, 0] = min(int(output_lengths[row, 0]), room)
            check_context_length(
                len(item_ids), int(output_lengths[row, 0]), self.max_context, source
            )
        pad_ids = _ids_or_default(request.pad_ids, self.pad_id, len(ids))
        return PreprocessResult(
            input_id=_pad_right(ids, pad_ids[:, 0]),
            request_input_len=np.array([[len(x)] for x in ids], dtype=np.int32),
            request_output_len=output_lengths,
            stop_words_ids=self._word_lists(request.stop_words, len(ids), self.extra_end_ids),
            bad_words_ids=self._word_lists(request.bad_words, len(ids)),
            out_end_id=_ids_or_default(request.end_ids, self.end_id, len(ids)),
            out_pad_id=pad_ids,
            embedding_bias=dense_logit_bias(
                request.logit_bias_ids,
                request.logit_bias_weights,
                self.vocab_size,
                len(ids),
                self.bias_width,
            ),
        )

    def _word_lists(
        self, words: ObjectArray | None, batch_size: int, extra: list[list[int]] | None = None
    ) -> IntArray:
        rows = [[] for _ in range(batch_size)] if words is None else [_strings(r) for r in words]
        return to_word_list_format(
            [encode_words(self._tokenizer, row) + (extra or []) for row in rows]
        )


def _prompts(request: PreprocessRequest) -> tuple[list[Prompt], str]:
    if (request.queries is None) == (request.messages is None):
        raise ValueError("exactly one of text_input and messages must be given")
    if request.messages is not None:
        return [parse_messages(row[0]) for row in request.messages], "messages"
    assert request.queries is not None
    return [_string(row[0]) for row in request.queries], "prompt"


def _bos_from_model_dir(model_dir: str | Path) -> int | None:
    """The ``bos_token_id`` the model declares (``generation_config.json``, else
    ``config.json``), if any: what an empty prompt starts from."""
    for name in ("generation_config.json", "config.json"):
        path = Path(model_dir) / name
        if path.is_file():
            bos = json.loads(path.read_text(encoding="utf-8")).get("bos_token_id")
            if isinstance(bos, int) and not isinstance(bos, bool):
                return bos
    return None


def _tools(tools: ObjectArray | None, batch_size: int) -> list[Tools | None]:
    if tools is None:
        return [None] * batch_size
    return [parse_tools(row[0]) for row in tools]


def _string(value: object) -> str:
    # Triton hands BYTES tensors over as numpy object arrays of `bytes`.
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _strings(row: Sequence[object]) -> list[str]:
    return [s for s in (_string(v) for v in row) if s]


def _flags(flags: npt.NDArray[np.bool_] | None, batch_size: int) -> list[bool]:
    if flags is None:
        return [False] * batch_size
    values = [bool(flag) for flag in flags.reshape(-1)]
    if len(values) != batch_size:
        raise ValueError("FIT_OUTPUT_LEN and the prompt have different batch sizes")
    return values


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
