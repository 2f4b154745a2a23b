"""`python -m launcher`: render the repository, start Triton (again, if it dies), serve until
SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from launcher.cli import parse_command_line
from launcher.probe import models_answer
from launcher.repository import render_repository
from launcher.server import ServerOptions, TritonInstallation, TritonServer
from launcher.settings import PROJECT_ROOT, LauncherSettings
from launcher.supervisor import ModelCheck, RestartPolicy, Supervisor

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
    """Run Triton until a signal arrives, restarting it when it dies; returns the exit code."""
    stop = _stop_on_signals()

    def announce(server: TritonServer) -> None:
        logger.info(
            "Triton serving %s: gRPC %d, HTTP %d, metrics %d",
            settings.llm_backend.value,
            settings.grpc_port,
            settings.http_port,
            settings.metrics_port,
        )

    supervisor = Supervisor(
        lambda: build_server(settings),
        settings.ready_timeout_s,
        restart_policy(settings),
        stop,
        on_ready=announce,
        model_check=model_check(settings),
    )
    return supervisor.run()


def model_check(settings: LauncherSettings) -> ModelCheck | None:
    """The supervisor's check that the models answer, unless turned off."""
    if not settings.model_check_interval_s:
        return None
    return ModelCheck(
        lambda server: models_answer(server, settings.model_check_timeout_s),
        every_s=settings.model_check_interval_s,
        failures=settings.model_check_failures,
    )


def restart_policy(settings: LauncherSettings) -> RestartPolicy:
    return RestartPolicy(
        max_restarts=settings.max_restarts,
        backoff_s=settings.restart_backoff_s,
        max_backoff_s=settings.restart_max_backoff_s,
    )


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
