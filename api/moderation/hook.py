"""Where the content filter meets requests: prompts checked up front, replies guarded."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from api.backend.types import GenerationRequest
from api.errors import ContentFilterError
from api.generation.assembly import ReplyState
from api.generation.choices import ChunkStream
from api.moderation.filters import CombinedFilter, ContentFilter, PatternFilter
from api.moderation.model import ModelFilter, TritonClassifier
from api.moderation.stream import OutputGuard, guarded
from api.settings import ModerationSettings, Settings


def build_content_filter(settings: Settings) -> ContentFilter | None:
    """The configured filter: patterns, the moderation model, both, or none."""
    options = settings.moderation
    filters: list[ContentFilter] = []
    if options.patterns:
        filters.append(PatternFilter(options.patterns))
    if options.triton_model is not None:
        classifier = TritonClassifier(settings.triton, settings.request_timeout_s)
        filters.append(
            ModelFilter(
                classifier, options.triton_model, options.model_categories, options.threshold
            )
        )
    if not filters:
        return None
    return filters[0] if len(filters) == 1 else CombinedFilter(filters)


async def check_prompt(
    content_filter: ContentFilter | None,
    options: ModerationSettings,
    text: Callable[[], str],
    param: str,
) -> None:
    """Raise ``ContentFilterError`` (400 ``content_filter``) when the prompt is flagged.

    ``text`` builds the prompt's text: only when a filter is there to read it.
    """
    if content_filter is None or not options.filter_input:
        return
    verdict = await content_filter.check(text())
    if verdict.flagged:
        raise ContentFilterError(
            "The prompt was filtered because it triggered the content filter "
            f"({', '.join(verdict.flagged_categories())}). Please modify your prompt and retry.",
            param=param,
        )


def guard_replies(
    content_filter: ContentFilter | None,
    options: ModerationSettings,
    streams: Sequence[ChunkStream],
    states: Sequence[ReplyState],
    requests: Sequence[GenerationRequest] = (),
) -> list[ChunkStream]:
    """Each choice's stream behind its own output guard (unchanged without a filter).

    With ``requests`` (one per stream), text after a choice's stop sequence is not checked:
    the reply ends at the stop, so it never reaches the client anyway.
    """
    if content_filter is None or not options.filter_output:
        return list(streams)
    stops = [request.params.stop for request in requests] or [()] * len(streams)
    window = options.stream_window_chars
    return [
        guarded(stream, OutputGuard(content_filter, window, stop), state)
        for stream, state, stop in zip(streams, states, stops, strict=True)
    ]
