"""``POST /v1/moderations``: the content filter's verdicts in OpenAI's shape."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.moderation.model import ModelFilter
from api.settings import ModerationSettings, Settings
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH, TEST_KEY
from tests.api.test_content_filter import RULES, FakeClassifier

MODERATIONS = "/v1/moderations"


@pytest.fixture
def moderated(backend: FakeBackend) -> Iterator[TestClient]:
    settings = Settings(moderation=ModerationSettings(patterns=RULES))
    with TestClient(create_app(settings, backend_factory=lambda _: backend), headers=AUTH) as c:
        yield c


def test_string_input_gives_one_result(moderated: TestClient) -> None:
    response = moderated.post(MODERATIONS, json={"input": "Sometimes I want to hurt myself"})
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("modr-")
    assert body["model"] == "pattern-filter"
    assert body["results"] == [
        {
            "flagged": True,
            "categories": {"self-harm": True, "violence": False},
            "category_scores": {"self-harm": 1.0, "violence": 0.0},
        }
    ]


def test_array_input_gives_a_result_per_item_in_order(moderated: TestClient) -> None:
    body = {"input": ["a calm day", "HOW CAN it be", "hurt myself"], "model": "pattern-filter"}
    response = moderated.post(MODERATIONS, json=body).json()
    assert response["model"] == "pattern-filter"
    assert [r["flagged"] for r in response["results"]] == [False, True, True]
    assert response["results"][1]["categories"] == {"self-harm": False, "violence": True}


@pytest.mark.parametrize("model", ["mod-1", "omni-moderation-latest", "tiny-chat", ""])
def test_an_unknown_model_is_404(moderated: TestClient, model: str) -> None:
    response = moderated.post(MODERATIONS, json={"input": "x", "model": model})
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_found", "model")


def test_ids_are_unique_even_for_one_client_request_id(moderated: TestClient) -> None:
    headers = {"X-Request-ID": "same-id"}
    first, second = (
        moderated.post(MODERATIONS, json={"input": "x"}, headers=headers) for _ in "ab"
    )
    assert first.headers["x-request-id"] == second.headers["x-request-id"] == "same-id"
    assert first.json()["id"] != second.json()["id"]


def test_moderations_never_run_the_generation_backend(
    moderated: TestClient, backend: FakeBackend
) -> None:
    moderated.post(MODERATIONS, json={"input": "hurt myself"})
    assert backend.requests == []


def test_without_a_filter_nothing_is_flagged(client: TestClient) -> None:
    response = client.post(MODERATIONS, json={"input": ["anything"]}).json()
    assert response["results"] == [{"flagged": False, "categories": {}, "category_scores": {}}]


@pytest.mark.parametrize(
    "body", [{}, {"input": []}, {"input": 3}, {"input": [1, 2]}, {"input": "x", "model": 1}]
)
def test_invalid_bodies_are_400(moderated: TestClient, body: dict[str, object]) -> None:
    response = moderated.post(MODERATIONS, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_needs_a_key(moderated: TestClient) -> None:
    response = moderated.post(MODERATIONS, json={"input": "x"}, headers={"Authorization": ""})
    assert response.status_code == 401


def test_backed_by_the_moderation_model(backend: FakeBackend) -> None:
    settings = Settings(
        moderation=ModerationSettings(
            triton_model="moderation", model_categories=["hate", "sexual"]
        )
    )
    app = create_app(settings, backend_factory=lambda _: backend)
    with TestClient(app, headers=AUTH) as client:
        # The configured model's gRPC client is replaced by a fake of its Classifier.
        assert client.portal is not None
        client.portal.call(app.state.services.content_filter.close)
        classifier = FakeClassifier([0.75, 0.1])
        app.state.services.content_filter = ModelFilter(
            classifier, "moderation", ["hate", "sexual"], 0.5
        )
        response = client.post(MODERATIONS, json={"input": ["one", "two"]}).json()
        named = client.post(MODERATIONS, json={"input": "one", "model": "moderation"})
        other = client.post(MODERATIONS, json={"input": "one", "model": "pattern-filter"})
    assert named.status_code == 200 and named.json()["model"] == "moderation"
    assert other.status_code == 404
    assert response["model"] == "moderation"
    assert response["results"][0]["categories"] == {"hate": True, "sexual": False}
    assert response["results"][1]["category_scores"] == pytest.approx({"hate": 0.75, "sexual": 0.1})
    assert [texts for _, texts in classifier.calls] == [["one"], ["two"], ["one"]]


def test_the_openai_sdk_reads_the_response(moderated: TestClient) -> None:
    sdk = openai.OpenAI(
        api_key=TEST_KEY, base_url=f"{moderated.base_url}/v1", http_client=moderated
    )
    result = sdk.moderations.create(input=["fine", "hurt myself"], model="pattern-filter")
    assert [r.flagged for r in result.results] == [False, True]
    assert result.results[1].category_scores.model_dump()["self-harm"] == 1.0
