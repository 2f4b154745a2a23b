"""The per-model spec that `scripts/build_engines.py` turns into a TensorRT-LLM deployment.

A spec is a small TOML (or YAML) file: which Hugging Face checkpoint, how to quantize and split
it, the limits, the paged KV cache and how Triton serves it. `backend` picks the world:
`llmapi` (default: TensorRT-LLM's LLM API on its PyTorch backend, a Hugging Face checkpoint
configured by a model.yaml) or `trtllm` (a TensorRT engine for the legacy C++ backend of pinned
older containers). Field names follow `trtllm-build` and the tensorrt_llm model's parameters
where those exist; launcher/llmapi_options.py maps them onto LLM() arguments. See
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


class Backend(StrEnum):
    """Which TensorRT-LLM runtime serves the spec (and so what a build produces)."""

    # LLM API over the PyTorch backend: model_repository/llm_llmapi, no engine build.
    LLMAPI = "llmapi"
    # TensorRT engine + C++ tensorrtllm backend: model_repository/llm_trtllm.
    TRTLLM = "trtllm"


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


# What ModelOpt's examples/llm_ptq/hf_ptq.py exports as a Hugging Face checkpoint that the
# PyTorch backend loads (or what a pre-quantized checkpoint may carry). SmoothQuant and the
# weight-only formats are TensorRT-engine paths: the spec must say backend = "trtllm".
LLMAPI_QUANTIZATIONS = frozenset(
    {Quantization.NONE, Quantization.FP8, Quantization.INT4_AWQ, Quantization.W4A8_AWQ}
)


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
    # Structured outputs (response_format): xgrammar in either backend.
    guided_decoding: bool = True


class LLMAPIOptions(_Section):
    """LLM API settings with no trtllm-build counterpart (backend = "llmapi" only)."""

    # CUDA graphs for decode batches up to the engine's max_batch_size, padded to the nearest
    # captured size (cuda_graph_config); false turns them off (cuda_graph_config: null).
    cuda_graphs: bool = True
    cuda_graph_padding: bool = True
    # Further LLM() arguments, written to model.yaml as given (checked against the known
    # argument names of launcher/llmapi_options.py).
    extra: dict[str, Any] = Field(default_factory=dict)


class Calibration(_Section):
    """Calibration data for fp8 / AWQ / SmoothQuant (a Hugging Face dataset name or a local dir)."""

    dataset: str = "cnn_dailymail"
    size: int = Field(default=512, ge=1)
    max_seq_length: int = Field(default=512, ge=1)
    awq_block_size: int = Field(default=128, ge=1)


class EngineSpec(_Section):
    """One model: where it comes from, how it is built and how it is served."""

    name: str = Field(pattern=NAME_PATTERN)
    backend: Backend = Backend.LLMAPI
    # trtllm only: directory of TensorRT-LLM's examples/models/core/<family>/ (llama, qwen,
    # ...), whose convert_checkpoint.py converts unquantized and weight-only checkpoints.
    family: str | None = Field(default=None, pattern=r"^[a-z0-9_]+$")
    checkpoint: Path
    tokenizer: Path | None = None
    dtype: str = Field(default="bfloat16", pattern=r"^(float16|bfloat16|float32)$")
    quantization: Quantization = Quantization.NONE
    # llmapi only: the checkpoint already is in `quantization`'s format (e.g. a ModelOpt FP8
    # export from the Hub), so it is used as it is instead of being quantized.
    prequantized: bool = False
    tensor_parallel: int = Field(default=1, ge=1)
    pipeline_parallel: int = Field(default=1, ge=1)
    limits: Limits = Field(default_factory=Limits)
    kv_cache: KVCache = Field(default_factory=KVCache)
    serving: Serving = Field(default_factory=Serving)
    calibration: Calibration = Field(default_factory=Calibration)
    llmapi: LLMAPIOptions = Field(default_factory=LLMAPIOptions)

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
        problem = (
            self._llmapi_problem() if self.backend is Backend.LLMAPI else self._trtllm_problem()
        )
        if problem:
            raise ValueError(f"backend {self.backend.value}: {problem}")
        return self

    def _llmapi_problem(self) -> str | None:
        if self.quantization not in LLMAPI_QUANTIZATIONS:
            allowed = ", ".join(sorted(q.value for q in LLMAPI_QUANTIZATIONS))
            return (
                f"quantization {self.quantization.value} is a TensorRT-engine format (the LLM "
                f'API path takes {allowed}); use backend = "trtllm"'
            )
        if self.kv_cache.dtype == "int8":
            return "an int8 KV cache is a TensorRT-engine feature (the LLM API takes fp8)"
        if self.serving.batching_strategy != "inflight_fused_batching":
            return "the LLM API always batches in flight (batching_strategy V1 is trtllm only)"
        if self.prequantized and self.quantization is Quantization.NONE:
            return "prequantized needs the checkpoint's quantization (e.g. fp8)"
        return None

    def _trtllm_problem(self) -> str | None:
        if self.family is None:
            return "family is required (the examples/models/core/<family> converter)"
        if self.prequantized:
            return "prequantized checkpoints are an llmapi feature"
        if self.llmapi != LLMAPIOptions():
            return "the [llmapi] section applies to backend llmapi only"
        return None

    @property
    def world_size(self) -> int:
        """GPUs one engine spans."""
        return self.tensor_parallel * self.pipeline_parallel

    @property
    def tokenizer_source(self) -> Path:
        """Where the tokenizer files come from (the checkpoint unless given)."""
        return self.tokenizer or self.checkpoint


def load_spec(path: Path, backend: Backend | None = None) -> EngineSpec:
    """Read a .toml / .yaml spec; relative checkpoint paths are relative to the spec file.

    `backend` overrides the spec's own (build_engines.py --backend).
    """
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
    if backend is not None:
        data["backend"] = backend.value
    return EngineSpec.model_validate(data)
