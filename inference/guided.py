"""Guided decoding: TensorRT-LLM's ``guided_decoding_guide_type`` / ``guided_decoding_guide``.

TensorRT-LLM compiles and matches grammars with xgrammar, and so does this twin. A request's
grammar is compiled once (compiled grammars are cached by their source), then a matcher follows
the request: before each draw the tokens the grammar does not allow next are set to minus
infinity, and the drawn token is fed to the matcher. The request's end id is the matcher's only
stop token, so the mask allows it exactly where the grammar is complete: a request that ends with
its end id has produced a complete document. ``max_tokens`` or a stop word can still cut the
output short, and then it is a valid prefix only.

``json`` is xgrammar's built-in JSON grammar (any JSON value, any whitespace), as in TensorRT-LLM.
``json_schema`` is compiled without free whitespace (``", "`` and ``": "`` separators), where
TensorRT-LLM keeps xgrammar's default of free whitespace: small models otherwise tend to fill the
output with newlines. Both use xgrammar's strict mode: objects get no properties beyond the listed
ones unless the schema allows them, so every output still validates against the schema.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import xgrammar as xgr
from transformers import PreTrainedTokenizerBase

from inference.request import GUIDED_ERROR_PREFIX, GuidedDecoding, GuideType
from inference.tokenization import load_tokenizer

_CACHE_LIMIT_BYTES = 64 << 20
# xgrammar prefixes its messages with a time and a C++ source location.
_LOCATION = re.compile(r"^\[[\d:]+\] [^ ]+:\d+: (Check failed: .*? is false: )?")


class GrammarConstraint:
    """The grammar state of one request: masks its logits and follows its tokens.

    Used by the engine thread only.
    """

    def __init__(self, matcher: xgr.GrammarMatcher, vocab_size: int) -> None:
        self._matcher = matcher
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """A copy of one row of logits with the tokens the grammar forbids at -inf.

        Raises ``ValueError`` when no token is left (the grammar and the request's other
        constraints, e.g. ``min_tokens`` or bad words, contradict each other).
        """
        masked = logits.clone()
        if self._matcher.fill_next_token_bitmask(self._bitmask):
            xgr.apply_token_bitmask_inplace(masked.unsqueeze(0), self._bitmask)
        if not bool(torch.isfinite(masked).any()):
            raise ValueError("no token satisfies both the grammar and the other constraints")
        return masked

    def accept(self, token: int) -> None:
        """Advance the grammar by a token drawn from masked logits."""
        if not self._matcher.accept_token(token):
            raise ValueError(f"token {token} does not continue the grammar")


class GuidedDecoder:
    """Compiles guides against one tokenizer and hands out per-request constraints.

    Thread-safe: requests are compiled on Triton's thread, matched on the engine's.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, vocab_size: int, max_threads: int = 1
    ) -> None:
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self._compiler = xgr.GrammarCompiler(
            info, max_threads=max_threads, cache_limit_bytes=_CACHE_LIMIT_BYTES
        )
        self._vocab_size = vocab_size

    @classmethod
    def from_dir(cls, tokenizer_dir: str | Path, vocab_size: int) -> GuidedDecoder:
        """Load the Hugging Face tokenizer of ``tokenizer_dir`` (never from the hub)."""
        return cls(load_tokenizer(tokenizer_dir), vocab_size)

    def constraint(self, guided: GuidedDecoding, end_id: int) -> GrammarConstraint:
        """A fresh constraint for one request; ``ValueError`` for a guide that does not compile."""
        matcher = xgr.GrammarMatcher(self._compile(guided), override_stop_tokens=[end_id])
        return GrammarConstraint(matcher, self._vocab_size)

    def _compile(self, guided: GuidedDecoding) -> xgr.CompiledGrammar:
        compiler = self._compiler
        try:
            if guided.guide_type is GuideType.JSON:
                return compiler.compile_builtin_json_grammar()
            if guided.guide_type is GuideType.JSON_SCHEMA:
                return compiler.compile_json_schema(guided.guide, any_whitespace=False)
            if guided.guide_type is GuideType.REGEX:
                return compiler.compile_regex(guided.guide)
            return compiler.compile_grammar(guided.guide)
        except RuntimeError as error:
            message = _LOCATION.sub("", str(error).strip())
            raise ValueError(
                f"{GUIDED_ERROR_PREFIX} the {guided.guide_type.value} guide does not compile: "
                f"{message}"
            ) from error
