"""The API key every route test sends (stored as the bootstrap key of each test app)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from api.gateway import Gateway, open_gateway
from api.settings import Settings

TEST_KEY = "sk-test-0123456789abcdefghijklmnopqrstuvwxyzABCD"
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def gateway_settings(folder: Path, **overrides: Any) -> Settings:
    """Settings with a private SQLite file and journal, and ``TEST_KEY`` as the admin key."""
    values: dict[str, Any] = {
        "database": {"url": f"sqlite+aiosqlite:///{folder / 'api.db'}"},
        "usage": {"journal_dir": folder / "usage-journal"},
        "auth": {"bootstrap_key": TEST_KEY},
        **overrides,
    }
    return Settings(**values)


def install_gateway(app: Starlette, settings: Settings) -> None:
    """For an app driven without its lifespan (schemathesis): open its gateway beforehand.

    The engine is disposed so that connections are made again on the loop that serves.
    """

    async def open_once() -> Gateway:
        gateway = await open_gateway(settings)
        await gateway.recorder.close()  # records are then journaled, file by file
        await gateway.engine.dispose()
        return gateway

    app.state.gateway = asyncio.run(open_once())
