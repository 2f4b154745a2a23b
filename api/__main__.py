"""``python -m api``: serve the API with uvicorn (settings from the environment / TOML)."""

from __future__ import annotations

import argparse
import sys

from api import cli
from api.app import create_app
from api.logs import configure_logging
from api.server import serve
from api.settings import Settings


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in cli.COMMANDS:
        sys.exit(cli.main(argv))
    parser = argparse.ArgumentParser(
        prog="python -m api",
        description="Serve the API with uvicorn (settings from API_* variables or a TOML file).",
        epilog=f"Admin commands: {', '.join(cli.COMMANDS)} (python -m api COMMAND --help).",
    )
    parser.add_argument("command", choices=["serve"], nargs="?", default="serve")
    parser.add_argument("--config", help="TOML settings file (same as API_CONFIG_FILE)")
    args = parser.parse_args(argv)
    settings = Settings(config_file=args.config) if args.config else Settings()
    configure_logging(settings.log_level, settings.log_format)
    # Graceful: on SIGTERM, drain running requests for up to resilience.drain_timeout_s.
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
