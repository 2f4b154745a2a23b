"""The LLM-API configuration (`model.yaml`) of one spec, and the check of such a file.

Triton's llmapi model (and ours, model_repository/llm_llmapi) passes every key of its
`1/model.yaml` to `tensorrt_llm.LLM(model=<model_dir>, **keys)`. The argument names are those
of NVIDIA/TensorRT-LLM `tensorrt_llm/llmapi/llm_args.py`, read at main
0004396720054fd8e205cbf616f21f0b57c6b412 (`BaseLlmArgs`, `TorchLlmArgs`, `KvCacheConfig`,
`SchedulerConfig`, `BaseCudaGraphConfig`) and checked against the same names in the 1.2 line
that Triton's 26.0x containers ship (`TrtLlmArgs` still beside `TorchLlmArgs` there).

Pure functions: nothing here imports tensorrt_llm, so the mapping is rendered and tested on CPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from launcher.engine_spec import EngineSpec

OPTIONS_NAME = "model.yaml"

# LLM() arguments this project writes or lets a spec's [llmapi].extra set. Upstream has more;
# an unknown name here is far more often a typo than a new argument, and LLM() would refuse it
# (its argument models forbid extra fields) only on the GPU host, minutes into a start.
LLM_ARGUMENTS = frozenset(
    {
        # BaseLlmArgs
        "tokenizer",
        "tokenizer_mode",
        "skip_tokenizer_init",
        "trust_remote_code",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "context_parallel_size",
        "moe_tensor_parallel_size",
        "moe_expert_parallel_size",
        "enable_attention_dp",
        "dtype",
        "revision",
        "kv_cache_config",
        "enable_chunked_prefill",
        "guided_decoding_backend",
        "scheduler_config",
        "speculative_config",
        "max_batch_size",
        "max_input_len",
        "max_seq_len",
        "max_beam_width",
        "max_num_tokens",
        "gather_generation_logits",
        "num_postprocess_workers",
        "reasoning_parser",
        "return_perf_metrics",
        "enable_lora",
        "lora_config",
        "peft_cache_config",
        # TorchLlmArgs
        "cuda_graph_config",
        "disable_overlap_scheduler",
        "attn_backend",
        "sampler_type",
        "moe_config",
        "enable_iter_perf_stats",
        "print_iter_log",
        "torch_compile_config",
        "garbage_collection_gen0_threshold",
        "stream_interval",
    }
)
# Keys of nested argument models that this project sets.
NESTED_ARGUMENTS: Mapping[str, frozenset[str]] = {
    "kv_cache_config": frozenset(
        {
            "enable_block_reuse",
            "max_tokens",
            "free_gpu_memory_fraction",
            "host_cache_size",
            "enable_partial_reuse",
            "dtype",
            "tokens_per_block",
        }
    ),
    "scheduler_config": frozenset({"capacity_scheduler_policy", "context_chunking_policy"}),
    "cuda_graph_config": frozenset({"batch_sizes", "max_batch_size", "enable_padding"}),
}
# Keys of Triton's llmapi model.yaml that are not LLM() arguments.
NOT_LLM_ARGUMENTS = frozenset({"model", "triton_config"})


class OptionsError(ValueError):
    """A model.yaml names an argument the LLM API does not have, or has the wrong shape."""


def llmapi_options(spec: EngineSpec) -> dict[str, Any]:
    """The spec's LLM() arguments, in model.yaml order (the model comes from `model_dir`)."""
    limits, kv, serving = spec.limits, spec.kv_cache, spec.serving
    kv_cache: dict[str, Any] = {
        "free_gpu_memory_fraction": kv.free_gpu_mem_fraction,
        "enable_block_reuse": kv.enable_reuse,
        "tokens_per_block": kv.tokens_per_block,
        # "auto" keeps what a quantized checkpoint declares; fp8 asks for an fp8 cache.
        "dtype": kv.dtype or "auto",
    }
    options: dict[str, Any] = {
        "tensor_parallel_size": spec.tensor_parallel,
        "pipeline_parallel_size": spec.pipeline_parallel,
        "dtype": spec.dtype,
        "max_batch_size": limits.max_batch_size,
        "max_num_tokens": limits.max_num_tokens,
        "max_input_len": limits.max_input_len,
        "max_seq_len": limits.max_seq_len,
        "max_beam_width": limits.max_beam_width,
        "kv_cache_config": kv_cache,
        "enable_chunked_prefill": kv.enable_chunked_context,
        "scheduler_config": {
            "capacity_scheduler_policy": serving.batch_scheduler_policy.upper(),
        },
        "cuda_graph_config": _cuda_graphs(spec),
    }
    if serving.guided_decoding:
        options["guided_decoding_backend"] = "xgrammar"
    options.update(spec.llmapi.extra)
    check_options(options, source=f"spec {spec.name}")
    return options


def _cuda_graphs(spec: EngineSpec) -> dict[str, Any] | None:
    if not spec.llmapi.cuda_graphs:
        return None
    return {
        "max_batch_size": spec.limits.max_batch_size,
        "enable_padding": spec.llmapi.cuda_graph_padding,
    }


def check_options(options: Mapping[str, Any], source: str = "model.yaml") -> None:
    """Raise `OptionsError` naming every key that is not a known LLM() argument."""
    problems = [
        f"{source}: {key!r} is not an LLM() argument"
        for key in options
        if key not in LLM_ARGUMENTS and key not in NOT_LLM_ARGUMENTS
    ]
    for key, allowed in NESTED_ARGUMENTS.items():
        value = options.get(key)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            problems.append(f"{source}: {key} must be a mapping, not {type(value).__name__}")
            continue
        problems += [
            f"{source}: {key}.{name!r} is not a {key} field"
            for name in value
            if name not in allowed
        ]
    if problems:
        raise OptionsError("\n".join(problems))


def render_options(spec: EngineSpec) -> str:
    """The model.yaml text: a header saying where it comes from, then the arguments."""
    header = (
        f"# LLM() arguments for {spec.name}, written by scripts/build_engines.py from its spec\n"
        "# (names: TensorRT-LLM tensorrt_llm/llmapi/llm_args.py; see launcher/llmapi_options.py).\n"
    )
    return header + str(yaml.safe_dump(llmapi_options(spec), sort_keys=False))


def write_options(spec: EngineSpec, model_dir: Path) -> Path:
    """Write the spec's model.yaml into a rendered llmapi model's version directory."""
    path = model_dir / "1" / OPTIONS_NAME
    path.write_text(render_options(spec), encoding="utf-8")
    return path


def check_options_file(path: Path) -> dict[str, Any]:
    """Load a model.yaml and check its keys; returns the arguments."""
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise OptionsError(f"{path}: must hold a mapping of LLM() arguments")
    check_options(loaded, source=str(path))
    return loaded
