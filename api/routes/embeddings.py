"""``POST /v1/embeddings``."""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import Response

from api.backend.types import EmbeddingInputs
from api.deprecation import model_headers
from api.embedding_service import Embeddings
from api.errors import InvalidRequestError
from api.http.json_response import json_response
from api.http.request_body import parse_body
from api.schemas.embeddings import (
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
)
from api.services import request_id_of, services_of
from api.settings import ModelKind, ServedModel
from api.usage.meter import usage_of


async def create_embeddings(request: Request) -> Response:
    services = services_of(request)
    body = await parse_body(request, EmbeddingRequest, services.settings.max_request_bytes)
    model = services.registry.resolve(body.model, ModelKind.EMBEDDING)
    texts = input_texts(body, services.settings.max_embedding_inputs)
    check_dimensions(body, model)
    result = await services.embeddings.embed(
        model, texts, request_id_of(request), truncate=body.truncate
    )
    usage_of(request).prompt_tokens = sum(result.token_counts)
    return json_response(render(body, result), headers=model_headers(model, body.model))


def input_texts(body: EmbeddingRequest, max_inputs: int) -> EmbeddingInputs:
    """The inputs as non-empty strings or non-empty token-id lists (never mixed)."""
    raw = body.input
    if isinstance(raw, str):
        inputs: EmbeddingInputs = [raw]
    elif raw and all(isinstance(item, int) for item in raw):
        inputs = [[int(item) for item in raw if isinstance(item, int)]]  # one token array
    else:
        inputs = [item for item in raw if isinstance(item, str | list)]
    if not inputs or any(len(item) == 0 for item in inputs):
        raise InvalidRequestError(
            "'input' must be a non-empty string, array of strings, or token arrays.",
            param="input",
        )
    if len(inputs) > max_inputs:
        raise InvalidRequestError(f"'input' may hold at most {max_inputs} items.", param="input")
    return inputs


def check_dimensions(body: EmbeddingRequest, model: ServedModel) -> None:
    if body.dimensions is not None and body.dimensions != model.embedding_dimensions:
        raise InvalidRequestError(
            f"The model '{model.id}' produces {model.embedding_dimensions} dimensions and "
            f"cannot shorten them.",
            param="dimensions",
            code="unsupported_parameter",
        )


def render(body: EmbeddingRequest, result: Embeddings) -> EmbeddingResponse:
    data = [
        EmbeddingData(
            index=index,
            embedding=base64.b64encode(vector.astype("<f4").tobytes()).decode()
            if body.encoding_format == "base64"
            else vector.tolist(),
        )
        for index, vector in enumerate(result.vectors)
    ]
    tokens = sum(result.token_counts)
    return EmbeddingResponse(
        data=data, model=body.model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
    )
