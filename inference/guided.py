"""Guided decoding: TensorRT-LLM's ``guided_decoding_guide_type`` / ``guided_decoding_guide``.

TensorRT-LLM compiles and matches grammars with xgrammar, and so does this twin. A guide past
the size and complexity limits (:mod:`inference.guide_limits`) is refused before anything is
compiled. The others are compiled off the engine's decode loop, on a worker thread, once per
(guide type, guide) while cached (:mod:`inference.grammar_cache`); a request waits for its
grammar outside the batch, at most ``compile_budget_s`` from its arrival, and fails alone
(``invalid_guided_decoding: ... took longer than ...``) past it. Then a matcher follows the
request: before each draw the tokens the grammar does not allow next are set to minus
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
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import torch
import xgrammar as xgr
from transformers import PreTrainedTokenizerBase

from inference.grammar_cache import GrammarCache
from inference.guide_limits import GuideLimits
from inference.request import GUIDED_ERROR_PREFIX, GuidedDecoding, GuideType
from inference.tokenization import load_tokenizer

# xgrammar prefixes its messages with a time and a C++ source location.
_LOCATION = re.compile(r"^\[[\d:]+\] [^ ]+:\d+: (Check failed: .*? is false: )?")


@dataclass(frozen=True)
class GuidedOptions:
    """How guides are bounded, compiled and cached (the model's config.pbtxt parameters)."""

    limits: GuideLimits = field(default_factory=GuideLimits)
    # From a request's arrival until its grammar must be ready; below the API's
    # resilience.queue_timeout_s (10 s), so that the client learns why (a 400, not a 503).
    compile_budget_s: float = 5.0
    compile_threads: int = 1
    cache_entries: int = 64
    cache_bytes: int = 64 << 20


class GrammarConstraint:
    """The grammar state of one request: masks its logits and follows its tokens.

    It starts out waiting for the compiled grammar; the engine admits the request once
    :meth:`ready` says so. Used by the engine thread only.
    """

    def __init__(
        self,
        guided: GuidedDecoding,
        compiled: Future[xgr.CompiledGrammar],
        end_id: int,
        vocab_size: int,
        deadline: float,
        budget_s: float,
        release: Callable[[], None],
    ) -> None:
        self._guided = guided
        self._compiled = compiled
        self._end_id = end_id
        self._vocab_size = vocab_size
        self._deadline = deadline
        self._budget_s = budget_s
        self._release = release
        self._matcher: xgr.GrammarMatcher | None = None
        self._bitmask: torch.Tensor | None = None

    def ready(self, now: float | None = None) -> bool:
        """Whether the grammar is compiled and the matcher set up.

        Raises ``ValueError`` (``invalid_guided_decoding:``) for a guide that does not compile
        or that was not compiled within the budget; the request then fails alone.
        """
        if self._matcher is not None:
            return True
        if not self._compiled.done():
            if (time.monotonic() if now is None else now) < self._deadline:
                return False
            self.abandon()
            kind = self._guided.guide_type.value
            raise ValueError(
                f"{GUIDED_ERROR_PREFIX} the {kind} guide took longer than "
                f"{self._budget_s:g} s to compile; simplify it (fewer properties, optional "
                "properties or alternatives)"
            )
        compiled = self._compiled.result()  # raises the compile's ValueError
        self._matcher = xgr.GrammarMatcher(compiled, override_stop_tokens=[self._end_id])
        self._bitmask = xgr.allocate_token_bitmask(1, self._vocab_size)
        return True

    def abandon(self) -> None:
        """Stop waiting for the grammar (cancelled, out of time); idempotent."""
        if self._matcher is None:
            self._release()
            self._release = _nothing

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """A copy of one row of logits with the tokens the grammar forbids at -inf.

        Raises ``ValueError`` when no token is left (the grammar and the request's other
        constraints, e.g. ``min_tokens`` or bad words, contradict each other).
        """
        if self._matcher is None or self._bitmask is None:
            raise RuntimeError("the grammar is not compiled yet")
        masked = logits.clone()
        if self._matcher.fill_next_token_bitmask(self._bitmask):
            xgr.apply_token_bitmask_inplace(masked.unsqueeze(0), self._bitmask)
        if not bool(torch.isfinite(masked).any()):
            raise ValueError("no token satisfies both the grammar and the other constraints")
        return masked

    def accept(self, token: int) -> None:
        """Advance the grammar by a token drawn from masked logits."""
        if self._matcher is None:
            raise RuntimeError("the grammar is not compiled yet")
        if not self._matcher.accept_token(token):
            raise ValueError(f"token {token} does not continue the grammar")


def _nothing() -> None:
    return None


class GuidedDecoder:
    """Checks and compiles guides against one tokenizer and hands out per-request constraints.

    Thread-safe: requests arrive on Triton's thread, grammars compile on the cache's workers,
    matchers run on the engine's thread.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        vocab_size: int,
        options: GuidedOptions | None = None,
    ) -> None:
        self.options = options or GuidedOptions()
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        # xgrammar's own cache is off: the GrammarCache below owns caching and its bounds.
        self._compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        self._vocab_size = vocab_size
        self.cache: GrammarCache[xgr.CompiledGrammar] = GrammarCache(
            self._compile,
            size_of=lambda grammar: int(grammar.memory_size_bytes),
            workers=self.options.compile_threads,
            max_entries=self.options.cache_entries,
            max_bytes=self.options.cache_bytes,
        )

    @classmethod
    def from_dir(
        cls, tokenizer_dir: str | Path, vocab_size: int, options: GuidedOptions | None = None
    ) -> GuidedDecoder:
        """Load the Hugging Face tokenizer of ``tokenizer_dir`` (never from the hub)."""
        return cls(load_tokenizer(tokenizer_dir), vocab_size, options)

    def constraint(
        self,
        guided: GuidedDecoding,
        end_id: int,
        on_ready: Callable[[], None] | None = None,
    ) -> GrammarConstraint:
        """A fresh constraint for one request, waiting for its grammar; never blocks.

        Raises ``ValueError`` for a guide past the limits. ``on_ready`` is called (on another
        thread) once the grammar is compiled or failed to.
        """
        self.options.limits.check(guided)
        compiled = self.cache.acquire(guided)
        if on_ready is not None:
            compiled.add_done_callback(lambda _: on_ready())
        budget = self.options.compile_budget_s
        return GrammarConstraint(
            guided,
            compiled,
            end_id,
            self._vocab_size,
            deadline=time.monotonic() + budget,
            budget_s=budget,
            release=lambda: self.cache.release(guided, compiled),
        )

    def close(self) -> None:
        """Stop the compile workers, waiting up to the budget for a compile under way."""
        self.cache.close(self.options.compile_budget_s)

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
