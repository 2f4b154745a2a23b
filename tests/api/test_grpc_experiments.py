"""The grpc-core tuning the API sets for its own process (api/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from api import GRPC_EXPERIMENTS

SHOW = "import api, grpc, os; print(os.environ['GRPC_EXPERIMENTS'])"


def experiments_seen(preset: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    if preset is not None:
        env["GRPC_EXPERIMENTS"] = preset
    shown = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.strip()


def test_the_api_sets_its_grpc_client_tuning_when_nobody_did() -> None:
    assert experiments_seen(None) == GRPC_EXPERIMENTS


def test_an_operators_choice_is_kept() -> None:
    assert experiments_seen("-some_experiment") == "-some_experiment"
