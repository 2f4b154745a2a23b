"""The embedding model's tensor contract on the client side."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from tritonclient.grpc import service_pb2

from api.backend.ensemble import ENABLE_EMPTY_FINAL
from api.backend.tensors import add_input, decode_array
from api.errors import BackendError


def build_embedding_request(
    triton_model: str, texts: Sequence[str], request_id: str
) -> service_pb2.ModelInferRequest:
    """One request carrying the whole batch as ``[len(texts), 1]``."""
    message = service_pb2.ModelInferRequest(model_name=triton_model, id=request_id)
    message.parameters[ENABLE_EMPTY_FINAL].bool_param = True
    add_input(message, "INPUT_TEXT", "BYTES", list(texts), shape=(len(texts), 1))
    return message


def parse_embedding_response(
    response: service_pb2.ModelInferResponse, expected: int
) -> tuple[npt.NDArray[np.float32], list[int]]:
    vectors = decode_array(response, "EMBEDDING")
    counts = decode_array(response, "NUM_TOKENS")
    if vectors is None or counts is None or vectors.shape[0] != expected:
        raise BackendError("The embedding model returned an unexpected response.")
    return vectors.astype(np.float32, copy=False), [int(c) for c in counts.reshape(-1)]
