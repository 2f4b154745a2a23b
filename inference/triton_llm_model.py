"""Triton adapter for the ensemble's ``tensorrt_llm`` step, over either engine.

The ``engine`` config parameter picks it: ``transformers`` (default; the CPU twin,
``inference.generation``) or ``llmapi`` (TensorRT-LLM's LLM API on GPU, ``inference.llmapi_engine``,
configured by the ``model.yaml`` next to the model's config.pbtxt: every key an ``LLM()`` argument).
Both model.py files of the repository (llm_cpu, llm_llmapi) are shims importing this module.

execute() only converts each request and hands it to the in-flight batching engine
(``inference.generation``), then returns; the engine thread streams the responses through each
request's response sender. Everything testable lives in ``inference``; pb_utils stays here.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import triton_python_backend_utils as pb_utils

from inference.engine import InferenceEngine
from inference.generation import GenerationEngine
from inference.guide_limits import GuideLimits
from inference.guided import GuidedOptions
from inference.request import GUIDED_ERROR_PREFIX, GenerationOutput
from inference.request_errors import INPUT_ERRORS, input_error_message
from inference.trtllm_io import ParsedRequest, parse_request, response_arrays, wants_stop

logger = logging.getLogger(__name__)

_FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
# How often the request gauges follow the engine (the HPA reads minute averages of them).
_METRICS_PERIOD_S = 0.1


class _RequestMetrics:
    """TensorRT-LLM's ``nv_trt_llm_request_metrics`` gauges (labels model, version and
    request_type), set from the engine's counts by a small thread, so that the chart's
    autoscaling rule reads the CPU twin exactly as it reads the TensorRT-LLM backend."""

    def __init__(self, engine: InferenceEngine, model: str, version: str) -> None:
        self._engine = engine
        # The family must outlive its metrics (the stub refuses metrics of a deleted family).
        self._family = pb_utils.MetricFamily(
            name="nv_trt_llm_request_metrics",
            description="TRT LLM request metrics",
            kind=pb_utils.MetricFamily.GAUGE,
        )
        self._gauges = {
            kind: self._family.Metric(
                labels={"model": model, "version": version, "request_type": kind}
            )
            for kind in engine.counts.request_metrics()
        }
        self._last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="request-metrics", daemon=True)

    def start(self) -> None:
        self._publish()
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop.wait(_METRICS_PERIOD_S):
            try:
                self._publish()
            except Exception:  # the stub going away at shutdown; never kill the model for it
                logger.exception("could not update nv_trt_llm_request_metrics")

    def _publish(self) -> None:
        for kind, value in self._engine.counts.request_metrics().items():
            if self._last.get(kind) != value:  # one IPC message per change, none while idle
                self._gauges[kind].set(value)
                self._last[kind] = value


class _TritonLogHandler(logging.Handler):
    """Forwards the ``inference`` package's log records to Triton's log (debug as verbose)."""

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        if record.levelno >= logging.ERROR:
            pb_utils.Logger.log_error(message)
        elif record.levelno >= logging.WARNING:
            pb_utils.Logger.log_warn(message)
        elif record.levelno >= logging.INFO:
            pb_utils.Logger.log_info(message)
        else:
            pb_utils.Logger.log_verbose(message)


def _setup_logging(level: str) -> None:
    handler = _TritonLogHandler()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    for name in ("inference", __name__):
        package_logger = logging.getLogger(name)
        package_logger.addHandler(handler)
        package_logger.setLevel(level.upper())
        package_logger.propagate = False


def _parameter(parameters: dict[str, Any], key: str, default: str) -> str:
    """A config parameter's string value; unset or unfilled placeholders give ``default``."""
    value = str(parameters.get(key, {}).get("string_value", "")).strip()
    return default if not value or value.startswith("${") else value


def _guided_tokenizer_dir(parameters: dict[str, Any], model_dir: str) -> str | None:
    """The tokenizer for guided decoding, or None when it is off (as in TensorRT-LLM, only the
    ``xgrammar`` backend exists)."""
    backend = _parameter(parameters, "guided_decoding_backend", "").lower()
    if backend in ("", "none"):
        return None
    if backend != "xgrammar":
        raise pb_utils.TritonModelException(f"unknown guided_decoding_backend {backend!r}")
    return _parameter(parameters, "tokenizer_dir", model_dir)


def _guided_options(parameters: dict[str, Any]) -> GuidedOptions:
    """The guided_decoding_* parameters: limits, compile budget, workers and cache bounds."""
    defaults, limits = GuidedOptions(), GuideLimits()

    def number(key: str, default: int) -> int:
        return int(_parameter(parameters, f"guided_decoding_{key}", str(default)))

    return GuidedOptions(
        limits=GuideLimits(
            max_bytes=number("max_guide_bytes", limits.max_bytes),
            max_properties=number("max_properties", limits.max_properties),
            max_alternatives=number("max_alternatives", limits.max_alternatives),
            max_enum_values=number("max_enum_values", limits.max_enum_values),
        ),
        compile_budget_s=number("compile_budget_ms", int(defaults.compile_budget_s * 1000)) / 1000,
        compile_threads=number("compile_threads", defaults.compile_threads),
        cache_entries=number("cache_entries", defaults.cache_entries),
        cache_bytes=number("cache_bytes", defaults.cache_bytes),
    )


ENGINES = ("transformers", "llmapi")


def _make_engine(
    name: str, parameters: dict[str, Any], model_dir: str, args: dict[str, str]
) -> InferenceEngine:
    """The engine the ``engine`` parameter names; ``tensorrt_llm`` is imported only for llmapi."""
    cancel_period_s = int(_parameter(parameters, "cancellation_check_period_ms", "50")) / 1000
    if name == "transformers":
        return GenerationEngine.from_pretrained(
            model_dir,
            max_num_sequences=int(_parameter(parameters, "max_num_sequences", "8")),
            cancel_check_period_s=cancel_period_s,
            tokenizer_dir=_guided_tokenizer_dir(parameters, model_dir),
            guided_options=_guided_options(parameters),
        )
    if name == "llmapi":
        from inference.llmapi_engine import LLMAPIEngine, load_options

        # As in Triton's llmapi model, model.yaml sits in the version directory (1/).
        name_or_path = Path(_parameter(parameters, "llmapi_options", "model.yaml"))
        model_path = Path(args.get("model_repository", "."))
        version = str(args.get("model_version", "1"))
        candidates = [model_path / version / name_or_path, model_path / name_or_path]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise pb_utils.TritonModelException(f"LLM API options {name_or_path} not found")
        return LLMAPIEngine.from_options(model_dir, load_options(found), cancel_period_s)
    names = ", ".join(ENGINES)
    raise pb_utils.TritonModelException(f"unknown engine {name!r} (one of {names})")


class TritonPythonModel:
    """Decoupled model: one engine, one response per generated token when streaming."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the checkpoint named by the ``model_dir`` parameter and start the step loop."""
        config = json.loads(args["model_config"])
        if not pb_utils.using_decoupled_model_transaction_policy(config):
            raise pb_utils.TritonModelException("tensorrt_llm must be decoupled")
        parameters = config.get("parameters", {})
        _setup_logging(_parameter(parameters, "log_level", "INFO"))
        model_dir = _parameter(parameters, "model_dir", "")
        if not model_dir:
            raise pb_utils.TritonModelException("the model_dir parameter is not set")
        self._input_names = [tensor["name"] for tensor in config["input"]]
        exclude = _parameter(parameters, "exclude_input_in_output", "false")
        self._exclude_input = exclude.lower() in ("true", "1", "yes")
        engine_name = _parameter(parameters, "engine", "transformers").lower()
        self._engine = _make_engine(engine_name, parameters, model_dir, args)
        self._engine.start()
        self._metrics: _RequestMetrics | None = None
        try:
            metrics = _RequestMetrics(
                self._engine, args["model_name"], str(args.get("model_version", "1"))
            )
            metrics.start()
            self._metrics = metrics
        except Exception:  # e.g. tritonserver --allow-metrics=false: serve without the gauges
            logger.warning("nv_trt_llm_request_metrics unavailable", exc_info=True)
        logger.info("tensorrt_llm (%s engine) serving %s", engine_name, model_dir)

    def execute(self, requests: list[Any]) -> None:
        """Queue every request on the engine; responses are sent from the engine thread."""
        for request in requests:
            self._submit(request)

    def finalize(self) -> None:
        """Stop the step loop; requests still in flight get an error response."""
        if self._metrics is not None:
            self._metrics.close()
        self._engine.close()

    def _submit(self, request: Any) -> None:
        sender = request.get_response_sender()
        try:
            tensors = {
                name: tensor.as_numpy()
                for name in self._input_names
                if (tensor := pb_utils.get_input_tensor_by_name(request, name)) is not None
            }
            if wants_stop(tensors):
                self._engine.cancel(request.request_id())
                sender.send(flags=_FINAL)
                return
            parsed = parse_request(
                tensors, request.request_id(), self._engine.default_end_id, self._exclude_input
            )
            self._engine.submit(
                parsed.generation,
                sink=lambda output: _send(sender, parsed, output),
                is_cancelled=request.is_cancelled,
            )
        except INPUT_ERRORS as error:
            _send_error(sender, input_error_message(error), pb_utils.TritonError.INVALID_ARG)
        except Exception as error:
            logger.exception("could not queue request %r", request.request_id())
            _send_error(sender, f"internal error: {error}", pb_utils.TritonError.INTERNAL)


def _send(sender: Any, parsed: ParsedRequest, output: GenerationOutput) -> None:
    """Turn one engine output into a response (or a bare final flag when there is nothing)."""
    if output.error is not None:
        # A guide that does not compile (or not in time) is the request's own error.
        own = output.error.startswith(GUIDED_ERROR_PREFIX)
        code = pb_utils.TritonError.INVALID_ARG if own else pb_utils.TritonError.INTERNAL
        _send_error(sender, output.error, code)
        return
    flags = _FINAL if output.finished else 0
    if output.finished and not output.token_ids and parsed.generation.streaming:
        sender.send(flags=flags)
        return
    tensors = [
        pb_utils.Tensor(name, array) for name, array in response_arrays(output, parsed).items()
    ]
    sender.send(pb_utils.InferenceResponse(output_tensors=tensors), flags=flags)


def _send_error(sender: Any, message: str, code: int) -> None:
    error = pb_utils.TritonError(message, code)
    sender.send(pb_utils.InferenceResponse(output_tensors=[], error=error), flags=_FINAL)
