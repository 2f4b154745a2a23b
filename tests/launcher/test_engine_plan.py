"""The TensorRT-LLM commands and template values a spec turns into."""

from __future__ import annotations

from pathlib import Path

from api.settings import ServedModel
from launcher.engine_plan import (
    Layout,
    Tools,
    build_step,
    convert_step,
    repository_models,
    served_models,
    template_values,
)
from launcher.engine_spec import EngineSpec

TOOLS = Tools(python="python3", examples_dir=Path("/trtllm/examples"))


def _spec(**values: object) -> EngineSpec:
    # The legacy engine plan (llmapi's is tested in test_llmapi_options.py).
    base = {"name": "m", "backend": "trtllm", "family": "qwen", "checkpoint": "/hf/m"}
    return EngineSpec.model_validate({**base, **values})


def _layout(spec: EngineSpec) -> Layout:
    return Layout.for_spec(spec, Path("/out"), Path("/models"))


def _option(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_layout_builds_locally_and_serves_from_the_deploy_root() -> None:
    layout = _layout(_spec())
    assert (layout.engine, layout.deployed) == (Path("/out/m/engine"), Path("/models/m"))
    assert Layout.for_spec(_spec(), Path("/out"), None).deployed == Path("/out/m")


def test_unquantized_models_use_the_family_converter() -> None:
    step = convert_step(_spec(tensor_parallel=2), _layout(_spec()), TOOLS)
    assert step.argv[:2] == ("python3", "/trtllm/examples/models/core/qwen/convert_checkpoint.py")
    assert _option(step.argv, "--tp_size") == "2"
    assert _option(step.argv, "--output_dir") == "/out/m/checkpoint"
    assert "--qformat" not in step.argv


def test_weight_only_int8_with_an_int8_kv_cache() -> None:
    spec = _spec(quantization="int8_wo", kv_cache={"dtype": "int8"})
    argv = convert_step(spec, _layout(spec), TOOLS).argv
    assert _option(argv, "--weight_only_precision") == "int8"
    assert {"--use_weight_only", "--int8_kv_cache"} <= set(argv)


def test_fp8_goes_through_quantize_with_an_fp8_kv_cache() -> None:
    spec = _spec(quantization="fp8", kv_cache={"dtype": "fp8"}, calibration={"size": 64})
    argv = convert_step(spec, _layout(spec), TOOLS).argv
    assert argv[1] == "/trtllm/examples/quantization/quantize.py"
    assert [_option(argv, f) for f in ("--qformat", "--kv_cache_dtype", "--calib_size")] == [
        "fp8",
        "fp8",
        "64",
    ]
    assert "--use_fp8_context_fmha" in build_step(spec, _layout(spec), TOOLS).argv


def test_awq_passes_its_block_size() -> None:
    spec = _spec(quantization="int4-awq", dtype="float16")
    argv = convert_step(spec, _layout(spec), TOOLS).argv
    assert (_option(argv, "--qformat"), _option(argv, "--awq_block_size")) == ("int4_awq", "128")


def test_build_uses_the_limits_and_a_paged_cache() -> None:
    spec = _spec(
        limits={"max_batch_size": 16, "max_input_len": 1000, "max_output_len": 24},
        kv_cache={"tokens_per_block": 32},
        tensor_parallel=2,
    )
    argv = build_step(spec, _layout(spec), TOOLS).argv
    assert argv[0] == "trtllm-build"
    expected = {
        "--checkpoint_dir": "/out/m/checkpoint",
        "--output_dir": "/out/m/engine",
        "--max_batch_size": "16",
        "--max_input_len": "1000",
        "--max_seq_len": "1024",
        "--kv_cache_type": "paged",
        "--tokens_per_block": "32",
        "--use_paged_context_fmha": "enable",
        "--workers": "2",
    }
    assert {flag: _option(argv, flag) for flag in expected} == expected


def test_template_values_point_at_the_deployed_paths() -> None:
    spec = _spec(
        limits={"max_batch_size": 16, "max_input_len": 1000, "max_output_len": 24},
        kv_cache={"free_gpu_mem_fraction": 0.8, "enable_reuse": False},
        serving={"preprocessing_instances": 3, "batch_scheduler_policy": "max_utilization"},
    )
    values = template_values(spec, _layout(spec))
    assert {k: values[k] for k in ("engine_dir", "tokenizer_dir")} == {
        "engine_dir": "/models/m/engine",
        "tokenizer_dir": "/models/m/tokenizer",
    }
    assert values["triton_max_batch_size"] == "16"
    assert values["max_context_tokens"] == "1024"
    assert values["preprocessing_instance_count"] == "3"
    assert values["kv_cache_free_gpu_mem_fraction"] == "0.8"
    assert values["enable_kv_cache_reuse"] == "false"
    assert values["batch_scheduler_policy"] == "max_utilization"
    assert values["decoupled_mode"] == "true"


def test_models_and_served_entries_follow_the_embedding_switch() -> None:
    with_embedding = _spec(serving={"embedding": True})
    names = [p.name for p in repository_models(with_embedding, Path("/t"))]
    assert names == ["ensemble", "preprocessing", "tensorrt_llm", "embedding", "postprocessing"]
    assert [m["kind"] for m in served_models(with_embedding)] == ["chat", "embedding"]
    assert [p.name for p in repository_models(_spec(), Path("/t"))][-1] == "postprocessing"
    assert served_models(_spec())[0]["context_length"] == 4096 + 1024


def test_the_api_admits_what_the_engine_batches() -> None:
    spec = _spec()
    chat = ServedModel.model_validate(served_models(spec)[0])
    assert chat.engine_slots == spec.limits.max_batch_size
