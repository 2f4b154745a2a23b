"""Running one batch line with the same functions the HTTP routes use (no HTTP self-call).

Chat goes through ``begin_chat`` + ``collect_chat_completion``, legacy completions through
``begin_completion`` + ``collect_completion``, responses through ``detached_response`` (not
stored), embeddings through the embedding service and the route's own checks and rendering.
Any ``APIError`` becomes the line's error response, with the status and body the route would
have answered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from api.chat.replies import collect_chat_completion, total_usage
from api.chat.run import begin_chat
from api.completions.replies import collect_completion
from api.completions.run import begin_completion
from api.errors import APIError, BackendError, InvalidRequestError
from api.http.request_body import validate_payload
from api.responses.detached import detached_response
from api.responses.objects import response_json
from api.routes.embeddings import check_dimensions, input_texts, render
from api.schemas.chat import ChatCompletionRequest
from api.schemas.completions import CompletionRequest
from api.schemas.embeddings import EmbeddingRequest
from api.schemas.responses import CreateResponse
from api.services import Services
from api.settings import ModelKind

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LineOutcome:
    status_code: int
    body: dict[str, Any]
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status_code == 200


async def run_line(
    services: Services, endpoint: str, request: dict[str, Any], request_id: str
) -> LineOutcome:
    """The response the route would have given to ``request`` (never raises APIError)."""
    try:
        return await _dispatch(services, endpoint, request, request_id)
    except APIError as error:
        return LineOutcome(error.status_code, error.to_dict(), str(request.get("model", "")))
    except Exception:
        logger.exception("batch line failed", extra={"request_id": request_id})
        failure = BackendError("The server had an error while processing your request.")
        return LineOutcome(failure.status_code, failure.to_dict(), str(request.get("model", "")))


async def _dispatch(
    services: Services, endpoint: str, body: dict[str, Any], request_id: str
) -> LineOutcome:
    # Validated as parsed: serializing the line again would fail on JSON nested past
    # orjson's 255 levels instead of answering the schema's 400.
    if endpoint == "/v1/chat/completions":
        return await _chat(services, validate_payload(body, ChatCompletionRequest), request_id)
    if endpoint == "/v1/completions":
        return await _completion(services, validate_payload(body, CompletionRequest), request_id)
    if endpoint == "/v1/responses":
        return await _response(services, validate_payload(body, CreateResponse), request_id)
    return await _embeddings(services, validate_payload(body, EmbeddingRequest), request_id)


def _no_stream(stream: bool) -> None:
    if stream:
        raise InvalidRequestError(
            "Streaming is not available in a batch.", param="stream", code="unsupported_parameter"
        )


async def _chat(services: Services, body: ChatCompletionRequest, request_id: str) -> LineOutcome:
    _no_stream(body.stream)
    run = await begin_chat(services, body, request_id)
    completion = await collect_chat_completion(run.streams, run.generations, run.meta, run.states)
    usage = completion.usage
    return _outcome(completion, run.model.id, usage.prompt_tokens, usage.completion_tokens)


async def _completion(services: Services, body: CompletionRequest, request_id: str) -> LineOutcome:
    _no_stream(body.stream)
    run = await begin_completion(services, body, request_id)
    completion = await collect_completion(
        run.streams, run.generations, run.meta, body.echo, run.states, run.prompts
    )
    usage = total_usage(run.states, run.prompts)
    return _outcome(completion, run.model.id, usage.prompt_tokens, usage.completion_tokens)


async def _response(services: Services, body: CreateResponse, request_id: str) -> LineOutcome:
    record, run = await detached_response(services, body, request_id)
    state = run.states[0]
    return LineOutcome(
        200, response_json(record), run.model.id, state.prompt_tokens, state.completion_tokens
    )


async def _embeddings(services: Services, body: EmbeddingRequest, request_id: str) -> LineOutcome:
    model = services.registry.resolve(body.model, ModelKind.EMBEDDING)
    texts = input_texts(body, services.settings.max_embedding_inputs)
    check_dimensions(body, model)
    result = await services.embeddings.embed(model, texts, request_id, truncate=body.truncate)
    response = render(body, result)
    return _outcome(response, model.id, response.usage.prompt_tokens, 0)


def _outcome(response: BaseModel, model: str, prompt: int, completion: int) -> LineOutcome:
    return LineOutcome(200, response.model_dump(mode="json"), model, prompt, completion)
