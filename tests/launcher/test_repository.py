"""Rendering the model repository, and the rendered configs as Triton will read them."""

from __future__ import annotations

from pathlib import Path

import pytest
from tritonclient.grpc.model_config_pb2 import ModelConfig

from launcher.config_check import CONFIG_NAME, load_repository, repository_problems
from launcher.repository import (
    PLACEHOLDER,
    TemplateError,
    fill_template,
    render_models,
    render_repository,
    render_root,
)
from launcher.settings import PROJECT_ROOT, LauncherSettings, LLMBackend, explicit_settings


def test_fill_template() -> None:
    assert (
        fill_template("a: ${x}, b: ${y}", {"x": "1", "y": "two", "z": "unused"}) == "a: 1, b: two"
    )


def test_unknown_placeholder_is_named() -> None:
    with pytest.raises(
        TemplateError, match=r"cfg: no value for placeholder\(s\) \$\{a\}, \$\{b c\}"
    ):
        fill_template("${b c} ${a} ${known}", {"known": "1"}, source="cfg")


def _source(tmp_path: Path) -> Path:
    model = tmp_path / "src" / "root" / "m"
    (model / "1" / "__pycache__").mkdir(parents=True)
    (model / "config.pbtxt").write_text('name: "m"\nmax_batch_size: ${n}\n')
    (model / "1" / "model.py").write_text("x = '${not_a_template}'\n")
    (model / "1" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"")
    return tmp_path / "src" / "root"


def test_render_root_fills_configs_only(tmp_path: Path) -> None:
    rendered = render_root(_source(tmp_path), tmp_path / "out" / "root", {"n": "4"})
    assert (rendered / "m" / "config.pbtxt").read_text() == 'name: "m"\nmax_batch_size: 4\n'
    assert (rendered / "m" / "1" / "model.py").read_text() == "x = '${not_a_template}'\n"
    assert not (rendered / "m" / "1" / "__pycache__").exists()


def test_failed_render_keeps_the_previous_one(tmp_path: Path) -> None:
    source, destination = _source(tmp_path), tmp_path / "out" / "root"
    render_root(source, destination, {"n": "4"})
    with pytest.raises(TemplateError, match=r"\$\{n\}"):
        render_root(source, destination, {})
    assert "max_batch_size: 4" in (destination / "m" / "config.pbtxt").read_text()
    assert sorted(p.name for p in destination.parent.iterdir()) == ["root"]


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        render_repository(tmp_path, tmp_path / "out", ["nope"], {})


def test_render_models_assembles_one_root_from_several(tmp_path: Path) -> None:
    source = _source(tmp_path)
    other = tmp_path / "src" / "other" / "k"
    other.mkdir(parents=True)
    (other / "config.pbtxt").write_text('name: "k"\nmax_batch_size: ${n}\n')
    rendered = render_models([source / "m", other], tmp_path / "out" / "one", {"n": "2"})
    assert sorted(p.name for p in rendered.iterdir()) == ["k", "m"]
    assert (rendered / "k" / "config.pbtxt").read_text() == 'name: "k"\nmax_batch_size: 2\n'
    assert not (rendered / "m" / "1" / "__pycache__").exists()


def test_render_models_refuses_non_models_and_duplicates(tmp_path: Path) -> None:
    source = _source(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        render_models([source / "m" / "1"], tmp_path / "out", {"n": "1"})
    with pytest.raises(ValueError, match="two models named 'm'"):
        render_models([source / "m", source / "m"], tmp_path / "out", {"n": "1"})


def test_every_shipped_template_is_in_a_root_the_tests_render() -> None:
    """The protobuf and wiring checks below cover every config.pbtxt the project ships."""
    repository = LauncherSettings().repository_dir
    roots = {root for backend in LLMBackend for root in LauncherSettings(llm_backend=backend).roots}
    shipped = {p.relative_to(repository).parts[0] for p in repository.rglob(CONFIG_NAME)}
    assert shipped <= roots


def test_settings_fill_every_placeholder_of_the_templates() -> None:
    repository = LauncherSettings().repository_dir
    names = {
        m.group(1)
        for p in repository.rglob(CONFIG_NAME)
        for m in PLACEHOLDER.finditer(p.read_text())
    }
    assert names <= set(LauncherSettings().template_values())


@pytest.fixture(scope="module", params=list(LLMBackend))
def rendered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ModelConfig]:
    """The project's repository rendered for one backend, parsed per model name."""
    settings = LauncherSettings(llm_backend=request.param)
    if not (settings.repository_dir / settings.llm_root).is_dir():
        pytest.skip(f"{settings.llm_root} is not in the repository yet")
    out = tmp_path_factory.mktemp(f"rendered-{request.param.value}")
    roots = render_repository(
        settings.repository_dir, out, settings.roots, settings.template_values()
    )
    # Parses each file as Triton's ModelConfig protobuf; its name must match its directory.
    configs: dict[str, ModelConfig] = load_repository(roots)
    return configs


def test_every_model_of_the_contract_is_there(rendered: dict[str, ModelConfig]) -> None:
    assert set(rendered) == {
        "ensemble",
        "preprocessing",
        "tensorrt_llm",
        "postprocessing",
        "embedding",
    }


def test_ensemble_models_batch_alike(rendered: dict[str, ModelConfig]) -> None:
    settings = LauncherSettings()
    chain = ("ensemble", "preprocessing", "tensorrt_llm", "postprocessing")
    assert {rendered[name].max_batch_size for name in chain} == {settings.max_batch_size}
    assert rendered["embedding"].max_batch_size == settings.embedding_max_batch_size


def test_tensorrt_llm_is_decoupled(rendered: dict[str, ModelConfig]) -> None:
    assert rendered["tensorrt_llm"].model_transaction_policy.decoupled


def test_stateful_postprocessing_has_one_instance(rendered: dict[str, ModelConfig]) -> None:
    groups = rendered["postprocessing"].instance_group
    assert [g.count for g in groups] == [1]
    # Batched (one stub round trip per batch, benchmarks/postprocessing_rate.py), but from one
    # FIFO queue with no delay and no priority levels, so a stream's calls stay in order.
    batching = rendered["postprocessing"].dynamic_batching
    assert batching.max_queue_delay_microseconds == 0
    assert batching.priority_levels == 0


def test_ensemble_wiring_is_consistent(rendered: dict[str, ModelConfig]) -> None:
    """Types, dims, required inputs, producers and batch sizes (launcher/config_check.py)."""
    assert repository_problems(rendered) == []


def test_preprocessing_instances_are_configurable() -> None:
    values = LauncherSettings(preprocessing_instances=3).template_values()
    assert values["preprocessing_instance_count"] == "3"


def test_settings_resolve_paths_against_the_project() -> None:
    settings = LauncherSettings(llm_model_dir=Path("models/x"))
    assert settings.llm_model_dir == PROJECT_ROOT / "models" / "x"
    assert settings.tokenizer_dir == settings.llm_model_dir
    assert settings.rendered_dir == PROJECT_ROOT / ".cache" / "model_repository"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_GRPC_PORT", "9101")
    monkeypatch.setenv("TRITON_LLM_BACKEND", "trtllm")
    settings = LauncherSettings()
    assert (settings.grpc_port, settings.roots) == (9101, ("common", "llm_trtllm"))


def test_explicit_settings_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_MAX_BATCH_SIZE", "3")
    assert LauncherSettings().max_batch_size == 3
    assert explicit_settings().max_batch_size == 8
    assert explicit_settings(max_batch_size=5).template_values()["triton_max_batch_size"] == "5"


def test_server_dir_is_resolved_like_the_other_paths() -> None:
    settings = LauncherSettings(server_dir=Path("vendor/triton"))
    assert settings.server_dir == PROJECT_ROOT / "vendor" / "triton"
    assert LauncherSettings().server_dir is None
