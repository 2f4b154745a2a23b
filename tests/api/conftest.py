from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH, TEST_KEY
from tests.api.servers import postgres_url, redis_prefix

__all__ = ["postgres_url", "redis_prefix"]


@pytest.fixture(autouse=True)
def gateway_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every app of a test gets its own SQLite file, usage journal and the test key."""
    monkeypatch.setenv("API_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'api.db'}")
    monkeypatch.setenv("API_USAGE__JOURNAL_DIR", str(tmp_path / "usage-journal"))
    monkeypatch.setenv("API_FILES__LOCAL_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("API_AUTH__BOOTSTRAP_KEY", TEST_KEY)
    monkeypatch.delenv("API_REDIS_URL", raising=False)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def client(backend: FakeBackend) -> Iterator[TestClient]:
    app = create_app(Settings(), backend_factory=lambda _: backend)
    with TestClient(app, headers=AUTH) as test_client:
        yield test_client
