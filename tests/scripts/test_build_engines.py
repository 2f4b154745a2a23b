"""scripts/build_engines.py: dry runs of both backends, generated repositories, step stamps
(no TensorRT-LLM, no ModelOpt)."""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from google.protobuf import text_format
from tritonclient.grpc.model_config_pb2 import ModelConfig

from launcher.config_check import check_repository, repository_problems
from launcher.engine_plan import CommandStep, Layout
from launcher.engine_spec import Backend, load_spec
from launcher.llmapi_options import check_options_file, llmapi_options

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build_engines.py"
SPECS = ROOT / "engines" / "specs"
QWEN_FP8 = SPECS / "qwen2.5-7b-instruct.toml"
LLAMA_AWQ = SPECS / "llama-3.1-8b-instruct.toml"
SECTION = re.compile(r"^# ---- (.+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def build_engines() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_engines", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_engines"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _dry_run(spec: Path, tmp_path: Path, *extra: str) -> str:
    argv = [sys.executable, str(SCRIPT), str(spec), "--dry-run", "--deploy-root", "/models"]
    argv += ["--output", str(tmp_path / "out"), "--trtllm-examples", "/opt/trtllm/examples"]
    argv += ["--modelopt-examples", "/opt/modelopt/examples", *extra]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "out").exists(), "a dry run writes nothing"
    return done.stdout


def _sections(printed: str) -> dict[str, str]:
    """'# ---- <title>' headed sections of the dry run's output."""
    parts = SECTION.split(printed)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _command(printed: str, program: str) -> list[str]:
    line = next(line for line in printed.splitlines() if program in line.split(" ", 2)[:2])
    return line.split(" ")


@pytest.mark.parametrize(
    ("spec", "qformat", "extra"),
    [
        (QWEN_FP8, "fp8", ["--kv_cache_dtype", "fp8"]),
        (LLAMA_AWQ, "int4_awq", ["--awq_block_size", "128"]),
    ],
    ids=["qwen-fp8", "llama-int4-awq"],
)
def test_legacy_dry_run_prints_the_exact_commands(
    spec: Path, qformat: str, extra: list[str], tmp_path: Path
) -> None:
    printed = _dry_run(spec, tmp_path, "--backend", "trtllm")
    name = spec.stem
    quantize = _command(printed, "/opt/trtllm/examples/quantization/quantize.py")
    assert quantize[0] == sys.executable
    assert quantize[quantize.index("--qformat") + 1] == qformat
    assert " ".join(extra) in " ".join(quantize)
    build = _command(printed, "trtllm-build")
    checkpoint = str(tmp_path / "out" / name / "checkpoint")
    assert build[build.index("--checkpoint_dir") + 1] == checkpoint
    assert quantize[quantize.index("--output_dir") + 1] == checkpoint
    assert build[build.index("--kv_cache_type") + 1] == "paged"
    assert "[3/4] copy tokenizer files" in printed
    assert "backend trtllm" in printed.splitlines()[0]
    assert "hf_ptq.py" not in printed and "model.yaml" not in printed


@pytest.mark.parametrize("spec", [QWEN_FP8, LLAMA_AWQ], ids=["qwen-fp8", "llama-int4-awq"])
def test_legacy_dry_run_configs_parse_and_are_wired(spec: Path, tmp_path: Path) -> None:
    sections = _sections(_dry_run(spec, tmp_path, "--backend", "trtllm"))
    configs = {}
    for title, text in sections.items():
        if title.endswith("config.pbtxt"):
            config = text_format.Parse(text, ModelConfig())
            assert title.endswith(f"/{config.name}/config.pbtxt")
            configs[config.name] = config
    assert {"ensemble", "preprocessing", "tensorrt_llm", "postprocessing"} <= set(configs)
    assert repository_problems(configs) == []
    trtllm = configs["tensorrt_llm"]
    assert trtllm.backend == "tensorrtllm"
    assert trtllm.parameters["gpt_model_path"].string_value == f"/models/{spec.stem}/engine"
    assert "${" not in "".join(sections.values())
    served = json.loads(sections["served models (API_MODELS, helm servedModels)"])
    assert served[0]["id"] == spec.stem


def _configs(sections: dict[str, str]) -> dict[str, Any]:
    configs = {}
    for title, text in sections.items():
        if title.endswith("config.pbtxt"):
            config = text_format.Parse(text, ModelConfig())
            configs[config.name] = config
    return configs


def test_llmapi_dry_run_quantizes_with_modelopt(tmp_path: Path) -> None:
    printed = _dry_run(QWEN_FP8, tmp_path)
    assert "backend llmapi" in printed.splitlines()[0]
    quantize = _command(printed, "/opt/modelopt/examples/llm_ptq/hf_ptq.py")
    assert quantize[0] == sys.executable

    def option(flag: str) -> str:
        return quantize[quantize.index(flag) + 1]

    assert option("--pyt_ckpt_path") == "/models/hf/Qwen2.5-7B-Instruct"
    assert option("--qformat") == "fp8"
    assert option("--kv_cache_qformat") == "fp8"
    assert option("--calib_size") == "512"
    assert option("--export_path") == str(tmp_path / "out" / QWEN_FP8.stem / "model")
    assert "[2/3] copy tokenizer files" in printed and "[3/3] write model repository" in printed
    assert "trtllm-build" not in printed and "convert_checkpoint" not in printed


def test_llmapi_dry_run_copies_an_unquantized_checkpoint(tmp_path: Path) -> None:
    printed = _dry_run(SPECS / "text2sql-qwen2.5-coder-7b.toml", tmp_path)
    first = printed.splitlines()[1]
    assert first.startswith("# [1/3] copy checkpoint /models/hf/Qwen2.5-Coder-7B-Instruct -> ")
    assert "hf_ptq.py" not in printed


@pytest.mark.parametrize("spec", [QWEN_FP8, SPECS / "text2sql-qwen2.5-coder-7b.toml"])
def test_llmapi_dry_run_prints_the_repository_and_model_yaml(spec: Path, tmp_path: Path) -> None:
    sections = _sections(_dry_run(spec, tmp_path))
    root = tmp_path / "out" / spec.stem / "model_repository"
    configs = _configs(sections)
    assert repository_problems(configs) == []
    llm = configs["tensorrt_llm"]
    assert llm.backend == "python"
    parameters = {k: v.string_value for k, v in llm.parameters.items()}
    assert parameters["engine"] == "llmapi"
    assert parameters["model_dir"] == f"/models/{spec.stem}/model"
    assert parameters["llmapi_options"] == "model.yaml"
    options = yaml.safe_load(sections[str(root / "tensorrt_llm" / "1" / "model.yaml")])
    loaded = load_spec(spec)
    assert options == llmapi_options(loaded)
    assert options["max_batch_size"] == llm.max_batch_size == loaded.limits.max_batch_size
    assert "${" not in "".join(sections.values())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "tensorrt"], "invalid choice: 'tensorrt'"),
    ],
)
def test_unknown_backends_are_refused_by_the_command_line(
    argv: list[str], message: str, tmp_path: Path
) -> None:
    command = [sys.executable, str(SCRIPT), str(QWEN_FP8), "--dry-run", *argv]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('backend = "tensorrt"\n', "backend"),
        ('backend = "llmapi"\nbatch_size = 8\n', "batch_size"),
        ('backend = "llmapi"\n[llmapi]\nextra = { max_batch = 8 }\n', "'max_batch' is not"),
        ('backend = "llmapi"\nquantization = "int8_sq"\n', 'use backend = "trtllm"'),
        ('backend = "trtllm"\n', "family is required"),
    ],
    ids=["unknown-backend", "unknown-field", "unknown-llm-argument", "sq-on-llmapi", "no-family"],
)
def test_specs_with_unknown_backends_or_fields_fail_with_their_name(
    build_engines: ModuleType,
    text: str,
    message: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = tmp_path / "m.toml"
    spec.write_text(f'name = "m"\ncheckpoint = "/hf/m"\n{text}')
    assert build_engines.main([str(spec), "--dry-run", "--output", str(tmp_path / "o")]) == 2
    assert message in caplog.text
    assert not (tmp_path / "o").exists()


class _ImportRecorder(importlib.abc.MetaPathFinder):
    """Notes every attempt to import a module (and finds nothing itself)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        self.names.append(fullname)


def test_dry_run_and_configs_never_import_tensorrt_llm(
    build_engines: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _ImportRecorder()
    monkeypatch.setattr(sys, "meta_path", [recorder, *sys.meta_path])
    for backend in ("llmapi", "trtllm"):
        for mode in ("--dry-run", "--configs-only"):
            argv = [str(LLAMA_AWQ), mode, "--backend", backend, "--output", str(tmp_path)]
            assert build_engines.main(argv) == 0
    printed = capsys.readouterr().out
    assert "trtllm-build" in printed and "hf_ptq.py" in printed
    assert not [name for name in recorder.names if name.startswith("tensorrt_llm")]


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.toml")), ids=lambda p: p.stem)
def test_configs_only_writes_a_checked_repository(
    build_engines: ModuleType, spec: Path, tmp_path: Path
) -> None:
    argv = [str(spec), "--configs-only", "--output", str(tmp_path), "--deploy-root", "/models"]
    assert build_engines.main(argv) == 0
    repository = tmp_path / spec.stem / "model_repository"
    configs = check_repository([repository])
    parameters = configs["tensorrt_llm"].parameters
    if load_spec(spec).backend is Backend.LLMAPI:
        assert parameters["model_dir"].string_value == f"/models/{spec.stem}/model"
        options = check_options_file(repository / "tensorrt_llm" / "1" / "model.yaml")
        assert options["max_seq_len"] == load_spec(spec).limits.max_seq_len
    else:
        assert parameters["gpt_model_path"].string_value == f"/models/{spec.stem}/engine"
    tokenizer = f"/models/{spec.stem}/tokenizer"
    assert configs["preprocessing"].parameters["tokenizer_dir"].string_value == tokenizer
    assert configs["postprocessing"].parameters["tokenizer_dir"].string_value == tokenizer
    served = json.loads((tmp_path / spec.stem / "served_models.json").read_text())
    assert served[0]["triton_model"] == "ensemble"
    # Idempotent: a second run writes the same files.
    before = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    assert build_engines.main(argv) == 0
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == before


def test_a_real_build_needs_tensorrt_llm(
    build_engines: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if importlib.util.find_spec("tensorrt_llm") is not None:
        pytest.skip("tensorrt_llm is installed: a real build would start")
    checkpoint = tmp_path / "hf"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    spec = tmp_path / "m.toml"
    spec.write_text(
        f'name = "m"\nbackend = "trtllm"\nfamily = "llama"\ncheckpoint = "{checkpoint}"\n'
    )
    assert build_engines.main([str(spec), "--output", str(tmp_path / "out")]) == 2
    assert "tensorrt-llm is not installed" in caplog.text
    assert not (tmp_path / "out" / "m" / "model_repository").exists()


def _counting_step(tmp_path: Path, exit_code: int = 0) -> CommandStep:
    """A real command that fills its output and counts its runs."""
    output = tmp_path / "m" / "engine"
    script = (
        "import pathlib, sys; out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True);"
        "(out / 'rank0.engine').write_text('x');"
        "runs = pathlib.Path(sys.argv[2]); runs.write_text(runs.read_text() + '.');"
        f"sys.exit({exit_code})"
    )
    (tmp_path / "runs").write_text("")
    argv = (sys.executable, "-c", script, str(output), str(tmp_path / "runs"))
    return CommandStep("build engine", argv, output)


def test_steps_rerun_only_when_their_inputs_change(
    build_engines: ModuleType, tmp_path: Path
) -> None:
    step, layout = _counting_step(tmp_path), Layout(tmp_path / "m", tmp_path / "m")
    first = build_engines.run_step(step, layout, "upstream", "[2/4]", False)
    assert build_engines.run_step(step, layout, "upstream", "[2/4]", False) == first
    assert (tmp_path / "runs").read_text() == "."
    assert build_engines.run_step(step, layout, "changed", "[2/4]", False) != first
    build_engines.run_step(step, layout, "changed", "[2/4]", True)
    assert (tmp_path / "runs").read_text() == "..."
    assert (step.output / "rank0.engine").is_file()


def test_a_failed_step_leaves_no_stamp(build_engines: ModuleType, tmp_path: Path) -> None:
    step, layout = _counting_step(tmp_path, exit_code=3), Layout(tmp_path / "m", tmp_path / "m")
    with pytest.raises(build_engines.BuildError, match="exit code 3"):
        build_engines.run_step(step, layout, "upstream", "[2/4]", False)
    assert not (layout.root / ".build" / "engine.json").exists()


def test_tokenizer_files_are_copied_without_weights(
    build_engines: ModuleType, tmp_path: Path
) -> None:
    copied = build_engines.copy_tokenizer(ROOT / "models" / "tiny-chat", tmp_path / "tokenizer")
    names = {p.name for p in copied.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "config.json"} <= names
    assert not any(name.endswith(".safetensors") for name in names)
