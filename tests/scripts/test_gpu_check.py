"""scripts/gpu_check.sh (and its smoke client scripts/gpu_smoke.py) on a machine without a GPU,
and the spec it builds."""

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
SMOKE = ROOT / "scripts" / "gpu_smoke.py"
# What issue 24 asks a GPU runner to see for each backend (load is the serve step's readiness).
REQUIRED_CHECKS = ("stream", "stop", "seed", "json_schema", "logprobs", "cancellation")


def test_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_finds_nothing() -> None:
    done = subprocess.run(
        ["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout


def test_both_backends_are_checked_by_default_the_llm_api_first() -> None:
    text = SCRIPT.read_text()
    assert "BACKENDS=${GPU_CHECK_BACKENDS:-llmapi trtllm}" in text
    loop = text[text.index("for backend in $BACKENDS") :]
    steps = ["check_backend_available", "prepare", "serve", "smoke"]
    assert [loop.index(f'{step} "$backend"') for step in steps] == sorted(
        loop.index(f'{step} "$backend"') for step in steps
    )
    assert 'build_engines.py "$SPEC" --backend "$1"' in text
    assert "launcher.config_check" in text


def test_every_required_check_is_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import gpu_smoke

    ran: list[str] = []
    for name in (*REQUIRED_CHECKS, "usage"):
        monkeypatch.setattr(gpu_smoke.Smoke, name, lambda self, name=name: ran.append(name) or "")
    assert gpu_smoke.main(["http://127.0.0.1:9/v1", "sk-x", "m", "http://127.0.0.1:9/m"]) == 0
    assert set(REQUIRED_CHECKS) <= set(ran)


def test_a_failed_check_is_named_and_the_rest_still_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import gpu_smoke

    def broken(self: object) -> str:
        raise AssertionError("same seed, different text")

    for name in (*REQUIRED_CHECKS, "usage"):
        monkeypatch.setattr(gpu_smoke.Smoke, name, lambda self: "ok")
    monkeypatch.setattr(gpu_smoke.Smoke, "seed", broken)
    assert gpu_smoke.main(["http://127.0.0.1:9/v1", "sk-x", "m", "http://127.0.0.1:9/m"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["check"] for line in lines if not line["ok"]] == ["seed"]
    assert len(lines) == len(REQUIRED_CHECKS) + 1


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
