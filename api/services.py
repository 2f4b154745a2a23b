"""The application's long-lived objects, owned by one state object for its lifetime."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from api.backend.protocol import InferenceBackend
from api.embedding_service import EmbeddingService
from api.moderation.filters import ContentFilter
from api.registry import ModelRegistry
from api.resilience import Resilience
from api.settings import Settings


@dataclass(slots=True)
class Services:
    settings: Settings
    backend: InferenceBackend
    registry: ModelRegistry
    embeddings: EmbeddingService
    started_at: int
    # The guards around ``backend``: breakers, admission gates, draining.
    resilience: Resilience
    # Prompts and replies are checked when a content filter is configured.
    content_filter: ContentFilter | None = None


def services_of(connection: HTTPConnection) -> Services:
    services: Services = connection.app.state.services
    return services


def request_id_of(connection: HTTPConnection) -> str:
    request_id: str = connection.state.request_id
    return request_id
