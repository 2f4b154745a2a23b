"""Typed settings of the Triton launcher, read from `TRITON_*` environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class LLMBackend(StrEnum):
    """Which second repository root provides the `tensorrt_llm` model."""

    CPU = "cpu"
    TRTLLM = "trtllm"
    # TensorRT-LLM's LLM API behind the Python backend (current containers, default for GPUs).
    LLMAPI = "llmapi"


class LauncherSettings(BaseSettings):
    """Everything needed to render the model repository and start `tritonserver`.

    Relative paths are resolved against the project root, not the working directory.
    """

    model_config = SettingsConfigDict(env_prefix="TRITON_", extra="forbid")

    grpc_port: int = Field(default=8001, ge=0, le=65535)
    http_port: int = Field(default=8000, ge=0, le=65535)
    metrics_port: int = Field(default=8002, ge=0, le=65535)
    llm_backend: LLMBackend = LLMBackend.CPU
    llm_model_dir: Path = Path("models/tiny-chat")
    # Defaults to llm_model_dir (a Hugging Face checkpoint ships its tokenizer).
    tokenizer_dir: Path | None = None
    max_batch_size: int = Field(default=8, ge=1)
    # Inputs per embedding request; the API splits larger lists (API_EMBEDDING_BATCH_SIZE).
    embedding_max_batch_size: int = Field(default=64, ge=1)
    # Sequences the CPU twin decodes together; defaults to max_batch_size.
    max_num_sequences: int | None = Field(default=None, ge=1)
    # Tokenizing is stateless, so preprocessing may run as several instances (processes).
    preprocessing_instances: int = Field(default=1, ge=1)
    # 0: take the window from the model's config.json (max_position_embeddings).
    max_context_tokens: int = Field(default=0, ge=0)
    repository_dir: Path = Path("model_repository")
    rendered_dir: Path = Path(".cache/model_repository")
    cache_dir: Path = Path(".cache/triton")
    # A complete Triton installation to run instead of the one inside nvidia-pytriton, such as
    # /opt/tritonserver in NVIDIA's Triton images: the only place the tensorrtllm backend exists.
    server_dir: Path | None = None
    log_verbose: int = Field(default=0, ge=0)
    exit_timeout_s: int = Field(default=5, ge=0)
    # "explicit": all models load at start-up and can be unloaded/loaded one by one
    # (POST /v2/repository/models/NAME/unload|load).
    model_control_mode: Literal["none", "explicit"] = "none"
    ready_timeout_s: float = Field(default=180.0, gt=0)
    # A tritonserver that dies after start-up is started again (launcher/supervisor.py) after
    # a back-off doubling from restart_backoff_s to restart_max_backoff_s; this many restarts
    # in a row at most (0: exit with it instead).
    max_restarts: int = Field(default=10, ge=0)
    restart_backoff_s: float = Field(default=1.0, ge=0)
    restart_max_backoff_s: float = Field(default=30.0, ge=0)
    # Every this many seconds each model gets a one-token request (launcher/probe.py); after
    # model_check_failures failures in a row (a dead or hung Python-backend stub, which
    # Triton's own readiness does not see) the server is restarted. 0: no check.
    model_check_interval_s: float = Field(default=10.0, ge=0)
    model_check_timeout_s: float = Field(default=10.0, gt=0)
    model_check_failures: int = Field(default=3, ge=1)
    # TensorRT-LLM backend knobs (GPU hosts only).
    kv_cache_free_gpu_mem_fraction: float = Field(default=0.9, gt=0, le=1)
    batching_strategy: str = "inflight_fused_batching"
    batch_scheduler_policy: str = "guaranteed_no_evict"
    max_beam_width: int = Field(default=1, ge=1)
    enable_kv_cache_reuse: bool = False
    enable_chunked_context: bool = False
    max_queue_delay_microseconds: int = Field(default=0, ge=0)
    # Guided decoding in the legacy C++ tensorrt_llm backend: "xgrammar" needs the tokenizer
    # info JSON that scripts/build_engines.py writes (xgrammar_tokenizer_info.json); "none"
    # renders both parameters empty, which the backend reads as "off".
    guided_decoding_backend: Literal["none", "xgrammar"] = "none"
    xgrammar_tokenizer_info_path: Path | None = None
    # The engine's vocabulary (its logits' width, padded for tensor parallelism); the
    # preprocessing model sizes embedding_bias to it. 0: the tokenizer's size.
    vocab_size: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _resolve_paths(self) -> LauncherSettings:
        for name in (
            "llm_model_dir",
            "tokenizer_dir",
            "repository_dir",
            "rendered_dir",
            "cache_dir",
            "server_dir",
            "xgrammar_tokenizer_info_path",
        ):
            value = getattr(self, name)
            if value is not None and not value.is_absolute():
                setattr(self, name, (PROJECT_ROOT / value).resolve())
        if self.tokenizer_dir is None:
            self.tokenizer_dir = self.llm_model_dir
        if self.max_num_sequences is None:
            self.max_num_sequences = self.max_batch_size
        if self.guided_decoding_backend == "xgrammar" and self.xgrammar_tokenizer_info_path is None:
            raise ValueError("guided_decoding_backend xgrammar needs xgrammar_tokenizer_info_path")
        return self

    @property
    def llm_root(self) -> str:
        """Name of the repository root holding this host's `tensorrt_llm` model."""
        return {
            LLMBackend.CPU: "llm_cpu",
            LLMBackend.TRTLLM: "llm_trtllm",
            LLMBackend.LLMAPI: "llm_llmapi",
        }[self.llm_backend]

    @property
    def roots(self) -> tuple[str, str]:
        """The two repository roots Triton loads, in order."""
        return ("common", self.llm_root)

    def template_values(self) -> dict[str, str]:
        """Values for the `${name}` placeholders of the config.pbtxt templates."""
        model_dir = str(self.llm_model_dir)
        return {
            "triton_max_batch_size": str(self.max_batch_size),
            "embedding_max_batch_size": str(self.embedding_max_batch_size),
            # The ensemble streams, so the LLM step is always decoupled.
            "decoupled_mode": "true",
            "max_num_sequences": str(self.max_num_sequences),
            "preprocessing_instance_count": str(self.preprocessing_instances),
            "tokenizer_dir": str(self.tokenizer_dir),
            "max_context_tokens": str(self.max_context_tokens),
            "model_dir": model_dir,
            "llm_model_dir": model_dir,
            "engine_dir": model_dir,
            "kv_cache_free_gpu_mem_fraction": str(self.kv_cache_free_gpu_mem_fraction),
            "batching_strategy": self.batching_strategy,
            "batch_scheduler_policy": self.batch_scheduler_policy,
            "max_beam_width": str(self.max_beam_width),
            "enable_kv_cache_reuse": str(self.enable_kv_cache_reuse).lower(),
            "enable_chunked_context": str(self.enable_chunked_context).lower(),
            "max_queue_delay_microseconds": str(self.max_queue_delay_microseconds),
            **self._guided_decoding_values(),
            "vocab_size": str(self.vocab_size),
        }

    def _guided_decoding_values(self) -> dict[str, str]:
        # The C++ backend turns guided decoding off when either value is empty.
        if self.guided_decoding_backend == "none":
            return {"guided_decoding_backend": "", "xgrammar_tokenizer_info_path": ""}
        return {
            "guided_decoding_backend": self.guided_decoding_backend,
            "xgrammar_tokenizer_info_path": str(self.xgrammar_tokenizer_info_path),
        }


class _ExplicitLauncherSettings(LauncherSettings):
    """Takes values only from its arguments and the defaults."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def explicit_settings(**values: Any) -> LauncherSettings:
    """Settings from `values` and the defaults only, ignoring any `TRITON_*` variables.

    For tools that render a repository for another host (scripts/build_engines.py): what this
    shell happens to export must not leak into a deployment's configs.
    """
    return _ExplicitLauncherSettings(**values)
