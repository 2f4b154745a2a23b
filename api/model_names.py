"""The names a request's ``model`` may hold in this deployment."""

from __future__ import annotations

from api.settings import Settings

# What /v1/moderations answers to when only the content filter's patterns are configured.
PATTERN_MODEL = "pattern-filter"


def moderation_model(settings: Settings) -> str:
    """The name ``POST /v1/moderations`` answers to: the Triton model, else the patterns."""
    return settings.moderation.triton_model or PATTERN_MODEL


def known_models(settings: Settings) -> set[str]:
    """Served ids, their aliases and the moderation model."""
    names = {name for model in settings.models for name in (model.id, *model.aliases)}
    return names | {moderation_model(settings)}
