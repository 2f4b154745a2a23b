"""launcher/llmapi_options.py: a spec's fields as LLM() arguments, and unknown names refused.

The argument names are TensorRT-LLM's (tensorrt_llm/llmapi/llm_args.py at main
0004396720054fd8e205cbf616f21f0b57c6b412: BaseLlmArgs, TorchLlmArgs, KvCacheConfig,
SchedulerConfig, BaseCudaGraphConfig).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from launcher.engine_spec import EngineSpec, load_spec
from launcher.llmapi_options import (
    OptionsError,
    check_options,
    check_options_file,
    llmapi_options,
    render_options,
    write_options,
)

SPECS = Path(__file__).resolve().parents[2] / "engines" / "specs"
TEMPLATE = Path(__file__).resolve().parents[2] / "model_repository" / "llm_llmapi" / "tensorrt_llm"


def _spec(**values: object) -> EngineSpec:
    return EngineSpec.model_validate({"name": "m", "checkpoint": "/hf/m", **values})


def test_every_spec_field_reaches_its_llm_argument() -> None:
    spec = _spec(
        dtype="float16",
        quantization="fp8",
        tensor_parallel=2,
        pipeline_parallel=2,
        limits={
            "max_batch_size": 48,
            "max_input_len": 3000,
            "max_output_len": 1096,
            "max_num_tokens": 2048,
        },
        kv_cache={
            "dtype": "fp8",
            "free_gpu_mem_fraction": 0.7,
            "enable_reuse": False,
            "tokens_per_block": 16,
            "enable_chunked_context": True,
        },
        serving={"batch_scheduler_policy": "max_utilization"},
    )
    assert llmapi_options(spec) == {
        "tensor_parallel_size": 2,
        "pipeline_parallel_size": 2,
        "dtype": "float16",
        "max_batch_size": 48,
        "max_num_tokens": 2048,
        "max_input_len": 3000,
        "max_seq_len": 4096,
        "max_beam_width": 1,
        "kv_cache_config": {
            "free_gpu_memory_fraction": 0.7,
            "enable_block_reuse": False,
            "tokens_per_block": 16,
            "dtype": "fp8",
        },
        "enable_chunked_prefill": True,
        "scheduler_config": {"capacity_scheduler_policy": "MAX_UTILIZATION"},
        "cuda_graph_config": {"max_batch_size": 48, "enable_padding": True},
        "guided_decoding_backend": "xgrammar",
    }


def test_switches_turn_off_cuda_graphs_and_guided_decoding() -> None:
    options = llmapi_options(
        _spec(llmapi={"cuda_graphs": False}, serving={"guided_decoding": False})
    )
    assert options["cuda_graph_config"] is None
    assert "guided_decoding_backend" not in options
    assert options["kv_cache_config"]["dtype"] == "auto"
    assert options["scheduler_config"] == {"capacity_scheduler_policy": "GUARANTEED_NO_EVICT"}


def test_extra_arguments_are_added_and_may_override() -> None:
    options = llmapi_options(
        _spec(llmapi={"extra": {"disable_overlap_scheduler": True, "max_num_tokens": 4096}})
    )
    assert options["disable_overlap_scheduler"] is True
    assert options["max_num_tokens"] == 4096


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"max_batch": 8}, "'max_batch' is not an LLM() argument"),
        ({"kv_cache_config": {"free_gpu_mem_fraction": 0.5}}, "'free_gpu_mem_fraction' is not"),
        ({"scheduler_config": "MAX_UTILIZATION"}, "scheduler_config must be a mapping"),
    ],
)
def test_unknown_arguments_are_refused_by_name(extra: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        llmapi_options(_spec(llmapi={"extra": extra}))


def test_the_shipped_template_uses_known_arguments_only() -> None:
    check_options_file(TEMPLATE / "1" / "model.yaml")


def test_the_engine_reads_what_is_written(tmp_path: Path) -> None:
    from inference.llmapi_engine import load_options

    spec = load_spec(SPECS / "qwen2.5-7b-instruct.toml")
    (tmp_path / "tensorrt_llm" / "1").mkdir(parents=True)
    path = write_options(spec, tmp_path / "tensorrt_llm")
    assert render_options(spec).startswith("# LLM() arguments for qwen2.5-7b-instruct")
    assert load_options(path) == llmapi_options(spec) == yaml.safe_load(path.read_text())


def test_triton_config_keys_are_not_llm_arguments_but_allowed() -> None:
    check_options({"triton_config": {"max_batch_size": 8}, "max_batch_size": 8})
