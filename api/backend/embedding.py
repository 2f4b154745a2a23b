"""The embedding model's tensor contract on the client side."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from tritonclient.grpc import service_pb2

from api.backend.ensemble import ENABLE_EMPTY_FINAL
from api.backend.tensors import add_input, decode_array
from api.backend.types import EmbeddingInputs
from api.errors import BackendError


def build_embedding_request(
    triton_model: str, texts: EmbeddingInputs, request_id: str, truncate: bool = False
) -> service_pb2.ModelInferRequest:
    """One request carrying the whole batch: texts as ``[n, 1]``, token ids as ``[n, width]``.

    ``truncate`` (``TRUNCATE``, BOOL ``[n, 1]``, sent only when set) lets the model cut texts
    longer than it reads instead of refusing them.
    """
    message = service_pb2.ModelInferRequest(model_name=triton_model, id=request_id)
    message.parameters[ENABLE_EMPTY_FINAL].bool_param = True
    if truncate:
        add_input(message, "TRUNCATE", "BOOL", [True] * len(texts), shape=(len(texts), 1))
    if all(isinstance(item, str) for item in texts):
        add_input(message, "INPUT_TEXT", "BYTES", list(texts), shape=(len(texts), 1))
        return message
    rows = [list(item) for item in texts if not isinstance(item, str)]
    width = max(len(row) for row in rows)
    # Rows are right-padded with -1, which the model strips (ids are never negative).
    padded = [value for row in rows for value in [*row, *[-1] * (width - len(row))]]
    add_input(message, "INPUT_IDS", "INT32", padded, shape=(len(rows), width))
    return message


def parse_embedding_response(
    response: service_pb2.ModelInferResponse, expected: int
) -> tuple[npt.NDArray[np.float32], list[int]]:
    vectors = decode_array(response, "EMBEDDING")
    counts = decode_array(response, "NUM_TOKENS")
    if vectors is None or counts is None or vectors.shape[0] != expected:
        raise BackendError("The embedding model returned an unexpected response.")
    return vectors.astype(np.float32, copy=False), [int(c) for c in counts.reshape(-1)]
