"""`python -m launcher`: render the repository, start Triton, serve until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from launcher.cli import parse_command_line
from launcher.repository import render_repository
from launcher.server import ServerOptions, TritonInstallation, TritonServer, TritonStartError
from launcher.settings import PROJECT_ROOT, LauncherSettings

logger = logging.getLogger("launcher")


def build_server(settings: LauncherSettings) -> TritonServer:
    """Render the two repository roots and configure (not start) the server."""
    roots = render_repository(
        settings.repository_dir, settings.rendered_dir, settings.roots, settings.template_values()
    )
    options = ServerOptions(
        repositories=roots,
        grpc_port=settings.grpc_port,
        http_port=settings.http_port,
        metrics_port=settings.metrics_port,
        log_verbose=settings.log_verbose,
        exit_timeout_s=settings.exit_timeout_s,
        model_control_mode=settings.model_control_mode,
        working_dir=PROJECT_ROOT,
    )
    installation = (
        None if settings.server_dir is None else TritonInstallation.at(settings.server_dir)
    )
    return TritonServer(
        options, settings.cache_dir, base_env=dict(os.environ), installation=installation
    )


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return stop


def serve(settings: LauncherSettings) -> int:
    """Run Triton until a signal arrives or it exits; returns the process exit code."""
    stop = _stop_on_signals()
    server = build_server(settings)
    with server:
        try:
            server.wait_ready(settings.ready_timeout_s, cancel=stop)
        except TritonStartError as exc:
            logger.error("%s", exc)
            return 1
        logger.info(
            "Triton serving %s: gRPC %d, HTTP %d, metrics %d",
            settings.llm_backend.value,
            settings.grpc_port,
            settings.http_port,
            settings.metrics_port,
        )
        while not stop.wait(timeout=1.0):
            code = server.poll()
            if code is not None:
                logger.error("tritonserver exited on its own with code %s", code)
                return code or 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: settings from TRITON_* environment variables."""
    parse_command_line(
        "python -m launcher",
        "Render the model repository and start Triton; serve until SIGINT/SIGTERM.",
        argv,
    )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return serve(LauncherSettings())


if __name__ == "__main__":
    sys.exit(main())
