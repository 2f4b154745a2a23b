"""Typed settings for the API, read from environment variables and an optional TOML file.

Environment variables use the prefix ``API_`` (nested fields with ``__``), e.g.
``API_PORT=9000`` or ``API_TRITON__URL=127.0.0.1:8001``. ``API_CONFIG_FILE`` points at a TOML
file with the same field names; environment variables win over the file.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from api.schemas.bounds import (
    MAX_GUIDE_BYTES,
    MAX_PROMPT_BYTES_PER_TOKEN,
    MAX_SCHEMA_ALTERNATIVES,
    MAX_SCHEMA_ENUM_VALUES,
    MAX_SCHEMA_PROPERTIES,
)


class ModelKind(StrEnum):
    """What a served model does; decides which routes accept it."""

    CHAT = "chat"
    EMBEDDING = "embedding"


class DeprecationNotice(BaseModel):
    """Announces that a model name or route goes away (RFC 9745 / RFC 8594 headers)."""

    since: datetime
    sunset: datetime | None = None
    link: str | None = None


class GuidedDecodingLimits(BaseModel):
    """The largest schema a model compiles for guided decoding (api/schemas/bounds.py); keep
    them at or below the engine's guided_decoding_* parameters."""

    max_guide_bytes: int = Field(default=MAX_GUIDE_BYTES, gt=0)
    max_properties: int = Field(default=MAX_SCHEMA_PROPERTIES, ge=0)
    max_alternatives: int = Field(default=MAX_SCHEMA_ALTERNATIVES, ge=0)
    max_enum_values: int = Field(default=MAX_SCHEMA_ENUM_VALUES, ge=0)


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
    # Token ids an input may hold: 0 <= id < vocab_size (None: only the model checks them).
    vocab_size: int | None = Field(default=None, gt=0)
    # Alternatives per token that top_logprobs (chat) or logprobs (completions) may ask for:
    # TensorRT-LLM computes them from the generation logits, which an engine returns only when
    # built with --gather_generation_logits. 0: this deployment offers none.
    max_top_logprobs: int = Field(default=20, ge=0, le=20)
    # Shown by GET /v1/models/{id}; informational only.
    parameters: str | None = None
    quantization: str | None = None
    supports_tools: bool = False
    # Names (the id or an alias) that answer with Deprecation/Sunset headers.
    deprecated_names: dict[str, DeprecationNotice] = Field(default_factory=dict)
    # Overrides Settings.request_timeout_s for this model (e.g. a slow large model).
    request_timeout_s: float | None = Field(default=None, gt=0)
    # Generations the engine runs at once: the CPU twin's max_num_sequences, TensorRT-LLM's
    # max_batch_size. Admission then lets in this many plus resilience.admission_headroom
    # (never more than resilience.max_in_flight), so that what is admitted runs instead of
    # waiting inside Triton.
    engine_slots: int | None = Field(default=None, gt=0)
    # Generations admitted at once for this model, when set: overrides engine_slots.
    max_in_flight: int | None = Field(default=None, gt=0)
    # Schemas past these are refused (400 naming response_format or tools) before Triton.
    guided_decoding: GuidedDecodingLimits = Field(default_factory=GuidedDecodingLimits)
    # A prompt of more UTF-8 bytes is refused (400 context_length_exceeded) before Triton
    # tokenizes it; None: context_length x MAX_PROMPT_BYTES_PER_TOKEN (api/schemas/bounds.py).
    max_prompt_bytes: int | None = Field(default=None, gt=0)
    # The Triton endpoint (TritonSettings.endpoints) that serves this model; None: the
    # default endpoint (TritonSettings.url, or an endpoint named "default").
    endpoint: str | None = None

    @property
    def prompt_byte_limit(self) -> int:
        """The most UTF-8 bytes one prompt of this model may have."""
        return self.max_prompt_bytes or self.context_length * MAX_PROMPT_BYTES_PER_TOKEN

    @property
    def route(self) -> str:
        """The backend's name for this model: ``endpoint/triton_model`` on a named endpoint,
        the bare Triton model name on the default one (Triton's names have no ``/``). Routing,
        breakers, admission gates and deadlines are all keyed by it."""
        if self.endpoint is None or self.endpoint == DEFAULT_ENDPOINT:
            return self.triton_model
        return f"{self.endpoint}/{self.triton_model}"


def default_models() -> list[ServedModel]:
    """The models the embedded default model repository serves."""
    return [
        ServedModel(
            id="tiny-chat",
            kind=ModelKind.CHAT,
            triton_model="ensemble",
            context_length=1024,
            default_max_tokens=128,
            # The launcher's default max_num_sequences (TRITON_MAX_NUM_SEQUENCES).
            engine_slots=8,
            parameters="3.7M",
            quantization="none (float32 on CPU)",
            # Its chat template renders the request's tools (models/tiny-chat/README.md).
            supports_tools=True,
        ),
        ServedModel(
            id="all-minilm-l6-v2",
            kind=ModelKind.EMBEDDING,
            triton_model="embedding",
            aliases=["text-embedding-minilm"],
            context_length=256,
            embedding_dimensions=384,
            vocab_size=30522,
            parameters="22.7M",
            quantization="none (float32 on CPU)",
        ),
    ]


# The endpoint of models that name none: TritonSettings.url unless ``endpoints`` has it.
DEFAULT_ENDPOINT = "default"


class TritonEndpoint(BaseModel):
    """One Triton deployment (a model group) and how to find its replicas.

    ``addresses``: fixed ``host:port`` replicas. ``target``: ``dns:///name:port`` (every A/AAAA
    record of ``name``, e.g. a headless Service, re-resolved every ``resolve_interval_s``),
    ``file:///path`` (a JSON list of ``host:port``, re-read as often) or one ``host:port``.
    """

    target: str | None = None
    addresses: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_source(self) -> TritonEndpoint:
        if (self.target is None) == (not self.addresses):
            raise ValueError("set exactly one of target and addresses")
        return self


class TritonSettings(BaseModel):
    """How the API reaches Triton's gRPC endpoint(s) (api/backend/routing.py)."""

    url: str = "127.0.0.1:8001"
    # Named endpoints, one per model group (ServedModel.endpoint names one); models that
    # name none go to ``url``.
    endpoints: dict[str, TritonEndpoint] = Field(default_factory=dict)
    # How often a DNS or file target is resolved again, and every replica's readiness checked.
    resolve_interval_s: float = Field(default=5.0, gt=0)
    # A replica that failed (unavailable, unready) leaves the rotation for this long, doubled
    # on every failed readiness check up to max_eject_s; it is back once a check passes.
    eject_s: float = Field(default=1.0, gt=0)
    max_eject_s: float = Field(default=5.0, gt=0)
    # Generous gRPC message limits: embedding batches and long prompts exceed the 4 MiB default.
    max_message_bytes: int = 64 * 1024 * 1024
    ready_timeout_s: float = Field(default=2.0, gt=0)
    # Upper bound of gRPC's reconnect back-off (its default grows to 120 s): a restarted
    # Triton is found again within about this long.
    max_reconnect_backoff_s: float = Field(default=1.0, gt=0)
    # The LLM model inside the ensemble that takes TensorRT-LLM's stop request: Triton does not
    # pass a cancelled stream into a running ensemble step (api/backend/stop.py). None: never.
    stop_model: str | None = "tensorrt_llm"
    # Streams kept open between requests (api/backend/stream_pool.py); 0: one per request.
    idle_streams: int = Field(default=256, ge=0)
    idle_stream_ttl_s: float = Field(default=60.0, gt=0)


PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DatabaseSettings(BaseModel):
    """Where keys, organizations and usage live: an embedded SQLite file or PostgreSQL."""

    url: str = f"sqlite+aiosqlite:///{PROJECT_ROOT / '.cache' / 'api.db'}"
    migrate_on_start: bool = True
    echo: bool = False


class AuthSettings(BaseModel):
    """API keys (and the key the operator starts with)."""

    # Created (org "default", scopes admin + inference) at start-up if it does not exist yet.
    bootstrap_key: SecretStr | None = None
    bootstrap_tier: str = "unlimited"
    # Keys resolved recently are cached this long; revocation is immediate regardless when
    # Redis is configured (see api/auth/resolver.py).
    cache_ttl_s: float = Field(default=5.0, ge=0)
    jwt: JwtSettings | None = None


# The scopes of api/auth/identity.py's Scope, for the settings that grant them.
JwtScope = Literal["inference", "admin", "metrics", "operator"]


class JwtSettings(BaseModel):
    """OIDC/JWT bearer tokens accepted beside API keys (off unless ``issuer`` is set)."""

    issuer: str
    audience: str
    # Where the issuer publishes its signing keys, or the JWKS document itself (static keys).
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    # The fetched JWKS is reused this long; an unknown ``kid`` refetches it sooner.
    jwks_cache_ttl_s: float = Field(default=300.0, gt=0)
    leeway_s: float = Field(default=30.0, ge=0)
    # Claims mapped onto the identity model of API keys.
    org_claim: str = "org_id"
    scopes_claim: str = "scope"
    tier_claim: str = "tier"
    models_claim: str | None = None
    # What every valid token may do. A value of ``scopes_claim`` (a scope, group or role name)
    # adds only what ``scope_map`` maps it to: claims grant nothing by themselves, so a token
    # saying ``scope: operator`` or ``admin`` is inference-only unless mapped here.
    default_scopes: list[str] = Field(default_factory=lambda: ["inference"])
    scope_map: dict[str, list[JwtScope]] = Field(default_factory=dict)
    # A value of ``tier_claim`` selects the tier it maps to; any other value (or none) gets
    # ``default_tier`` (None: ``limits.default_tier``).
    tier_map: dict[str, str] = Field(default_factory=dict)
    default_tier: str | None = None

    @model_validator(mode="after")
    def _has_keys(self) -> JwtSettings:
        if (self.jwks_url is None) == (self.jwks is None):
            raise ValueError("set exactly one of jwks_url and jwks")
        return self


# Limits above this are "unlimited" in practice; the bound keeps them exact in JSON and Lua
# (which count in doubles) and inside 64-bit integers.
MAX_LIMIT = 2**53


class ModelLimits(BaseModel):
    """Limits for one model within a tier (``None``: no limit)."""

    requests_per_minute: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    tokens_per_minute: int | None = Field(default=None, ge=1, le=MAX_LIMIT)


class TierLimits(ModelLimits):
    """What a key or an organization of this tier may use (``None``: no limit)."""

    max_concurrent: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    tokens_per_day: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    tokens_per_month: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    models: dict[str, ModelLimits] = Field(default_factory=dict)


def default_tiers() -> dict[str, TierLimits]:
    return {
        "free": TierLimits(
            requests_per_minute=20,
            tokens_per_minute=20_000,
            max_concurrent=2,
            tokens_per_day=200_000,
        ),
        "default": TierLimits(
            requests_per_minute=600,
            tokens_per_minute=200_000,
            max_concurrent=32,
            tokens_per_day=20_000_000,
        ),
        "unlimited": TierLimits(),
    }


class LimitSettings(BaseModel):
    """Rate limits and quotas; counts live in Redis when ``redis_url`` is set."""

    tiers: dict[str, TierLimits] = Field(default_factory=default_tiers)
    default_tier: str = "default"
    # Per client IP, before authentication: blunts floods of bad keys.
    ip_requests_per_minute: int | None = Field(default=1200, ge=1)
    redis_prefix: str = "gw"
    # A concurrency slot left by a crashed replica frees itself after this long.
    lease_ttl_s: float = Field(default=900.0, gt=0)

    @model_validator(mode="after")
    def _default_tier_exists(self) -> LimitSettings:
        if self.default_tier not in self.tiers:
            raise ValueError(f"default_tier {self.default_tier!r} is not in tiers")
        return self


class ModelPrice(BaseModel):
    """USD per million tokens."""

    prompt: float = Field(default=0.0, ge=0)
    completion: float = Field(default=0.0, ge=0)
    cached: float | None = Field(default=None, ge=0)


class UsageSettings(BaseModel):
    """Usage records: batched, journaled on disk until committed."""

    journal_dir: Path = PROJECT_ROOT / ".cache" / "usage-journal"
    flush_interval_s: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=500, ge=1)
    prices: dict[str, ModelPrice] = Field(default_factory=dict)


class ContentPattern(BaseModel):
    """One content-filter rule: a case-insensitive regular expression and its category."""

    category: str = Field(min_length=1)
    pattern: str = Field(min_length=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid pattern {value!r}: {exc}") from None
        return value


class ModerationSettings(BaseModel):
    """Content filter on prompts and replies, and what ``POST /v1/moderations`` uses."""

    patterns: list[ContentPattern] = Field(default_factory=list)
    # A Triton classification model (INPUT_TEXT -> SCORES, one score per category below).
    triton_model: str | None = None
    model_categories: list[str] = Field(default_factory=list)
    threshold: float = Field(default=0.5, ge=0, le=1)
    filter_input: bool = True
    filter_output: bool = True
    # Streamed replies: text is held back this many characters so that a match split across
    # chunks is caught before any of it is sent; the check looks back as far again.
    stream_window_chars: int = Field(default=64, ge=1)

    @model_validator(mode="after")
    def _model_has_categories(self) -> ModerationSettings:
        if self.triton_model is not None and not self.model_categories:
            raise ValueError("model_categories must name the moderation model's outputs")
        return self


class ResilienceSettings(BaseModel):
    """Circuit breaker, admission control, retries and draining, per Triton model."""

    # The breaker opens after this many failures in a row ...
    breaker_failure_threshold: int = Field(default=5, ge=1)
    # ... or when this share of the calls in the window failed (once the window has min_calls).
    breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_window_s: float = Field(default=30.0, gt=0)
    breaker_min_calls: int = Field(default=20, ge=1)
    # First open period; doubled on every reopen up to the maximum, then jittered.
    breaker_open_s: float = Field(default=1.0, gt=0)
    breaker_max_open_s: float = Field(default=30.0, gt=0)
    # Requests running against one Triton model, and how many more may wait for a slot. A
    # served model's engine_slots (+ admission_headroom) or max_in_flight sets its own.
    max_in_flight: int = Field(default=64, ge=1)
    # Admitted beyond a model's engine_slots: they wait inside Triton only for the next free
    # engine slot, so that the engine never idles between one sequence and the next.
    admission_headroom: int = Field(default=2, ge=0)
    max_queue: int = Field(default=256, ge=0)
    # Completions one request may ask for (prompts x n): each runs as its own engine request,
    # and all of them start before the reply does, so one request may hold at most this many
    # slots (and never more than its model's max_in_flight, or it would wait on itself).
    max_choices_per_request: int = Field(default=16, ge=1)
    # The whole wait for a generation's first token: for a slot in the API's queue, then
    # for Triton's first response. Past it the request is refused (503 model_overloaded,
    # Retry-After) instead of waiting behind the engine's batch.
    queue_timeout_s: float = Field(default=10.0, gt=0)
    # Extra attempts for a request that failed before its first chunk (backend unavailable).
    retry_attempts: int = Field(default=2, ge=0)
    retry_backoff_s: float = Field(default=0.05, ge=0)
    # How long shutdown waits for in-flight requests before ending them.
    drain_timeout_s: float = Field(default=30.0, gt=0)
    # A model that stops answering: a stream that receives nothing from Triton for this long
    # ends with an error event (504 timeout before the reply began), and is stopped in Triton.
    stream_idle_timeout_s: float = Field(default=30.0, gt=0)
    # The same for the first response (the queue inside Triton and prefill come first).
    first_response_timeout_s: float = Field(default=60.0, gt=0)
    # Active probe (api/backend/probe.py): a model that answered nothing for this long gets a
    # one-token request; one that fails it within probe_timeout_s is marked unready and its
    # breaker held open until a probe succeeds. 0 turns probing off.
    probe_interval_s: float = Field(default=5.0, ge=0)
    probe_timeout_s: float = Field(default=5.0, gt=0)


class FileSettings(BaseModel):
    """Where uploaded and generated files live: a local folder, or an S3-compatible store."""

    backend: Literal["local", "s3"] = "local"
    local_dir: Path = PROJECT_ROOT / ".cache" / "files"
    s3_bucket: str | None = None
    s3_prefix: str = "files/"
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    # OpenAI's limit for a batch input file.
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, gt=0)

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> FileSettings:
        if self.backend == "s3" and not self.s3_bucket:
            raise ValueError("files.s3_bucket is required when files.backend is 's3'")
        return self


class BatchSettings(BaseModel):
    """The batch worker: below interactive traffic, resumable, one per process."""

    # Run the worker inside the API process (off: run ``python -m api batches work``).
    worker_in_process: bool = True
    # Lines one worker runs at once.
    concurrency: int = Field(default=2, ge=1)
    # The worker takes no new line while interactive requests (running or queued, in this
    # process) are at or above this share of resilience.max_in_flight.
    interactive_share: float = Field(default=0.5, gt=0, le=1)
    poll_interval_s: float = Field(default=1.0, gt=0)
    # A claimed line whose worker stopped renewing it is run again after this long.
    lease_s: float = Field(default=60.0, gt=0)
    max_lines: int = Field(default=50_000, ge=1)


class ResponseSettings(BaseModel):
    """Stored responses (``/v1/responses``): how long they are kept, how background ones run."""

    # OpenAI keeps stored responses 30 days; expired ones are purged every purge_interval_s.
    retention_days: float = Field(default=30.0, gt=0)
    purge_interval_s: float = Field(default=600.0, gt=0)
    # A background response's lease, renewed while it runs; one whose process died is ended
    # as failed once its lease ran out (checked at start-up and every lease_s / 2).
    lease_s: float = Field(default=30.0, gt=0)
    # Stream events of a background response are written at most this often.
    event_flush_s: float = Field(default=0.2, gt=0)


class HttpSettings(BaseModel):
    """The HTTP edge (api/http/edge.py): what a connection may take before the app sees it."""

    # A request's line and headers must arrive within this long of the connection opening or
    # of their first byte (slow-header clients, connections that never send), else 408.
    header_timeout_s: float = Field(default=10.0, gt=0)
    # A body must arrive within body_timeout_s plus one second per body_min_rate bytes
    # received (slow-body clients: Apache's mod_reqtimeout rule), else 408.
    body_timeout_s: float = Field(default=30.0, gt=0)
    body_min_rate: int = Field(default=1024, gt=0)
    # The request line and headers together; past it 431.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    # An idle keep-alive connection is closed after this long (uvicorn's timeout_keep_alive).
    keep_alive_timeout_s: int = Field(default=5, ge=1)
    # Connections and requests at once before uvicorn answers 503 (None: unbounded).
    max_connections: int | None = Field(default=4096, ge=1)
    # Bodies of /v1/admin routes (tiers, organizations, keys): small JSON documents.
    max_admin_body_bytes: int = Field(default=64 * 1024, gt=0)


class GrpcSettings(BaseModel):
    """The public gRPC API (``llm.v1.LLMService``, api/grpc/) in the API process."""

    # None: no gRPC server. 0 picks a free port (tests).
    port: int | None = Field(default=None, ge=0, le=65535)
    # None: the HTTP server's host.
    host: str | None = None
    # Requests are bounded by max_request_bytes; replies (embeddings of many inputs) by this.
    max_send_message_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    # Calls at once before gRPC answers RESOURCE_EXHAUSTED (None: unbounded).
    max_concurrent_rpcs: int | None = Field(default=4096, ge=1)
    # How often the health service's per-model statuses are refreshed.
    health_interval_s: float = Field(default=5.0, gt=0)


class Settings(BaseSettings):
    """Everything the API needs; validated once at start-up."""

    model_config = SettingsConfigDict(env_prefix="API_", env_nested_delimiter="__", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=0, le=65535)
    log_level: str = "info"
    triton: TritonSettings = Field(default_factory=TritonSettings)
    models: list[ServedModel] = Field(default_factory=default_models)
    request_timeout_s: float = Field(default=600.0, gt=0)
    resilience: ResilienceSettings = Field(default_factory=ResilienceSettings)
    max_request_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    max_embedding_inputs: int = Field(default=2048, gt=0)
    embedding_batch_size: int = Field(default=64, gt=0)
    embedding_cache_ttl_s: int = Field(default=3600, ge=1)
    system_fingerprint: str = "fp_triton_cpu"
    # Route paths (e.g. "/v1/completions") that answer with Deprecation/Sunset headers.
    deprecated_routes: dict[str, DeprecationNotice] = Field(default_factory=dict)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis_url: SecretStr | None = None
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    usage: UsageSettings = Field(default_factory=UsageSettings)
    files: FileSettings = Field(default_factory=FileSettings)
    batches: BatchSettings = Field(default_factory=BatchSettings)
    responses: ResponseSettings = Field(default_factory=ResponseSettings)
    moderation: ModerationSettings = Field(default_factory=ModerationSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)
    log_format: Literal["json", "text"] = "json"
    # The cyclic garbage collector, tuned once per process at start-up (api/gc_tuning.py):
    # generation-0 threshold (0 keeps Python's 700) and whether to freeze start-up objects.
    gc_threshold0: int = Field(default=20_000, ge=0)
    gc_freeze_after_startup: bool = True
    config_file: Path | None = None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        levels = {"critical", "error", "warning", "info", "debug"}
        if value.lower() not in levels:
            raise ValueError(f"log_level must be one of {sorted(levels)}")
        return value.lower()

    @model_validator(mode="after")
    def _known_endpoints(self) -> Settings:
        for model in self.models:
            known = model.endpoint in (None, DEFAULT_ENDPOINT, *self.triton.endpoints)
            if not known:
                raise ValueError(
                    f"model {model.id!r} names endpoint {model.endpoint!r}, which is not in "
                    "triton.endpoints"
                )
        return self

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
