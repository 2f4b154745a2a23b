from __future__ import annotations

import base64

import numpy as np
import pytest
from httpx import Response
from starlette.testclient import TestClient

from api.app import create_app
from api.backend.errors import error_for_message
from api.backend.types import EmbeddingInputs, EmbeddingResult
from api.settings import Settings
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH

EMB = "/v1/embeddings"


def test_float_embeddings_in_input_order(client: TestClient) -> None:
    response = client.post(EMB, json={"model": "all-minilm-l6-v2", "input": ["a b", "c"]})
    assert response.status_code == 200
    body = response.json()
    assert [item["index"] for item in body["data"]] == [0, 1]
    assert len(body["data"][0]["embedding"]) == 384
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_base64_matches_float(client: TestClient) -> None:
    floats = client.post(EMB, json={"model": "all-minilm-l6-v2", "input": "x"}).json()
    encoded = client.post(
        EMB, json={"model": "all-minilm-l6-v2", "input": "x", "encoding_format": "base64"}
    ).json()
    decoded = np.frombuffer(base64.b64decode(encoded["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, floats["data"][0]["embedding"])


def test_alias_resolves(client: TestClient) -> None:
    body = client.post(EMB, json={"model": "text-embedding-minilm", "input": "x"}).json()
    assert body["model"] == "text-embedding-minilm"


def test_partly_cached_batch_computes_only_misses(client: TestClient, backend: FakeBackend) -> None:
    client.post(EMB, json={"model": "all-minilm-l6-v2", "input": ["one", "two"]})
    second = client.post(EMB, json={"model": "all-minilm-l6-v2", "input": ["two", "three", "one"]})
    assert backend.embedded == [["one", "two"], ["three"]]
    first_vectors = client.post(EMB, json={"model": "all-minilm-l6-v2", "input": ["three"]}).json()
    assert second.json()["data"][1]["embedding"] == first_vectors["data"][0]["embedding"]


def test_bad_inputs(client: TestClient) -> None:
    for body, status in [
        ({"model": "all-minilm-l6-v2", "input": ""}, 400),
        ({"model": "all-minilm-l6-v2", "input": []}, 400),
        ({"model": "all-minilm-l6-v2", "input": 5}, 400),
        ({"model": "all-minilm-l6-v2", "input": "x", "dimensions": 10}, 400),
        ({"model": "all-minilm-l6-v2", "input": "x", "encoding_format": "hex"}, 400),
        ({"model": "tiny-chat", "input": "x"}, 400),
        ({"model": "nope", "input": "x"}, 404),
        ({"input": "x"}, 400),
    ]:
        response = client.post(EMB, json=body)
        assert response.status_code == status, body
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_token_arrays_are_sent_as_ids_and_cached_apart_from_text(
    client: TestClient, backend: FakeBackend
) -> None:
    one = client.post(EMB, json={"model": "all-minilm-l6-v2", "input": [101, 7592, 102]})
    assert one.status_code == 200 and len(one.json()["data"]) == 1
    many = client.post(
        EMB, json={"model": "all-minilm-l6-v2", "input": [[101, 102], [101, 7592, 102]]}
    )
    assert [d["index"] for d in many.json()["data"]] == [0, 1]
    assert backend.embedded == [[[101, 7592, 102]], [[101, 102]]]
    assert client.post(EMB, json={"model": "all-minilm-l6-v2", "input": [[]]}).status_code == 400
    assert (
        client.post(EMB, json={"model": "all-minilm-l6-v2", "input": [[1], "x"]}).status_code == 400
    )


MODEL = "all-minilm-l6-v2"


def assert_input_error(response: Response, *fragments: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "input")
    for fragment in fragments:
        assert fragment in error["message"]


@pytest.mark.parametrize(
    ("ids", "where"),
    [
        ([101, -1, 102], "input"),
        ([101, 30522, 102], "input"),
        ([101, 2**31 - 1], "input"),
        ([101, 2**31], "input"),
        ([101, 2**63], "input"),
        ([[101, 102], [101, -5]], "input"),
        ([[101, 102], [101, 40000]], "input[1]"),
    ],
)
def test_token_ids_outside_the_vocabulary_are_400_before_triton(
    client: TestClient, backend: FakeBackend, ids: list[object], where: str
) -> None:
    response = client.post(EMB, json={"model": MODEL, "input": ids})
    assert_input_error(response, where)
    assert backend.embedded == []


def test_token_arrays_longer_than_the_model_reads_are_400_unless_truncated(
    client: TestClient, backend: FakeBackend
) -> None:
    row = [101, *[2773] * 255]  # 256 ids: exactly the window
    assert client.post(EMB, json={"model": MODEL, "input": row}).status_code == 200
    too_long = [[101, 102], [*row, 102]]
    response = client.post(EMB, json={"model": MODEL, "input": too_long})
    assert_input_error(response, "input[1]", "257 tokens", "256", '"truncate": true')
    assert len(backend.embedded) == 1
    cut = client.post(EMB, json={"model": MODEL, "input": too_long, "truncate": True})
    assert cut.status_code == 200
    assert cut.json()["usage"]["prompt_tokens"] == 2 + 256
    # The cut row is the window already embedded: served from the cache.
    assert backend.embedded[1:] == [[[101, 102]]]


def test_truncate_reaches_the_model_and_keeps_its_own_cache_entries(
    client: TestClient, backend: FakeBackend
) -> None:
    client.post(EMB, json={"model": MODEL, "input": "a long text"})
    client.post(EMB, json={"model": MODEL, "input": "a long text", "truncate": True})
    client.post(EMB, json={"model": MODEL, "input": "a long text", "truncate": True})
    assert backend.truncations == [False, True]
    bad = client.post(EMB, json={"model": MODEL, "input": "x", "truncate": "yes"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "truncate"


class RefusingBackend(FakeBackend):
    """What the Triton model answers for a text longer than it reads."""

    async def embed(
        self, triton_model: str, texts: EmbeddingInputs, request_id: str, *, truncate: bool = False
    ) -> EmbeddingResult:
        raise error_for_message(
            "invalid_request: an input has 300 tokens, more than the maximum of 256 tokens"
        )


def test_a_length_refused_by_the_model_is_a_400_on_input() -> None:
    app = create_app(Settings(), backend_factory=lambda _: RefusingBackend())
    with TestClient(app, headers=AUTH) as client:
        response = client.post(EMB, json={"model": MODEL, "input": "word " * 300})
    assert_input_error(response, "300 tokens", "256")
