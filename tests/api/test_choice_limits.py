"""A request may ask for no more completions (prompts x n) than it can run at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.settings import ResilienceSettings, Settings
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH


def _client(backend: FakeBackend, **resilience: int) -> TestClient:
    settings = Settings(resilience=ResilienceSettings(**resilience))
    return TestClient(create_app(settings, backend_factory=lambda _: backend), headers=AUTH)


@pytest.fixture
def limited(backend: FakeBackend) -> Iterator[TestClient]:
    with _client(backend, max_choices_per_request=4, max_in_flight=64) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/completions", {"prompt": ["a", "b", "c"], "n": 2}, "prompt"),
        ("/v1/completions", {"prompt": ["a"] * 5}, "prompt"),
        ("/v1/completions", {"prompt": "a", "n": 5}, "n"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a"}], "n": 5}, "n"),
    ],
)
def test_too_many_choices_is_a_400_before_any_backend_call(
    limited: TestClient, backend: FakeBackend, path: str, body: dict[str, object], param: str
) -> None:
    response = limited.post(path, json={"model": "tiny-chat", **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, "too_many_choices")
    assert backend.requests == []


def test_as_many_as_allowed_run(limited: TestClient, backend: FakeBackend) -> None:
    response = limited.post(
        "/v1/completions", json={"model": "tiny-chat", "prompt": ["a", "b"], "n": 2}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["choices"]) == 4
    assert len(backend.requests) == 4


def test_the_limit_never_exceeds_the_model_slots(backend: FakeBackend) -> None:
    """Choices past max_in_flight would wait for slots their siblings hold: a deadlock."""
    with _client(backend, max_choices_per_request=16, max_in_flight=3) as client:
        response = client.post(
            "/v1/completions", json={"model": "tiny-chat", "prompt": "a", "n": 4}
        )
    assert response.status_code == 400
    assert "at most 3" in response.json()["error"]["message"]
