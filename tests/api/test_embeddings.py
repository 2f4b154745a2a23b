from __future__ import annotations

import base64

import numpy as np
from starlette.testclient import TestClient

from tests.api.fakes import FakeBackend

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
