"""The GPU root's tensorrt_llm config declares what the legacy C++ TensorRT-LLM backend needs.

The contract (launcher/config_check.py TENSORRTLLM_BACKEND) is read from the backend's sources:
tensorrtllm_backend v0.19.0, inflight_batcher_llm/src/model_instance_state.cc (parameters read
without a default) and utils.h (the tensors every request and response carries). A config that
lacks one loads on no GPU host; this finds it on any machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from launcher.config_check import (
    TENSORRTLLM_BACKEND,
    ConfigCheckError,
    backend_problems,
    check_repository,
    load_repository,
)
from launcher.repository import render_repository
from launcher.settings import PROJECT_ROOT, explicit_settings


def _render(tmp_path: Path, **settings: Any) -> Path:
    values = explicit_settings(llm_backend="trtllm", **settings).template_values()
    roots = render_repository(
        PROJECT_ROOT / "model_repository", tmp_path / "rendered", ["common", "llm_trtllm"], values
    )
    return roots[1] / "tensorrt_llm"


def _parameters(model: Path) -> dict[str, str]:
    config = load_repository([model.parent])["tensorrt_llm"]
    return {key: value.string_value for key, value in config.parameters.items()}


def test_the_gpu_root_declares_every_required_parameter_and_tensor(tmp_path: Path) -> None:
    model = _render(tmp_path)
    configs = check_repository([model.parent.parent / "common", model.parent])
    config = configs["tensorrt_llm"]
    assert config.backend == "tensorrtllm"
    assert backend_problems(config) == []
    declared = set(config.parameters)
    assert set(TENSORRTLLM_BACKEND.parameters) <= declared
    assert {t.name for t in config.input} >= set(TENSORRTLLM_BACKEND.inputs)
    assert {t.name for t in config.output} >= set(TENSORRTLLM_BACKEND.outputs)


def test_guided_decoding_off_renders_empty_values(tmp_path: Path) -> None:
    parameters = _parameters(_render(tmp_path, tokenizer_dir="/models/m/tokenizer"))
    # The backend reads an empty backend or path as "off" (not as a bad value).
    assert parameters["guided_decoding_backend"] == ""
    assert parameters["xgrammar_tokenizer_info_path"] == ""
    assert parameters["tokenizer_dir"] == "/models/m/tokenizer"


def test_xgrammar_renders_the_tokenizer_info_path(tmp_path: Path) -> None:
    info = "/models/m/tokenizer/xgrammar_tokenizer_info.json"
    parameters = _parameters(
        _render(tmp_path, guided_decoding_backend="xgrammar", xgrammar_tokenizer_info_path=info)
    )
    assert parameters["guided_decoding_backend"] == "xgrammar"
    assert parameters["xgrammar_tokenizer_info_path"] == info


def test_xgrammar_needs_a_tokenizer_info_path() -> None:
    with pytest.raises(ValueError, match="xgrammar_tokenizer_info_path"):
        explicit_settings(llm_backend="trtllm", guided_decoding_backend="xgrammar")


@pytest.mark.parametrize("parameter", TENSORRTLLM_BACKEND.parameters)
def test_each_missing_parameter_is_named(tmp_path: Path, parameter: str) -> None:
    model = _render(tmp_path)
    path = model / "config.pbtxt"
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if f'key: "{parameter}"' not in line]
    assert len(kept) == len(lines) - 1
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    with pytest.raises(ConfigCheckError, match=rf"needs parameter\(s\) \['{parameter}'\]"):
        check_repository([model.parent])


@pytest.mark.parametrize(
    ("tensor", "section"),
    [*((t, "input") for t in TENSORRTLLM_BACKEND.inputs), ("output_ids", "output")],
)
def test_each_missing_tensor_is_named(tmp_path: Path, tensor: str, section: str) -> None:
    model = _render(tmp_path)
    path = model / "config.pbtxt"
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if f'name: "{tensor}"' not in line]
    assert len(kept) == len(lines) - 1
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    with pytest.raises(ConfigCheckError, match=f"needs {section} {tensor}"):
        check_repository([model.parent])


def test_a_wrong_tensor_type_is_named(tmp_path: Path) -> None:
    model = _render(tmp_path)
    path = model / "config.pbtxt"
    text = path.read_text(encoding="utf-8")
    broken = text.replace(
        '{ name: "input_lengths", data_type: TYPE_INT32',
        '{ name: "input_lengths", data_type: TYPE_INT64',
    )
    assert broken != text
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigCheckError, match="input input_lengths is TYPE_INT64"):
        check_repository([model.parent])
