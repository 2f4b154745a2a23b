"""scripts/build_engines.py's llmapi path for real, on CPU: the model directory, the tokenizer,
the repository with its model.yaml, and the checks of quantized checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from launcher.config_check import check_repository
from launcher.engine_spec import load_spec
from launcher.llmapi_options import check_options_file, llmapi_options
from tests.scripts.test_build_engines import ROOT, SPECS, build_engines

__all__ = ["build_engines"]
TINY_CHAT = ROOT / "models" / "tiny-chat"


def _spec(tmp_path: Path, checkpoint: Path, extra: str = "") -> Path:
    path = tmp_path / "m.toml"
    path.write_text(f'name = "m"\ncheckpoint = "{checkpoint}"\n{extra}')
    return path


def test_an_unquantized_build_prepares_a_servable_directory(
    build_engines: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    argv = [str(SPECS / "tiny-chat.toml"), "--output", str(tmp_path), "--deploy-root", "/models"]
    caplog.set_level("INFO")
    assert build_engines.main(argv) == 0
    root = tmp_path / "tiny-chat"
    copied = {p.name for p in (root / "model").iterdir()}
    assert copied == {p.name for p in TINY_CHAT.iterdir() if p.is_file()}
    assert (root / "model" / "model.safetensors").read_bytes() == (
        TINY_CHAT / "model.safetensors"
    ).read_bytes()
    assert not any(p.suffix == ".safetensors" for p in (root / "tokenizer").iterdir())
    configs = check_repository([root / "model_repository"])
    assert configs["tensorrt_llm"].parameters["model_dir"].string_value == "/models/tiny-chat/model"
    options = check_options_file(root / "model_repository" / "tensorrt_llm" / "1" / "model.yaml")
    assert options == llmapi_options(load_spec(SPECS / "tiny-chat.toml"))
    assert json.loads((root / "served_models.json").read_text())[0]["id"] == "tiny-chat"
    for label in ("[1/3] copy checkpoint", "[2/3] copying tokenizer", "[3/3] writing model"):
        assert label in caplog.text
    # A rerun finds the copy up to date.
    caplog.clear()
    assert build_engines.main(argv) == 0
    assert "up to date" in caplog.text


def test_a_quantized_checkpoint_must_be_declared_prequantized(
    build_engines: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint = tmp_path / "fp8"
    shutil.copytree(TINY_CHAT, checkpoint)
    (checkpoint / "hf_quant_config.json").write_text(
        json.dumps({"quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": None}})
    )
    out = tmp_path / "out"
    assert build_engines.main([str(_spec(tmp_path, checkpoint)), "--output", str(out)]) == 2
    assert "is already quantized (FP8)" in caplog.text
    declared = _spec(tmp_path, checkpoint, 'quantization = "fp8"\nprequantized = true\n')
    assert build_engines.main([str(declared), "--output", str(out)]) == 0
    assert (out / "m" / "model" / "hf_quant_config.json").is_file()


def test_prequantized_needs_a_quantized_checkpoint(
    build_engines: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = _spec(tmp_path, TINY_CHAT, 'quantization = "fp8"\nprequantized = true\n')
    assert build_engines.main([str(spec), "--output", str(tmp_path / "out")]) == 2
    assert "declares no quantization" in caplog.text
    assert not (tmp_path / "out" / "m" / "model").exists()


def test_quantizing_needs_modelopts_example(
    build_engines: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = _spec(tmp_path, TINY_CHAT, 'quantization = "fp8"\n')
    argv = [str(spec), "--output", str(tmp_path / "out"), "--modelopt-examples", str(tmp_path)]
    assert build_engines.main(argv) == 2
    assert "hf_ptq.py not found" in caplog.text
    assert not (tmp_path / "out" / "m" / "model_repository").exists()
