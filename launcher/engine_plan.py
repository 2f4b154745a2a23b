"""What building one `EngineSpec` means: commands, output layout, template values.

Pure functions: nothing here runs a tool or touches the disk, so the plan can be printed
(`build_engines.py --dry-run`) and tested on machines without TensorRT-LLM.

Layout of one model under the output directory (the same tree as the serving pod sees it under
its deploy root, e.g. a volume mounted at `/models`)::

    <name>/model/              llmapi: the Hugging Face checkpoint the LLM API loads (a copy,
                               or ModelOpt's quantized export)
    <name>/checkpoint/         trtllm: TensorRT-LLM checkpoint (convert_checkpoint.py/quantize.py)
    <name>/engine/             trtllm: rank<N>.engine + config.json (trtllm-build)
    <name>/tokenizer/          tokenizer files of the Hugging Face checkpoint (no weights)
    <name>/model_repository/   ensemble, preprocessing, tensorrt_llm, postprocessing [, embedding]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.engine_spec import Backend, EngineSpec, Quantization
from launcher.settings import explicit_settings

# Files of a Hugging Face checkpoint that are weights, not tokenizer or config.
WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack"})
COMMON_MODELS = ("common/ensemble", "common/preprocessing")
# The tensorrt_llm step of each backend: its repository root's model.
LLM_STEP = {Backend.LLMAPI: "llm_llmapi/tensorrt_llm", Backend.TRTLLM: "llm_trtllm/tensorrt_llm"}
# Last: the detokenizer keeps per-request state and must stay a single instance.
STATEFUL_MODELS = ("common/postprocessing",)


@dataclass(frozen=True)
class Layout:
    """Where one model's artifacts are written (`root`) and where Triton finds them (`deployed`)."""

    root: Path
    deployed: Path

    @classmethod
    def for_spec(cls, spec: EngineSpec, output_dir: Path, deploy_root: Path | None) -> Layout:
        """`<output_dir>/<name>`, served from `<deploy_root>/<name>` (default: the same)."""
        root = output_dir / spec.name
        return cls(root=root, deployed=(deploy_root / spec.name) if deploy_root else root)

    @property
    def model(self) -> Path:
        """Hugging Face checkpoint the LLM API loads (llmapi)."""
        return self.root / "model"

    @property
    def checkpoint(self) -> Path:
        """Converted TensorRT-LLM checkpoint."""
        return self.root / "checkpoint"

    @property
    def engine(self) -> Path:
        """Built engine."""
        return self.root / "engine"

    @property
    def tokenizer(self) -> Path:
        """Copied tokenizer files."""
        return self.root / "tokenizer"

    @property
    def repository(self) -> Path:
        """The rendered model repository (one root)."""
        return self.root / "model_repository"


@dataclass(frozen=True)
class Tools:
    """How TensorRT-LLM's tools are invoked on the build host."""

    python: str
    examples_dir: Path
    trtllm_build: str = "trtllm-build"
    # examples/ of NVIDIA/Model-Optimizer (ModelOpt), for quantizing llmapi checkpoints.
    modelopt_examples_dir: Path = Path("Model-Optimizer/examples")


@dataclass(frozen=True)
class CommandStep:
    """One external command of the build and the directory it fills."""

    title: str
    argv: tuple[str, ...]
    output: Path


def convert_step(spec: EngineSpec, layout: Layout, tools: Tools) -> CommandStep:
    """Hugging Face checkpoint -> TensorRT-LLM checkpoint, quantized where the spec says so."""
    common = (
        *("--model_dir", str(spec.checkpoint)),
        *("--output_dir", str(layout.checkpoint)),
        *("--dtype", spec.dtype),
        *("--tp_size", str(spec.tensor_parallel)),
        *("--pp_size", str(spec.pipeline_parallel)),
    )
    if spec.quantization.calibrated:
        script = tools.examples_dir / "quantization" / "quantize.py"
        argv = (tools.python, str(script), *common, *_calibration_args(spec))
        return CommandStep(f"quantize ({spec.quantization.value})", argv, layout.checkpoint)
    if spec.family is None:  # EngineSpec requires it for backend trtllm
        raise ValueError(f"{spec.name}: a TensorRT-engine build needs the model's family")
    script = tools.examples_dir / "models" / "core" / spec.family / "convert_checkpoint.py"
    extra: tuple[str, ...] = ()
    if spec.quantization in {Quantization.INT8_WEIGHT_ONLY, Quantization.INT4_WEIGHT_ONLY}:
        precision = spec.quantization.value.removesuffix("_wo")
        extra = ("--use_weight_only", "--weight_only_precision", precision)
    if spec.kv_cache.dtype == "int8":
        extra = (*extra, "--int8_kv_cache")
    argv = (tools.python, str(script), *common, *extra)
    return CommandStep("convert checkpoint", argv, layout.checkpoint)


def _calibration_args(spec: EngineSpec) -> tuple[str, ...]:
    args: tuple[str, ...] = (
        *("--qformat", spec.quantization.value),
        *("--calib_dataset", spec.calibration.dataset),
        *("--calib_size", str(spec.calibration.size)),
        *("--calib_max_seq_length", str(spec.calibration.max_seq_length)),
    )
    if spec.quantization in {Quantization.INT4_AWQ, Quantization.W4A8_AWQ}:
        args = (*args, "--awq_block_size", str(spec.calibration.awq_block_size))
    if spec.kv_cache.dtype is not None:
        args = (*args, "--kv_cache_dtype", spec.kv_cache.dtype)
    return args


def hf_quantize_step(spec: EngineSpec, layout: Layout, tools: Tools) -> CommandStep:
    """Hugging Face checkpoint -> quantized Hugging Face checkpoint the LLM API loads.

    ModelOpt's examples/llm_ptq/hf_ptq.py (NVIDIA/Model-Optimizer
    003e0fba3d937b1789dcdca8c97521df053516ac: --pyt_ckpt_path, --qformat, --kv_cache_qformat,
    --calib_size, --calib_seq, --dataset, --awq_block_size, --inference_tensor_parallel,
    --export_path; it exports the Hugging Face format, --export_fmt is deprecated).
    """
    script = tools.modelopt_examples_dir / "llm_ptq" / "hf_ptq.py"
    calibration = spec.calibration
    argv: tuple[str, ...] = (
        tools.python,
        str(script),
        *("--pyt_ckpt_path", str(spec.checkpoint)),
        *("--qformat", spec.quantization.value),
        *("--kv_cache_qformat", spec.kv_cache.dtype or "none"),
        *("--calib_size", str(calibration.size)),
        *("--calib_seq", str(calibration.max_seq_length)),
        *("--dataset", calibration.dataset),
        *("--inference_tensor_parallel", str(spec.tensor_parallel)),
        *("--export_path", str(layout.model)),
    )
    if spec.quantization in {Quantization.INT4_AWQ, Quantization.W4A8_AWQ}:
        argv = (*argv, "--awq_block_size", str(calibration.awq_block_size))
    return CommandStep(f"quantize ({spec.quantization.value}, ModelOpt)", argv, layout.model)


def quantizes(spec: EngineSpec) -> bool:
    """Whether an llmapi build runs the quantization step (else it copies the checkpoint)."""
    return spec.quantization is not Quantization.NONE and not spec.prequantized


def build_step(spec: EngineSpec, layout: Layout, tools: Tools) -> CommandStep:
    """TensorRT-LLM checkpoint -> engine, with the spec's limits and a paged KV cache."""
    limits, kv = spec.limits, spec.kv_cache
    argv = [
        tools.trtllm_build,
        *("--checkpoint_dir", str(layout.checkpoint)),
        *("--output_dir", str(layout.engine)),
        *("--max_batch_size", str(limits.max_batch_size)),
        *("--max_input_len", str(limits.max_input_len)),
        *("--max_seq_len", str(limits.max_seq_len)),
        *("--max_num_tokens", str(limits.max_num_tokens)),
        *("--max_beam_width", str(limits.max_beam_width)),
        *("--gemm_plugin", "auto"),
        *("--kv_cache_type", "paged" if kv.paged else "continuous"),
        *("--remove_input_padding", "enable"),
        *("--context_fmha", "enable"),
        *("--workers", str(spec.world_size)),
    ]
    if kv.paged:
        # Paged context attention is what KV-cache reuse and chunked prefill build on.
        argv += ["--tokens_per_block", str(kv.tokens_per_block)]
        argv += ["--use_paged_context_fmha", "enable"]
    if kv.dtype == "fp8":
        argv += ["--use_fp8_context_fmha", "enable"]
    if spec.serving.max_top_logprobs:
        # return_generation_logits (top_logprobs) is refused by engines built without it.
        argv += ["--gather_generation_logits"]
    return CommandStep("build engine", tuple(argv), layout.engine)


# Written by scripts/build_engines.py next to the tokenizer; the C++ backend's guided decoding
# reads it (xgrammar_tokenizer_info_path).
XGRAMMAR_TOKENIZER_INFO = "xgrammar_tokenizer_info.json"


def padded_vocab_size(vocab_size: int, tensor_parallel: int) -> int:
    """The engine's logits width: TensorRT-LLM pads the vocabulary to a multiple of the TP size
    (tensorrt_llm/models/modeling_utils.py, vocab_size padded with pad_vocab_size)."""
    return -(-vocab_size // tensor_parallel) * tensor_parallel


def template_values(spec: EngineSpec, layout: Layout, vocab_size: int = 0) -> dict[str, str]:
    """Values for every `${name}` of the repository templates, as the serving pod sees paths.

    `vocab_size`: the checkpoint's (config.json), padded here as the engine pads it; 0 leaves
    the embedding_bias width to the tokenizer.
    """
    if spec.backend is Backend.LLMAPI:
        return _llmapi_values(spec, layout, vocab_size)
    settings = explicit_settings(
        llm_backend="trtllm",
        llm_model_dir=layout.deployed / "engine",
        tokenizer_dir=layout.deployed / "tokenizer",
        max_batch_size=spec.limits.max_batch_size,
        max_context_tokens=spec.limits.max_seq_len,
        preprocessing_instances=spec.serving.preprocessing_instances,
        kv_cache_free_gpu_mem_fraction=spec.kv_cache.free_gpu_mem_fraction,
        batching_strategy=spec.serving.batching_strategy,
        batch_scheduler_policy=spec.serving.batch_scheduler_policy,
        max_beam_width=spec.limits.max_beam_width,
        enable_kv_cache_reuse=spec.kv_cache.enable_reuse,
        enable_chunked_context=spec.kv_cache.enable_chunked_context,
        max_queue_delay_microseconds=spec.serving.max_queue_delay_microseconds,
        guided_decoding_backend="xgrammar",
        xgrammar_tokenizer_info_path=layout.deployed / "tokenizer" / XGRAMMAR_TOKENIZER_INFO,
        vocab_size=padded_vocab_size(vocab_size, spec.tensor_parallel) if vocab_size else 0,
    )
    return settings.template_values()


def _llmapi_values(spec: EngineSpec, layout: Layout, vocab_size: int) -> dict[str, str]:
    # The LLM() arguments go to model.yaml (launcher/llmapi_options.py); the configs need the
    # checkpoint, the tokenizer and the batch and window sizes. The PyTorch backend's logits
    # are as wide as the checkpoint's vocabulary.
    settings = explicit_settings(
        llm_backend="llmapi",
        llm_model_dir=layout.deployed / "model",
        tokenizer_dir=layout.deployed / "tokenizer",
        max_batch_size=spec.limits.max_batch_size,
        max_context_tokens=spec.limits.max_seq_len,
        preprocessing_instances=spec.serving.preprocessing_instances,
        vocab_size=vocab_size,
    )
    return settings.template_values()


def repository_models(spec: EngineSpec, repository_dir: Path) -> list[Path]:
    """The template model directories (from the project's repository roots) this spec serves."""
    embedding = ("common/embedding",) if spec.serving.embedding else ()
    names = [*COMMON_MODELS, LLM_STEP[spec.backend], *embedding, *STATEFUL_MODELS]
    return [repository_dir / name for name in names]


def served_models(spec: EngineSpec) -> list[dict[str, Any]]:
    """The API's `API_MODELS` entries for this deployment (also the chart's `servedModels`)."""
    models: list[dict[str, Any]] = [
        {
            "id": spec.name,
            "kind": "chat",
            "triton_model": "ensemble",
            "context_length": spec.limits.max_seq_len,
            "default_max_tokens": min(512, spec.limits.max_output_len),
            # What the engine runs at once: the API admits this many (plus its headroom).
            "engine_slots": spec.limits.max_batch_size,
            "max_top_logprobs": spec.serving.max_top_logprobs,
        }
    ]
    if spec.serving.embedding:
        models.append(
            {
                "id": "all-minilm-l6-v2",
                "kind": "embedding",
                "triton_model": "embedding",
                "context_length": 256,
                "embedding_dimensions": 384,
                "vocab_size": 30522,
            }
        )
    return models
