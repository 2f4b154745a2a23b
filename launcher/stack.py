"""``python -m launcher.stack``: Triton and the API together, for one-command start-up.

Triton starts first and must be ready (every model loaded) before the API listens; stopping
the API (Ctrl-C, SIGTERM) stops Triton too. In production they run as separate deployments.
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from api.app import create_app
from api.settings import Settings, TritonSettings
from launcher.__main__ import build_server
from launcher.server import TritonStartError
from launcher.settings import LauncherSettings

logger = logging.getLogger("launcher.stack")


def run(launcher_settings: LauncherSettings, api_settings: Settings) -> int:
    """Start Triton, wait for it, serve the API until it stops, then stop Triton."""
    with build_server(launcher_settings) as server:
        try:
            server.wait_ready(launcher_settings.ready_timeout_s)
        except TritonStartError as exc:
            logger.error("%s", exc)
            return 1
        logger.info("Triton ready (gRPC %s); starting the API", server.grpc_url)
        uvicorn.run(
            create_app(api_settings),
            host=api_settings.host,
            port=api_settings.port,
            log_level=api_settings.log_level,
        )
    return 0


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    launcher_settings = LauncherSettings()
    api_settings = Settings()
    # The API talks to the Triton this command starts, whatever API_TRITON__URL says.
    triton = TritonSettings(
        **{**api_settings.triton.model_dump(), "url": f"127.0.0.1:{launcher_settings.grpc_port}"}
    )
    return run(launcher_settings, api_settings.model_copy(update={"triton": triton}))


if __name__ == "__main__":
    sys.exit(main())
