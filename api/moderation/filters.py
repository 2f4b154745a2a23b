"""The content-filter hook and its pattern implementation.

A ``ContentFilter`` looks at one text and returns a ``Verdict``: per-category flags and
scores, and, when the filter can tell, where the offending text starts (the streamed-reply
guard cuts the reply there). Filters are combined with ``CombinedFilter``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from api.settings import ContentPattern


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a filter found in one text."""

    categories: dict[str, bool] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    # Offset of the first offending character, when known (patterns know, models do not).
    start: int | None = None

    @property
    def flagged(self) -> bool:
        return any(self.categories.values())

    def flagged_categories(self) -> list[str]:
        return sorted(name for name, hit in self.categories.items() if hit)


class ContentFilter(Protocol):
    """Decides whether text is acceptable; implementations must be safe to call concurrently."""

    @property
    def category_names(self) -> Sequence[str]:
        """Every category a verdict of this filter reports."""
        ...

    async def check(self, text: str) -> Verdict: ...

    async def close(self) -> None:
        """Release what the filter holds (a gRPC channel); called on shutdown."""
        ...


class PatternFilter:
    """Case-insensitive regular expressions, each with a category (score 1.0 on a match)."""

    def __init__(self, patterns: Sequence[ContentPattern]) -> None:
        self._rules = [
            (rule.category, re.compile(rule.pattern, re.IGNORECASE)) for rule in patterns
        ]
        self._names = list(dict.fromkeys(category for category, _ in self._rules))

    @property
    def category_names(self) -> Sequence[str]:
        return self._names

    async def check(self, text: str) -> Verdict:
        return self.check_now(text)

    async def close(self) -> None:
        return None

    def check_now(self, text: str) -> Verdict:
        """The same verdict, synchronously (patterns need no I/O)."""
        hits: dict[str, int] = {}
        for category, regex in self._rules:
            found = regex.search(text)
            if found is not None:
                hits[category] = min(found.start(), hits.get(category, found.start()))
        return Verdict(
            categories={name: name in hits for name in self._names},
            scores={name: 1.0 if name in hits else 0.0 for name in self._names},
            start=min(hits.values()) if hits else None,
        )


class CombinedFilter:
    """Several filters as one: a category is flagged if any filter flags it."""

    def __init__(self, filters: Sequence[ContentFilter]) -> None:
        self._filters = list(filters)
        self._names = list(dict.fromkeys(n for f in self._filters for n in f.category_names))

    @property
    def category_names(self) -> Sequence[str]:
        return self._names

    async def check(self, text: str) -> Verdict:
        verdicts = await asyncio.gather(*(f.check(text) for f in self._filters))
        categories = {name: False for name in self._names}
        scores = {name: 0.0 for name in self._names}
        for verdict in verdicts:
            for name, hit in verdict.categories.items():
                categories[name] = categories.get(name, False) or hit
            for name, score in verdict.scores.items():
                scores[name] = max(scores.get(name, 0.0), score)
        flagged = [v for v in verdicts if v.flagged]
        # A flagging filter that cannot locate the text makes the whole verdict unlocated.
        starts = [v.start for v in flagged]
        start = None if not starts or None in starts else min(s for s in starts if s is not None)
        return Verdict(categories=categories, scores=scores, start=start)

    async def close(self) -> None:
        await asyncio.gather(*(f.close() for f in self._filters))
