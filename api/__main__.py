"""``python -m api``: serve the API with uvicorn (settings from the environment / TOML)."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from api.app import create_app
from api.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    parser.add_argument("command", choices=["serve"], nargs="?", default="serve")
    parser.add_argument("--config", help="TOML settings file (same as API_CONFIG_FILE)")
    args = parser.parse_args(argv)
    settings = Settings(config_file=args.config) if args.config else Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)


if __name__ == "__main__":
    main()
