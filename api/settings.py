"""Typed settings for the API, read from environment variables and an optional TOML file.

Environment variables use the prefix ``API_`` (nested fields with ``__``), e.g.
``API_PORT=9000`` or ``API_TRITON__URL=127.0.0.1:8001``. ``API_CONFIG_FILE`` points at a TOML
file with the same field names; environment variables win over the file.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class ModelKind(StrEnum):
    """What a served model does; decides which routes accept it."""

    CHAT = "chat"
    EMBEDDING = "embedding"


class ServedModel(BaseModel):
    """One public model id and the Triton model that serves it."""

    id: str
    kind: ModelKind
    triton_model: str
    aliases: list[str] = Field(default_factory=list)
    owned_by: str = "organization"
    context_length: int = Field(default=1024, gt=0)
    default_max_tokens: int = Field(default=256, gt=0)
    embedding_dimensions: int | None = None


def default_models() -> list[ServedModel]:
    """The models the embedded default model repository serves."""
    return [
        ServedModel(
            id="tiny-chat",
            kind=ModelKind.CHAT,
            triton_model="ensemble",
            context_length=1024,
            default_max_tokens=128,
        ),
        ServedModel(
            id="all-minilm-l6-v2",
            kind=ModelKind.EMBEDDING,
            triton_model="embedding",
            aliases=["text-embedding-minilm"],
            context_length=256,
            embedding_dimensions=384,
        ),
    ]


class TritonSettings(BaseModel):
    """How the API reaches Triton's gRPC endpoint."""

    url: str = "127.0.0.1:8001"
    # Generous gRPC message limits: embedding batches and long prompts exceed the 4 MiB default.
    max_message_bytes: int = 64 * 1024 * 1024
    ready_timeout_s: float = Field(default=2.0, gt=0)


class Settings(BaseSettings):
    """Everything the API needs; validated once at start-up."""

    model_config = SettingsConfigDict(env_prefix="API_", env_nested_delimiter="__", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=0, le=65535)
    log_level: str = "info"
    triton: TritonSettings = Field(default_factory=TritonSettings)
    models: list[ServedModel] = Field(default_factory=default_models)
    request_timeout_s: float = Field(default=600.0, gt=0)
    max_request_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    max_embedding_inputs: int = Field(default=2048, gt=0)
    embedding_batch_size: int = Field(default=64, gt=0)
    embedding_cache_ttl_s: int = Field(default=3600, ge=1)
    system_fingerprint: str = "fp_triton_cpu"
    config_file: Path | None = None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        levels = {"critical", "error", "warning", "info", "debug"}
        if value.lower() not in levels:
            raise ValueError(f"log_level must be one of {sorted(levels)}")
        return value.lower()

    @model_validator(mode="after")
    def _unique_model_names(self) -> Settings:
        seen: set[str] = set()
        for model in self.models:
            for name in (model.id, *model.aliases):
                if name in seen:
                    raise ValueError(f"model name {name!r} is configured twice")
                seen.add(name)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: explicit arguments, environment, then the TOML config file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file_from(init_settings, env_settings)
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


def _config_file_from(*sources: PydanticBaseSettingsSource) -> Path | None:
    for source in sources:
        values: dict[str, Any] = source()
        if values.get("config_file"):
            return Path(values["config_file"])
    return None
