"""docker/*.Dockerfile, checked without a Docker engine: base images, users, copied files."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRITON = ROOT / "docker" / "triton.Dockerfile"
API = ROOT / "docker" / "api.Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or (not line.strip() and not pending):
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            keyword, _, args = pending.strip().partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip()))
            pending = ""
    assert not pending, f"{path}: dangling continuation line"
    return instructions


def base_images(instructions: list[Instruction]) -> list[str]:
    """FROM images with the global ARG defaults substituted."""
    args: dict[str, str] = {}
    images = []
    for instruction in instructions:
        if instruction.keyword == "ARG" and not images and "=" in instruction.args:
            name, _, value = instruction.args.partition("=")
            args[name] = value
        if instruction.keyword == "FROM":
            image = instruction.args.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


def copied_sources(instructions: list[Instruction]) -> list[str]:
    """Sources of COPY/ADD from the build context (not from another stage)."""
    sources = []
    for instruction in instructions:
        if instruction.keyword in {"COPY", "ADD"} and "--from" not in instruction.args:
            parts = [p for p in instruction.args.split() if not p.startswith("--")]
            sources += parts[:-1]
    return sources


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path", [TRITON, API], ids=["triton", "api"])
def test_every_copied_file_exists_and_is_in_the_context(path: Path) -> None:
    ignored = dockerignore()
    for source in copied_sources(parse(path)):
        assert (ROOT / source).exists(), f"{path.name} copies missing {source}"
        first = source.rstrip("/").split("/")[0]
        assert not any(fnmatch.fnmatch(first, pattern) for pattern in ignored), (
            f"{path.name} copies {source}, which .dockerignore leaves out of the context"
        )


def test_triton_image_is_nvidias_trtllm_image_plus_the_models() -> None:
    instructions = parse(TRITON)
    (image,) = base_images(instructions)
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d{2}\.\d{2}-trtllm-python-py3", image)
    sources = copied_sources(instructions)
    assert {"model_repository/", "inference/", "launcher/"} <= set(sources)
    run = " ".join(i.args for i in instructions if i.keyword == "RUN")
    assert 'install -c /tmp/nvidia-pins.txt -e ".[models]"' in run


# Triton's compatibility matrix (triton-inference-server/server docs/introduction/
# compatibility.md at 0f963c9a8c6913aa4cd9b57ee04f9c2b76ee8d2a): trtllm-python-py3 tag ->
# TensorRT-LLM version, for the tags this project names.
TRTLLM_OF_TAG = {"25.01": (0, 17), "25.05": (0, 19), "25.10": (1, 0), "26.07": (1, 2)}


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    """ARG defaults declared before the first FROM."""
    args: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG" and "=" in instruction.args:
            name, _, value = instruction.args.partition("=")
            args[name] = value
    return args


def test_triton_image_defaults_to_a_container_with_the_llm_api() -> None:
    args = global_args(parse(TRITON))
    # The LLM API on the PyTorch backend with cuda_graph_config and KvCacheConfig.dtype:
    # TensorRT-LLM 1.x; 0.17 (25.01) predates seed, min_tokens and guided decoding.
    assert TRTLLM_OF_TAG[args["TRITON_VERSION"]] >= (1, 2)


def test_the_legacy_tag_has_every_parameter_the_legacy_config_declares() -> None:
    args = global_args(parse(TRITON))
    # tokenizer_dir, guided_decoding_backend, xgrammar_tokenizer_info_path: backend v0.19.0+.
    assert TRTLLM_OF_TAG[args["LEGACY_TRITON_VERSION"]] >= (0, 19)
    text = TRITON.read_text()
    assert "TENSORRTLLM_BACKEND" in text and "--build-arg TRITON_LLM_BACKEND=trtllm" in text


def test_the_image_serves_the_llmapi_root_by_default() -> None:
    instructions = parse(TRITON)
    after_from = instructions[[i.keyword for i in instructions].index("FROM") + 1 :]
    stage_args = dict(
        i.args.partition("=")[::2] for i in after_from if i.keyword == "ARG" and "=" in i.args
    )
    env = " ".join(i.args for i in after_from if i.keyword == "ENV")
    backend = re.search(r"TRITON_LLM_BACKEND=(\S+)", env)
    assert backend is not None
    value = re.sub(r"\$\{(\w+)\}", lambda m: stage_args[m.group(1)], backend.group(1))
    assert value == "llmapi"


def test_api_image_is_slim_non_root_and_api_only() -> None:
    instructions = parse(API)
    images = base_images(instructions)
    assert images == ["python:3.11-slim", "python:3.11-slim"]
    users = [i.args for i in instructions if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert [i.args for i in instructions if i.keyword == "ENTRYPOINT"] == [
        '["python", "-m", "api"]'
    ]
    assert {s.rstrip("/") for s in copied_sources(instructions)} == {"pyproject.toml", "api"}
    # It installs the core dependencies only: nothing of the models' stack.
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in dependencies if re.match(r"(torch|transformers|nvidia-pytriton)\b", d)]


def test_api_image_listens_where_the_chart_probes() -> None:
    instructions = parse(API)
    assert [i.args for i in instructions if i.keyword == "EXPOSE"] == ["9000"]
    env = " ".join(i.args for i in instructions if i.keyword == "ENV")
    assert "API_HOST=0.0.0.0" in env and "API_PORT=9000" in env
