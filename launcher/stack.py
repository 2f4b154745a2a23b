"""``python -m launcher.stack``: Triton and the API together, for one-command start-up.

Triton starts first and must be ready (every model loaded) before the API listens; stopping
the API (Ctrl-C, SIGTERM) stops Triton too. In production they run as separate deployments.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence

from api.app import create_app
from api.auth.bootstrap import dev_key
from api.server import serve
from api.settings import PROJECT_ROOT, Settings, TritonSettings
from launcher.__main__ import build_server, model_check, restart_policy
from launcher.cli import parse_command_line
from launcher.settings import LauncherSettings
from launcher.supervisor import Supervisor

logger = logging.getLogger("launcher.stack")


def run(launcher_settings: LauncherSettings, api_settings: Settings) -> int:
    """Start Triton, wait for it, serve the API until it stops, then stop Triton.

    Triton runs under a supervisor thread: if it dies while the API serves, it is started
    again (and its stubs reaped) while the API answers 503 and then recovers by itself.
    """
    stop, ready = threading.Event(), threading.Event()
    supervisor = Supervisor(
        lambda: build_server(launcher_settings),
        launcher_settings.ready_timeout_s,
        restart_policy(launcher_settings),
        stop,
        on_ready=lambda server: ready.set(),
        model_check=model_check(launcher_settings),
    )
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(supervisor.run()), name="triton-supervisor"
    )
    thread.start()
    try:
        while not ready.wait(timeout=0.5):
            if not thread.is_alive():
                return result[0] if result else 1  # Triton never came up (logged)
        logger.info("Triton ready (gRPC port %d); starting the API", launcher_settings.grpc_port)
        # Drains the API's running requests before Triton is stopped.
        serve(create_app(api_settings), api_settings)
    finally:
        stop.set()
        thread.join()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parse_command_line(
        "python -m launcher.stack",
        "Start Triton, wait until every model is ready, then serve the API in front of it.",
        argv,
        "The API reads API_* variables (or API_CONFIG_FILE), as `python -m api serve` does;\n"
        "it talks to the Triton started here whatever API_TRITON__URL says.",
    )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    launcher_settings = LauncherSettings()
    api_settings = Settings()
    # The API talks to the Triton this command starts, whatever API_TRITON__URL says.
    triton = TritonSettings(
        **{**api_settings.triton.model_dump(), "url": f"127.0.0.1:{launcher_settings.grpc_port}"}
    )
    api_settings = api_settings.model_copy(update={"triton": triton})
    return run(launcher_settings, with_dev_key(api_settings))


def with_dev_key(settings: Settings) -> Settings:
    """Without ``API_AUTH__BOOTSTRAP_KEY``, an admin key kept in ``.cache/dev-api-key``.

    Created once (mode 0600) and reused; its path is logged, never the key itself.
    """
    if settings.auth.bootstrap_key is not None:
        return settings
    path = PROJECT_ROOT / ".cache" / "dev-api-key"
    auth = settings.auth.model_copy(update={"bootstrap_key": dev_key(path)})
    logger.info("API key for this machine in %s (admin + inference)", path)
    return settings.model_copy(update={"auth": auth})


if __name__ == "__main__":
    sys.exit(main())
