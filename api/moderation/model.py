"""A content filter backed by a Triton classification model.

The model's contract: ``INPUT_TEXT`` (BYTES, ``[n, 1]``) in, ``SCORES`` (FP32, ``[n, k]``) out,
one probability per category in the order of ``moderation.model_categories``. The call goes
through the small ``Classifier`` Protocol, so the filter is tested without Triton and the
generation backend's Protocol stays about generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import grpc
import numpy as np
import numpy.typing as npt
from tritonclient.grpc import service_pb2, service_pb2_grpc

from api.backend.errors import map_grpc_errors
from api.backend.tensors import add_input, decode_array
from api.errors import BackendError
from api.ids import unique_hex
from api.moderation.filters import Verdict
from api.settings import TritonSettings


class Classifier(Protocol):
    """Scores texts: one row per text, one column per category."""

    async def classify(
        self, triton_model: str, texts: Sequence[str]
    ) -> npt.NDArray[np.float32]: ...

    async def close(self) -> None: ...


class TritonClassifier:
    """Unary ``ModelInfer`` calls on a channel of its own to the same Triton server."""

    def __init__(self, settings: TritonSettings, timeout_s: float) -> None:
        options = [
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
        ]
        self._channel = grpc.aio.insecure_channel(settings.url, options=options)
        self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)
        self._timeout_s = timeout_s

    async def classify(self, triton_model: str, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        message = service_pb2.ModelInferRequest(model_name=triton_model, id=unique_hex())
        add_input(message, "INPUT_TEXT", "BYTES", list(texts), shape=(len(texts), 1))
        with map_grpc_errors():
            response = await self._stub.ModelInfer(message, timeout=self._timeout_s)
        scores = decode_array(response, "SCORES")
        if scores is None or scores.shape[0] != len(texts):
            raise BackendError("The moderation model returned an unexpected response.")
        return scores.astype(np.float32, copy=False)

    async def close(self) -> None:
        await self._channel.close()


class ModelFilter:
    """Flags a category when the model's score reaches ``threshold``."""

    def __init__(
        self,
        classifier: Classifier,
        triton_model: str,
        categories: Sequence[str],
        threshold: float,
    ) -> None:
        self._classifier = classifier
        self._triton_model = triton_model
        self._names = list(categories)
        self._threshold = threshold

    @property
    def category_names(self) -> Sequence[str]:
        return self._names

    async def check(self, text: str) -> Verdict:
        row = (await self._classifier.classify(self._triton_model, [text]))[0]
        if row.shape != (len(self._names),):
            raise BackendError("The moderation model returned a different number of categories.")
        scores = {name: float(score) for name, score in zip(self._names, row, strict=True)}
        return Verdict(
            categories={name: score >= self._threshold for name, score in scores.items()},
            scores=scores,
        )

    async def close(self) -> None:
        await self._classifier.close()
