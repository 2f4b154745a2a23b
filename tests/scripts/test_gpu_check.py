"""scripts/gpu_check.sh on a machine without a GPU, and the spec it builds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from launcher.engine_spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def test_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this host has a GPU")
def test_without_a_gpu_it_fails_fast_and_says_why(tmp_path: Path) -> None:
    env = {**os.environ, "GPU_CHECK_OUT": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "this check needs an NVIDIA GPU" in done.stderr


def test_the_e2e_spec_fits_the_tiny_model() -> None:
    """The engine's window must equal the checkpoint's: preprocessing rejects by the latter."""
    spec = load_spec(ROOT / "engines" / "specs" / "tiny-chat.toml")
    config = json.loads((spec.checkpoint / "config.json").read_text())
    assert spec.checkpoint == ROOT / "models" / "tiny-chat"
    assert spec.limits.max_seq_len == config["max_position_embeddings"]
    assert spec.serving.embedding, "the e2e tests use the embedding model too"
