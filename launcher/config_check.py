"""Check rendered `config.pbtxt` files the way Triton will read them.

Every config must parse as Triton's `ModelConfig` protobuf (the copy tritonclient ships) and
name its own directory. Every ensemble must be wired consistently: each step's model exists,
every mapped tensor exists on both sides with the same data type and compatible dims, every
required input is fed, no tensor is produced twice, the steps form no cycle and every ensemble
output is produced. Triton finds most of these only when it loads the repository, on a GPU host,
minutes into a deployment; this module finds them on any machine.

`python -m launcher.config_check ROOT [ROOT ...]` checks rendered repository roots.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from tritonclient.grpc.model_config_pb2 import DataType, ModelConfig

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.pbtxt"


class ConfigCheckError(ValueError):
    """A config does not parse, or a repository has wiring problems (one per line)."""


@dataclass(frozen=True)
class Tensor:
    """One input or output of a model as the ensemble sees it."""

    data_type: int
    dims: tuple[int, ...]
    optional: bool = False

    def describe(self) -> str:
        """E.g. `TYPE_INT32 [2, -1]`."""
        return f"{DataType.Name(self.data_type)} {list(self.dims)}"


def parse_config(path: Path) -> Any:
    """Parse one config.pbtxt as `ModelConfig`; its `name` must be its directory's name."""
    try:
        config = text_format.Parse(path.read_text(encoding="utf-8"), ModelConfig())
    except text_format.ParseError as exc:
        raise ConfigCheckError(f"{path}: not a valid ModelConfig: {exc}") from exc
    if config.name != path.parent.name:
        raise ConfigCheckError(f"{path}: name {config.name!r} differs from its directory")
    return config


def load_repository(roots: Iterable[Path]) -> dict[str, Any]:
    """Parse every config of the given repository roots, keyed by model name.

    A model name defined in two roots is an error: Triton refuses to load either.
    """
    configs: dict[str, Any] = {}
    for root in roots:
        for path in sorted(root.glob(f"*/{CONFIG_NAME}")):
            config = parse_config(path)
            if config.name in configs:
                raise ConfigCheckError(f"{path}: model {config.name!r} is defined twice")
            configs[config.name] = config
    return configs


def tensors(items: Iterable[Any]) -> dict[str, Tensor]:
    """`ModelInput` / `ModelOutput` messages as name -> Tensor."""
    return {
        t.name: Tensor(t.data_type, tuple(t.dims), bool(getattr(t, "optional", False)))
        for t in items
    }


def dims_compatible(a: Sequence[int], b: Sequence[int]) -> bool:
    """Same rank, and every dimension equal or variable (-1) on either side."""
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b, strict=True))


def ensemble_problems(name: str, configs: Mapping[str, Any]) -> list[str]:
    """Everything wrong with the wiring of ensemble `name`; empty when it is consistent."""
    ensemble = configs[name]
    steps = list(ensemble.ensemble_scheduling.step)
    missing = [s.model_name for s in steps if s.model_name not in configs]
    if missing:
        return [f"{name}: step model(s) {missing} are not in the repository"]
    problems: list[str] = []
    produced = _produced_tensors(name, ensemble, steps, configs, problems)
    for step in steps:
        problems.extend(_step_input_problems(name, step, configs[step.model_name], produced))
        problems.extend(_batch_size_problems(name, ensemble, configs[step.model_name]))
    for out_name, out in tensors(ensemble.output).items():
        source = produced.get(out_name)
        if source is None:
            problems.append(f"{name}: output {out_name} is not produced by any step")
        elif source[1].data_type != out.data_type or not dims_compatible(source[1].dims, out.dims):
            problems.append(
                f"{name}: output {out_name} is {out.describe()} but {source[0]} produces "
                f"{source[1].describe()}"
            )
    if not problems:
        problems.extend(_cycle_problems(name, steps))
    return problems


def _produced_tensors(
    name: str, ensemble: Any, steps: Sequence[Any], configs: Mapping[str, Any], problems: list[str]
) -> dict[str, tuple[str, Tensor]]:
    """Ensemble tensor name -> (who produces it, its type), from the inputs and every step."""
    produced = {key: (f"{name} input", t) for key, t in tensors(ensemble.input).items()}
    for step in steps:
        outputs = tensors(configs[step.model_name].output)
        for key, value in step.output_map.items():
            if key not in outputs:
                problems.append(f"{name}: {step.model_name} has no output {key}")
            elif value in produced:
                problems.append(f"{name}: tensor {value} is produced twice")
            else:
                produced[value] = (f"{step.model_name}.{key}", outputs[key])
    return produced


def _step_input_problems(
    name: str, step: Any, model: Any, produced: Mapping[str, tuple[str, Tensor]]
) -> list[str]:
    problems: list[str] = []
    inputs = tensors(model.input)
    for key, value in step.input_map.items():
        target, source = inputs.get(key), produced.get(value)
        if target is None:
            problems.append(f"{name}: {step.model_name} has no input {key}")
        elif source is None:
            problems.append(f"{name}: {step.model_name}.{key} <- unknown tensor {value}")
        elif source[1].data_type != target.data_type or not dims_compatible(
            source[1].dims, target.dims
        ):
            problems.append(
                f"{name}: {step.model_name}.{key} is {target.describe()} but {value} "
                f"({source[0]}) is {source[1].describe()}"
            )
    unfed = sorted(k for k, t in inputs.items() if not t.optional and k not in step.input_map)
    if unfed:
        problems.append(f"{name}: required input(s) {unfed} of {step.model_name} are not fed")
    return problems


def _batch_size_problems(name: str, ensemble: Any, model: Any) -> list[str]:
    # Triton batches the composing models with the ensemble's batch: each must accept it.
    if 0 < model.max_batch_size < ensemble.max_batch_size:
        return [
            f"{name}: {model.name} max_batch_size {model.max_batch_size} is below the "
            f"ensemble's {ensemble.max_batch_size}"
        ]
    return []


def _cycle_problems(name: str, steps: Sequence[Any]) -> list[str]:
    """Steps run when all their inputs exist; a step that never can is part of a cycle."""
    pending = list(steps)
    available: set[str] = set()
    producers = {value for step in steps for value in step.output_map.values()}
    while pending:
        ready = [
            s
            for s in pending
            if all(v in available or v not in producers for v in s.input_map.values())
        ]
        if not ready:
            return [f"{name}: steps {[s.model_name for s in pending]} depend on each other"]
        for step in ready:
            available.update(step.output_map.values())
            pending.remove(step)
    return []


@dataclass(frozen=True)
class BackendContract:
    """What one version of a Triton backend needs from a model config to load it."""

    source: str
    # Parameters the backend reads without a default: a config lacking one does not load.
    parameters: tuple[str, ...]
    inputs: Mapping[str, int]
    outputs: Mapping[str, int]


# The legacy C++ TensorRT-LLM backend (backend: "tensorrtllm"), read from its sources:
# every `model_state_->GetParameter<...>("...")` outside a try/catch in
# inflight_batcher_llm/src/model_instance_state.cc and model_state.cc (`gpt_model_type` in
# getBatchingTypeFromParams(); the guided-decoding three in getGuidedDecodingConfigFromParams();
# `gpt_model_path` is caught, but without it or `encoder_model_path` the instance refuses to
# start), and the tensors of InputFieldsNames/OutputFieldsNames in utils.h that every request
# and response carries. tensorrtllm_backend v0.17.0 (Triton 25.01-25.02) reads the same minus
# the guided-decoding three; v0.19.0 added them and TensorRT-LLM's triton_backend/ kept them
# until the backend's removal.
TENSORRTLLM_BACKEND = BackendContract(
    source=(
        "triton-inference-server/tensorrtllm_backend v0.19.0 "
        "(c1e19638304d287f554f738c1411746555ed348c), inflight_batcher_llm/src/"
        "{model_instance_state.cc,model_state.cc,utils.h}; same reads in NVIDIA/TensorRT-LLM "
        "triton_backend/inflight_batcher_llm/src/model_instance_state.cc "
        "(0c8de69a1ca6213eebb20a51873890ff128666c2)"
    ),
    parameters=(
        "gpt_model_type",
        "gpt_model_path",
        "tokenizer_dir",
        "xgrammar_tokenizer_info_path",
        "guided_decoding_backend",
    ),
    inputs={
        "input_ids": DataType.TYPE_INT32,
        "input_lengths": DataType.TYPE_INT32,
        "request_output_len": DataType.TYPE_INT32,
    },
    outputs={
        "output_ids": DataType.TYPE_INT32,
        "sequence_length": DataType.TYPE_INT32,
    },
)
BACKEND_CONTRACTS: Mapping[str, BackendContract] = {"tensorrtllm": TENSORRTLLM_BACKEND}


def backend_problems(config: Any) -> list[str]:
    """What `config` lacks that its backend (when it has a known contract) needs to load."""
    contract = BACKEND_CONTRACTS.get(config.backend)
    if contract is None:
        return []
    name, problems = config.name, []
    missing = [p for p in contract.parameters if p not in config.parameters]
    if missing:
        problems.append(f"{name}: backend {config.backend} needs parameter(s) {missing}")
    for kind, declared, needed in (
        ("input", tensors(config.input), contract.inputs),
        ("output", tensors(config.output), contract.outputs),
    ):
        for tensor_name, data_type in needed.items():
            found = declared.get(tensor_name)
            if found is None:
                problems.append(f"{name}: backend {config.backend} needs {kind} {tensor_name}")
            elif found.data_type != data_type:
                problems.append(
                    f"{name}: {kind} {tensor_name} is {found.describe()}, backend "
                    f"{config.backend} needs {DataType.Name(data_type)}"
                )
    return problems


def repository_problems(configs: Mapping[str, Any]) -> list[str]:
    """Wiring problems of every ensemble in `configs`, and what each backend lacks."""
    names = sorted(n for n, c in configs.items() if c.platform == "ensemble")
    problems = [problem for name in names for problem in ensemble_problems(name, configs)]
    return problems + [p for name in sorted(configs) for p in backend_problems(configs[name])]


def check_repository(roots: Iterable[Path]) -> dict[str, Any]:
    """Parse and check the given roots; raise `ConfigCheckError` listing every problem."""
    configs = load_repository(roots)
    problems = repository_problems(configs)
    if problems:
        raise ConfigCheckError("\n".join(problems))
    return configs


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: exit 0 when every root parses and every ensemble is wired consistently."""
    parser = argparse.ArgumentParser(prog="python -m launcher.config_check", description=__doc__)
    parser.add_argument("roots", nargs="+", type=Path, help="rendered repository roots")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        configs = check_repository(args.roots)
    except ConfigCheckError as exc:
        logger.error("%s", exc)
        return 1
    logger.info("%d model configs parse and are wired consistently", len(configs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
