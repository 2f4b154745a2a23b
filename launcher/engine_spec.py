"""The per-model spec that `scripts/build_engines.py` turns into a TensorRT-LLM deployment.

A spec is a small TOML (or YAML) file: which Hugging Face checkpoint, how to quantize and split
it, the engine's limits, the paged KV cache and how Triton serves it. Field names follow
`trtllm-build` and the tensorrt_llm model's parameters where those exist. See
`engines/specs/*.toml` for commented examples.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# DNS-1123 label, so the name also works for Kubernetes objects and directory names.
NAME_PATTERN = r"^[a-z0-9]([a-z0-9.\-]{0,61}[a-z0-9])?$"


class Quantization(StrEnum):
    """Weight (and activation) formats; the quantized ones go through TensorRT-LLM's quantize.py."""

    NONE = "none"
    FP8 = "fp8"
    INT4_AWQ = "int4_awq"
    W4A8_AWQ = "w4a8_awq"
    INT8_SQ = "int8_sq"
    INT8_WEIGHT_ONLY = "int8_wo"
    INT4_WEIGHT_ONLY = "int4_wo"

    @property
    def calibrated(self) -> bool:
        """Formats that need calibration data (ModelOpt, examples/quantization/quantize.py)."""
        return self in {self.FP8, self.INT4_AWQ, self.W4A8_AWQ, self.INT8_SQ}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Section):
    """Engine build limits (trtllm-build); max_seq_len = max_input_len + max_output_len."""

    max_batch_size: int = Field(default=64, ge=1)
    max_input_len: int = Field(default=4096, ge=1)
    max_output_len: int = Field(default=1024, ge=1)
    # Tokens of all requests in one forward pass (chunked prefill splits longer prompts).
    max_num_tokens: int = Field(default=8192, ge=1)
    max_beam_width: int = Field(default=1, ge=1)

    @property
    def max_seq_len(self) -> int:
        """Prompt plus completion tokens one request may use."""
        return self.max_input_len + self.max_output_len


class KVCache(_Section):
    """Paged KV cache: block size at build time, memory share and reuse at run time."""

    paged: bool = True
    tokens_per_block: int = Field(default=64, ge=8)
    # int8/fp8 halve the cache; fp8 needs the fp8 quantization path (quantize.py).
    dtype: str | None = Field(default=None, pattern=r"^(fp8|int8)$")
    free_gpu_mem_fraction: float = Field(default=0.9, gt=0, le=1)
    enable_reuse: bool = True
    enable_chunked_context: bool = True

    @field_validator("tokens_per_block")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("tokens_per_block must be a power of two")
        return value


class Serving(_Section):
    """How Triton runs the model (tensorrt_llm parameters and instance counts)."""

    batching_strategy: str = Field(
        default="inflight_fused_batching", pattern=r"^(inflight_fused_batching|V1)$"
    )
    batch_scheduler_policy: str = Field(
        default="guaranteed_no_evict", pattern=r"^(guaranteed_no_evict|max_utilization)$"
    )
    preprocessing_instances: int = Field(default=2, ge=1)
    max_queue_delay_microseconds: int = Field(default=0, ge=0)
    # Serve the sentence-embedding model (common/embedding) from the same Triton too.
    embedding: bool = False
    # Alternatives per token the API's top_logprobs may ask for (API_MODELS max_top_logprobs):
    # above 0 the engine is built with --gather_generation_logits, which TensorRT-LLM needs to
    # return generation logits and which costs GPU memory. 0: the deployment offers none.
    max_top_logprobs: int = Field(default=0, ge=0, le=20)


class Calibration(_Section):
    """Calibration data for fp8 / AWQ / SmoothQuant (a Hugging Face dataset name or a local dir)."""

    dataset: str = "cnn_dailymail"
    size: int = Field(default=512, ge=1)
    max_seq_length: int = Field(default=512, ge=1)
    awq_block_size: int = Field(default=128, ge=1)


class EngineSpec(_Section):
    """One model: where it comes from, how it is built and how it is served."""

    name: str = Field(pattern=NAME_PATTERN)
    # Directory of TensorRT-LLM's examples/models/core/<family>/ (llama, qwen, ...): its
    # convert_checkpoint.py converts unquantized and weight-only checkpoints.
    family: str = Field(pattern=r"^[a-z0-9_]+$")
    checkpoint: Path
    tokenizer: Path | None = None
    dtype: str = Field(default="bfloat16", pattern=r"^(float16|bfloat16|float32)$")
    quantization: Quantization = Quantization.NONE
    tensor_parallel: int = Field(default=1, ge=1)
    pipeline_parallel: int = Field(default=1, ge=1)
    limits: Limits = Field(default_factory=Limits)
    kv_cache: KVCache = Field(default_factory=KVCache)
    serving: Serving = Field(default_factory=Serving)
    calibration: Calibration = Field(default_factory=Calibration)

    @field_validator("quantization", mode="before")
    @classmethod
    def _dashes(cls, value: Any) -> Any:
        # "int4-awq" reads naturally in a spec; TensorRT-LLM spells it int4_awq.
        return value.replace("-", "_").lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> EngineSpec:
        if self.serving.batching_strategy.startswith("inflight") and not self.kv_cache.paged:
            raise ValueError("in-flight batching needs a paged KV cache (kv_cache.paged = true)")
        if self.kv_cache.dtype == "fp8" and not self.quantization.calibrated:
            raise ValueError("an fp8 KV cache needs a calibrated quantization (e.g. fp8)")
        if self.limits.max_num_tokens < self.limits.max_input_len and not (
            self.kv_cache.enable_chunked_context
        ):
            raise ValueError("max_num_tokens < max_input_len needs enable_chunked_context")
        return self

    @property
    def world_size(self) -> int:
        """GPUs one engine spans."""
        return self.tensor_parallel * self.pipeline_parallel

    @property
    def tokenizer_source(self) -> Path:
        """Where the tokenizer files come from (the checkpoint unless given)."""
        return self.tokenizer or self.checkpoint


def load_spec(path: Path) -> EngineSpec:
    """Read a .toml / .yaml spec; relative checkpoint paths are relative to the spec file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        data: Any = tomllib.loads(text)
    elif path.suffix in {".yaml", ".yml"}:
        import yaml  # only YAML specs need PyYAML

        data = yaml.safe_load(text)
    else:
        raise ValueError(f"{path}: a spec is a .toml, .yaml or .yml file")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a spec is a table of settings")
    for key in ("checkpoint", "tokenizer"):
        if isinstance(data.get(key), str):
            data[key] = (path.parent / Path(data[key]).expanduser()).resolve()
    return EngineSpec.model_validate(data)
