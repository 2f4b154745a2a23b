"""Model specs for build_engines.py: loading, defaults and the combinations refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from launcher.engine_spec import Backend, EngineSpec, Quantization, load_spec

SPECS = Path(__file__).resolve().parents[2] / "engines" / "specs"


def _spec(**values: object) -> EngineSpec:
    return EngineSpec.model_validate({"name": "m", "family": "llama", "checkpoint": "/c", **values})


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_specs_load(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem
    assert spec.limits.max_seq_len == spec.limits.max_input_len + spec.limits.max_output_len


def test_the_example_specs_cover_the_quantization_paths() -> None:
    formats = {load_spec(p).quantization for p in SPECS.glob("*.toml")}
    assert {Quantization.FP8, Quantization.INT4_AWQ, Quantization.NONE} <= formats


def test_relative_checkpoints_are_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    path = tmp_path / "specs" / "m.toml"
    path.write_text('name = "m"\nfamily = "llama"\ncheckpoint = "../hf/m"\n')
    assert load_spec(path).checkpoint == tmp_path / "hf" / "m"
    assert load_spec(path).tokenizer_source == tmp_path / "hf" / "m"


def test_yaml_specs_load(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nfamily: qwen\ncheckpoint: /hf/m\nquantization: int4-awq\n")
    assert load_spec(path).quantization is Quantization.INT4_AWQ


def test_other_file_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match=r"a spec is a \.toml"):
        load_spec(path)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kv_cache": {"paged": False}}, "in-flight batching needs a paged KV cache"),
        ({"kv_cache": {"dtype": "fp8"}}, "an fp8 KV cache needs a calibrated quantization"),
        (
            {"limits": {"max_input_len": 9000}, "kv_cache": {"enable_chunked_context": False}},
            "needs enable_chunked_context",
        ),
        ({"kv_cache": {"tokens_per_block": 48}}, "power of two"),
        ({"name": "Qwen_7B"}, "should match pattern"),
        ({"quantization": "int3"}, "quantization"),
        ({"limits": {"max_batch": 8}}, "Extra inputs are not permitted"),
    ],
)
def test_inconsistent_specs_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _spec(**values)


def test_world_size() -> None:
    assert _spec(tensor_parallel=2, pipeline_parallel=2).world_size == 4


def test_new_specs_default_to_the_llm_api_and_need_no_family() -> None:
    spec = EngineSpec.model_validate({"name": "m", "checkpoint": "/c"})
    assert spec.backend is Backend.LLMAPI
    assert spec.family is None


def test_the_reference_specs_use_the_llm_api_and_one_legacy_example_remains() -> None:
    backends = {p.stem: load_spec(p).backend for p in SPECS.glob("*.toml")}
    assert backends["qwen2.5-7b-instruct"] is Backend.LLMAPI
    assert backends["text2sql-qwen2.5-coder-7b"] is Backend.LLMAPI
    assert Backend.TRTLLM in backends.values()


def test_the_backend_can_be_overridden_when_loading() -> None:
    legacy = load_spec(SPECS / "qwen2.5-7b-instruct.toml", Backend.TRTLLM)
    assert legacy.backend is Backend.TRTLLM
    assert load_spec(SPECS / "llama-3.1-8b-instruct.toml", Backend.LLMAPI).backend is Backend.LLMAPI


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"backend": "tensorrt"}, "backend"),
        ({"quantization": "int8_sq"}, r'int8_sq is a TensorRT-engine format .*"trtllm"'),
        ({"quantization": "int4_wo"}, "int4_wo is a TensorRT-engine format"),
        ({"quantization": "int8_wo", "kv_cache": {"dtype": "int8"}}, "TensorRT-engine"),
        ({"kv_cache": {"dtype": "int8"}}, "an int8 KV cache is a TensorRT-engine feature"),
        ({"serving": {"batching_strategy": "V1"}}, "always batches in flight"),
        ({"prequantized": True}, "prequantized needs the checkpoint's quantization"),
        ({"llmapi": {"cuda_graph": True}}, "Extra inputs are not permitted"),
        ({"backend": "trtllm", "family": None}, "family is required"),
        ({"backend": "trtllm", "quantization": "fp8", "prequantized": True}, "llmapi feature"),
        ({"backend": "trtllm", "llmapi": {"cuda_graphs": False}}, r"\[llmapi\] section"),
    ],
)
def test_combinations_a_backend_cannot_serve_are_refused(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _spec(**values)
