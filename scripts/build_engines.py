"""Prepare TensorRT-LLM deployments from model specs and write each model's Triton repository.

Every spec (`engines/specs/*.toml`, see launcher/engine_spec.py) names its `backend`:

llmapi (default; TensorRT-LLM's LLM API on its PyTorch backend, current Triton containers):
  1. prepare the model directory `<name>/model`: ModelOpt's examples/llm_ptq/hf_ptq.py exports
     a quantized Hugging Face checkpoint (fp8, int4_awq, w4a8_awq), or the checkpoint is copied
     as it is (unquantized, or `prequantized = true`: already in the spec's format);
  2. copy the tokenizer files (no weights);
  3. write `model_repository/` with the llm_llmapi tensorrt_llm model and its `1/model.yaml` of
     LLM() arguments (launcher/llmapi_options.py), and check both.

trtllm (legacy TensorRT engines, for pinned older containers with the C++ backend):
  1. convert (or quantize) the checkpoint: examples/models/core/<family>/convert_checkpoint.py,
     or examples/quantization/quantize.py for fp8 / AWQ / SmoothQuant;
  2. `trtllm-build` the engine with the spec's limits and paged KV cache;
  3. copy the tokenizer files and write the xgrammar tokenizer info;
  4. write `model_repository/` (llm_trtllm's tensorrt_llm) and check it.

Paths inside the configs are the ones the serving container sees: `--deploy-root /models` when
the output directory is mounted there (the Helm chart's default). Command steps are skipped when
their output was built by the same command before (a stamp under `<name>/.build/`), so rerunning
is cheap; `--force` rebuilds. `--dry-run` prints the exact commands and every resulting file
(configs, model.yaml) and changes nothing; `--configs-only` writes only the model repositories.
`--backend` overrides the specs' own. TensorRT-LLM is imported only by a real trtllm build; an
llmapi build needs ModelOpt only when it quantizes.

Usage::

    python scripts/build_engines.py engines/specs/qwen2.5-7b-instruct.toml [more specs] \\
        [--output .cache/engines] [--deploy-root /models] [--backend llmapi|trtllm] \\
        [--modelopt-examples DIR] [--trtllm-examples DIR] [--dry-run | --configs-only] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.checkpoint_files import checkpoint_quantization, copy_checkpoint, tree_fingerprint
from launcher.config_check import check_repository
from launcher.engine_plan import (
    WEIGHT_SUFFIXES,
    XGRAMMAR_TOKENIZER_INFO,
    CommandStep,
    Layout,
    Tools,
    build_step,
    convert_step,
    hf_quantize_step,
    quantizes,
    repository_models,
    served_models,
    template_values,
)
from launcher.engine_spec import Backend, EngineSpec, load_spec
from launcher.llmapi_options import OPTIONS_NAME, check_options_file, write_options
from launcher.repository import CONFIG_NAME, render_models

logger = logging.getLogger("build_engines")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HEARTBEAT_S = 60.0
STEPS = {Backend.LLMAPI: 3, Backend.TRTLLM: 4}


class BuildError(RuntimeError):
    """A step cannot run or failed; the message says which and why."""


@dataclass(frozen=True)
class Options:
    """What one invocation does, from the command line."""

    specs: tuple[Path, ...]
    backend: Backend | None
    output: Path
    deploy_root: Path | None
    templates: Path
    tools: Tools
    dry_run: bool
    configs_only: bool
    force: bool


def write_repository(spec: EngineSpec, layout: Layout, templates: Path, destination: Path) -> Path:
    """Render this spec's model repository into `destination` and check its wiring."""
    models = repository_models(spec, templates)
    render_models(models, destination, template_values(spec, layout, checkpoint_vocab_size(spec)))
    check_repository([destination])
    if spec.backend is Backend.LLMAPI:
        check_options_file(write_options(spec, destination / "tensorrt_llm"))
    return destination


def print_plan(spec: EngineSpec, layout: Layout, options: Options, source: Path) -> None:
    """The dry run: every step and command exactly as it would run, then every written file."""
    out = sys.stdout
    out.write(f"# {spec.name} (spec {source}, backend {spec.backend.value})\n")
    steps = STEPS[spec.backend]
    if spec.backend is Backend.LLMAPI:
        out.write(f"# [1/{steps}] {_model_step_title(spec, layout)}\n")
        if quantizes(spec):
            out.write(shlex.join(hf_quantize_step(spec, layout, options.tools).argv) + "\n")
    else:
        for number, step in enumerate(_command_steps(spec, layout, options.tools), start=1):
            out.write(f"# [{number}/{steps}] {step.title} -> {step.output}\n")
            out.write(shlex.join(step.argv) + "\n")
    out.write(f"# [{steps - 1}/{steps}] copy tokenizer files (no weights) ")
    out.write(f"{spec.tokenizer_source} -> {layout.tokenizer}\n")
    out.write(f"# [{steps}/{steps}] write model repository -> {layout.repository}\n")
    with tempfile.TemporaryDirectory(prefix="build-engines-") as scratch:
        rendered = write_repository(spec, layout, options.templates, Path(scratch) / "repo")
        written = [*rendered.glob(f"*/{CONFIG_NAME}"), *rendered.glob(f"*/1/{OPTIONS_NAME}")]
        for path in sorted(written):
            out.write(f"# ---- {layout.repository / path.relative_to(rendered)}\n")
            out.write(path.read_text(encoding="utf-8").rstrip("\n") + "\n")
    out.write("# ---- served models (API_MODELS, helm servedModels)\n")
    out.write(json.dumps(served_models(spec), indent=2) + "\n")


def _model_step_title(spec: EngineSpec, layout: Layout) -> str:
    if quantizes(spec):
        return f"quantize ({spec.quantization.value}, ModelOpt) -> {layout.model}"
    kind = f"pre-quantized ({spec.quantization.value}) " if spec.prequantized else ""
    return f"copy {kind}checkpoint {spec.checkpoint} -> {layout.model}"


def _command_steps(spec: EngineSpec, layout: Layout, tools: Tools) -> list[CommandStep]:
    return [convert_step(spec, layout, tools), build_step(spec, layout, tools)]


def build(spec: EngineSpec, layout: Layout, options: Options) -> None:
    """Run every step before the repository for one spec; steps whose stamp matches are skipped."""
    if not (spec.checkpoint / "config.json").is_file():
        raise BuildError(f"{spec.name}: {spec.checkpoint} is not a Hugging Face checkpoint")
    if spec.world_size > 1:
        logger.warning(
            "%s spans %d GPUs: the Triton pod needs that many (the Helm chart pins one GPU per "
            "deployment)",
            spec.name,
            spec.world_size,
        )
    if spec.backend is Backend.LLMAPI:
        prepare_model(spec, layout, options)
    else:
        build_engine(spec, layout, options)


def prepare_model(spec: EngineSpec, layout: Layout, options: Options) -> None:
    """llmapi: the Hugging Face checkpoint under `<name>/model`, then the tokenizer."""
    declared = checkpoint_quantization(spec.checkpoint)
    if spec.prequantized and declared is None:
        raise BuildError(
            f"{spec.name}: prequantized = true, but {spec.checkpoint} declares no quantization "
            f"(no hf_quant_config.json, no quantization_config in config.json)"
        )
    if not spec.prequantized and declared is not None:
        raise BuildError(
            f"{spec.name}: {spec.checkpoint} is already quantized ({declared}); set "
            f"prequantized = true and quantization to its format, or start from the bf16 one"
        )
    label = "[1/3]"
    if quantizes(spec):
        step = hf_quantize_step(spec, layout, options.tools)
        _check_modelopt(step)
        run_step(step, layout, f"modelopt {_modelopt_version()}", label, options.force)
    else:
        step = CommandStep(
            _model_step_title(spec, layout), ("copy", str(spec.checkpoint)), layout.model
        )
        fingerprint = tree_fingerprint(spec.checkpoint)
        stamp = layout.root / ".build" / "model.json"
        if not options.force and _stamped(stamp) == fingerprint and layout.model.is_dir():
            logger.info("%s %s: up to date", label, step.title)
        else:
            logger.info("%s %s", label, step.title)
            stamp.unlink(missing_ok=True)
            copy_checkpoint(spec.checkpoint, layout.model, label)
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(json.dumps({"fingerprint": fingerprint, "argv": step.argv}))
    logger.info("[2/3] copying tokenizer files to %s", layout.tokenizer)
    copy_tokenizer(spec.tokenizer_source, layout.tokenizer)


def _check_modelopt(step: CommandStep) -> None:
    script = Path(step.argv[1])
    if not script.is_file():
        raise BuildError(
            f"ModelOpt's {script.name} not found at {script}: pass --modelopt-examples (or "
            "MODELOPT_EXAMPLES_DIR) pointing at examples/ of NVIDIA/Model-Optimizer, or use a "
            "pre-quantized checkpoint (prequantized = true)"
        )


def _modelopt_version() -> str:
    spec = importlib.util.find_spec("modelopt")
    if spec is None:
        raise BuildError(
            "nvidia-modelopt is not installed: quantize on a GPU host (e.g. in the image of "
            "docker/triton.Dockerfile), or use --dry-run / --configs-only"
        )
    return importlib.metadata.version("nvidia-modelopt")


def build_engine(spec: EngineSpec, layout: Layout, options: Options) -> None:
    """trtllm: convert or quantize, trtllm-build, then tokenizer and xgrammar info."""
    version = _tensorrt_llm_version()
    _check_sources(spec, options.tools)
    fingerprint = f"tensorrt_llm {version}"
    for number, step in enumerate(_command_steps(spec, layout, options.tools), start=1):
        fingerprint = run_step(step, layout, fingerprint, f"[{number}/4]", options.force)
    logger.info("[3/4] copying tokenizer files to %s", layout.tokenizer)
    copy_tokenizer(spec.tokenizer_source, layout.tokenizer)
    write_xgrammar_tokenizer_info(layout.tokenizer, layout.tokenizer / XGRAMMAR_TOKENIZER_INFO)


def _tensorrt_llm_version() -> str:
    try:
        import tensorrt_llm  # heavy, GPU-only: imported only for a real build
    except ImportError as exc:
        raise BuildError(
            "tensorrt-llm is not installed: build on a GPU host (e.g. in the image of "
            "docker/triton.Dockerfile), or use --dry-run / --configs-only"
        ) from exc
    version = str(getattr(tensorrt_llm, "__version__", "unknown"))
    logger.info("tensorrt_llm %s", version)
    return version


def _check_sources(spec: EngineSpec, tools: Tools) -> None:
    if not tools.examples_dir.is_dir():
        raise BuildError(
            f"TensorRT-LLM examples not found at {tools.examples_dir}: pass --trtllm-examples "
            "(or TRTLLM_EXAMPLES_DIR) pointing at examples/ of the TensorRT-LLM release that "
            "matches the installed tensorrt_llm"
        )
    if shutil.which(tools.trtllm_build) is None:
        raise BuildError(f"{tools.trtllm_build} is not on PATH")


def run_step(step: CommandStep, layout: Layout, upstream: str, label: str, force: bool) -> str:
    """Run one command unless its stamp says the same command already filled its output.

    Returns this step's fingerprint (it covers every step before it, so a changed conversion
    rebuilds the engine too).
    """
    fingerprint = hashlib.sha256(json.dumps([upstream, step.argv]).encode()).hexdigest()
    stamp = layout.root / ".build" / f"{step.output.name}.json"
    if not force and _stamped(stamp) == fingerprint:
        logger.info("%s %s: up to date (%s)", label, step.title, step.output)
        return fingerprint
    stamp.unlink(missing_ok=True)
    shutil.rmtree(step.output, ignore_errors=True)  # no stale ranks from another TP size
    logger.info("%s %s: %s", label, step.title, shlex.join(step.argv))
    started = time.monotonic()
    code = _run_with_heartbeat(step, label, started)
    if code != 0:
        raise BuildError(f"{step.title} failed with exit code {code}")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"fingerprint": fingerprint, "argv": step.argv}, indent=2))
    logger.info("%s %s: done in %s", label, step.title, _elapsed(started))
    return fingerprint


def _stamped(stamp: Path) -> str | None:
    """The fingerprint a finished step left, if any."""
    if not stamp.is_file():
        return None
    fingerprint = json.loads(stamp.read_text()).get("fingerprint")
    return fingerprint if isinstance(fingerprint, str) else None


def _run_with_heartbeat(step: CommandStep, label: str, started: float) -> int:
    # The tools print their own progress; calibration and engine building can be silent for
    # minutes, so say regularly that the step is still alive.
    with subprocess.Popen(step.argv) as process:
        while True:
            try:
                return process.wait(timeout=HEARTBEAT_S)
            except subprocess.TimeoutExpired:
                logger.info("%s %s: still running (%s)", label, step.title, _elapsed(started))


def _elapsed(started: float) -> str:
    seconds = int(time.monotonic() - started)
    return f"{seconds // 60}m{seconds % 60:02d}s"


def checkpoint_vocab_size(spec: EngineSpec) -> int:
    """`vocab_size` of the Hugging Face checkpoint's config.json; 0 when it has none."""
    try:
        config = json.loads((spec.checkpoint / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    value = config.get("vocab_size") if isinstance(config, dict) else None
    return value if isinstance(value, int) and value > 0 else 0


def xgrammar_tokenizer_info(tokenizer_dir: Path) -> dict[str, Any]:
    """What the C++ backend's guided decoding reads from `xgrammar_tokenizer_info_path`.

    The keys are the ones tensorrtllm_backend v0.19.0 getGuidedDecodingConfigFromParams()
    (inflight_batcher_llm/src/model_instance_state.cc) parses: `encoded_vocab` (every token
    string in id order), `tokenizer_str` (the fast tokenizer's JSON, which xgrammar uses to
    detect the vocabulary's encoding) and `stop_token_ids`; the values are built as
    TensorRT-LLM's `_xgrammar_tokenizer_info()` (tensorrt_llm/llmapi/tokenizer.py) builds them.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise BuildError(
            f"{tokenizer_dir}: guided decoding needs a fast (tokenizer.json) tokenizer"
        )
    if not isinstance(tokenizer.eos_token_id, int):
        raise BuildError(f"{tokenizer_dir}: the tokenizer defines no eos token")
    vocab = tokenizer.get_vocab()
    return {
        "encoded_vocab": [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])],
        "tokenizer_str": tokenizer.backend_tokenizer.to_str(),
        "stop_token_ids": [tokenizer.eos_token_id],
    }


def write_xgrammar_tokenizer_info(tokenizer_dir: Path, path: Path) -> Path:
    """Write `xgrammar_tokenizer_info(tokenizer_dir)` as JSON to `path`."""
    path.write_text(json.dumps(xgrammar_tokenizer_info(tokenizer_dir)), encoding="utf-8")
    return path


def copy_tokenizer(source: Path, destination: Path) -> Path:
    """Copy a checkpoint's top-level files except weights (tokenizer, configs, chat template)."""
    files = [p for p in sorted(source.iterdir()) if p.is_file()]
    kept = [p for p in files if p.suffix not in WEIGHT_SUFFIXES]
    if not any(p.name.startswith("tokenizer") for p in kept):
        raise BuildError(f"{source} has no tokenizer files")
    staging = destination.with_name(destination.name + ".copying")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for path in kept:
        shutil.copy2(path, staging / path.name)
    shutil.rmtree(destination, ignore_errors=True)
    staging.rename(destination)
    return destination


def process(spec_path: Path, options: Options) -> None:
    """Dry-run, configure or build one spec."""
    spec = load_spec(spec_path, options.backend)
    layout = Layout.for_spec(spec, options.output, options.deploy_root)
    if options.dry_run:
        print_plan(spec, layout, options, spec_path)
        return
    logger.info("%s: backend %s, output %s", spec.name, spec.backend.value, layout.root)
    if not options.configs_only:
        build(spec, layout, options)
    steps = STEPS[spec.backend]
    logger.info("[%d/%d] writing model repository %s", steps, steps, layout.repository)
    write_repository(spec, layout, options.templates, layout.repository)
    (layout.root / "served_models.json").write_text(json.dumps(served_models(spec), indent=2))
    logger.info("%s ready: %s", spec.name, layout.root)


def parse_options(argv: Sequence[str] | None) -> Options:
    """Command line -> Options (environment defaults are read here, at the edge)."""
    parser = argparse.ArgumentParser(
        prog="build_engines.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("specs", nargs="+", type=Path, help="model spec files (.toml/.yaml)")
    parser.add_argument(
        "--backend",
        choices=[b.value for b in Backend],
        help="override the specs' backend (llmapi: LLM API, default; trtllm: legacy engines)",
    )
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / ".cache" / "engines")
    parser.add_argument(
        "--deploy-root", type=Path, help="where --output is mounted when served (e.g. /models)"
    )
    parser.add_argument(
        "--trtllm-examples",
        type=Path,
        default=Path(os.environ.get("TRTLLM_EXAMPLES_DIR", "TensorRT-LLM/examples")),
        help="examples/ of the TensorRT-LLM release matching the installed tensorrt_llm",
    )
    parser.add_argument(
        "--modelopt-examples",
        type=Path,
        default=Path(os.environ.get("MODELOPT_EXAMPLES_DIR", "Model-Optimizer/examples")),
        help="examples/ of NVIDIA/Model-Optimizer (llmapi quantization: llm_ptq/hf_ptq.py)",
    )
    parser.add_argument("--templates", type=Path, default=PROJECT_ROOT / "model_repository")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print commands and configs only")
    mode.add_argument("--configs-only", action="store_true", help="write only model repositories")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    if args.deploy_root is not None and not args.deploy_root.is_absolute():
        parser.error("--deploy-root must be an absolute path")
    return Options(
        specs=tuple(args.specs),
        backend=Backend(args.backend) if args.backend else None,
        output=args.output.resolve(),
        deploy_root=args.deploy_root,
        templates=args.templates.resolve(),
        tools=Tools(
            python=sys.executable,
            examples_dir=args.trtllm_examples.resolve(),
            modelopt_examples_dir=args.modelopt_examples.resolve(),
        ),
        dry_run=args.dry_run,
        configs_only=args.configs_only,
        force=args.force,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit code 0 on success, 2 when a spec or step fails."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options = parse_options(argv)
    try:
        for spec_path in options.specs:
            process(spec_path, options)
    except (BuildError, ValueError, OSError) as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
