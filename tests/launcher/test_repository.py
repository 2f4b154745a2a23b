"""Rendering the model repository, and the rendered configs as Triton will read them."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc.model_config_pb2 import ModelConfig

from launcher.repository import TemplateError, fill_template, render_repository, render_root
from launcher.settings import PROJECT_ROOT, LauncherSettings, LLMBackend


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


@pytest.fixture(scope="module", params=[LLMBackend.CPU, LLMBackend.TRTLLM])
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
    configs: dict[str, ModelConfig] = {}
    for path in sorted(p for root in roots for p in root.rglob("config.pbtxt")):
        config = text_format.Parse(path.read_text(), ModelConfig())
        assert config.name == path.parent.name
        configs[config.name] = config
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
    assert not rendered["postprocessing"].HasField("dynamic_batching")


def _tensors(items: object) -> dict[str, int]:
    return {t.name: t.data_type for t in items}  # type: ignore[attr-defined]


def test_ensemble_wiring_is_consistent(rendered: dict[str, ModelConfig]) -> None:
    ensemble = rendered["ensemble"]
    available = _tensors(ensemble.input)  # name -> data type, grows step by step
    for step in ensemble.ensemble_scheduling.step:
        model = rendered[step.model_name]
        inputs, outputs = _tensors(model.input), _tensors(model.output)
        for key, value in step.input_map.items():
            assert key in inputs, f"{step.model_name} has no input {key}"
            assert value in available, f"{step.model_name}.{key} <- unknown tensor {value}"
            assert available[value] == inputs[key], f"{step.model_name}.{key} type mismatch"
        for key, value in step.output_map.items():
            assert key in outputs, f"{step.model_name} has no output {key}"
            available[value] = outputs[key]
    for name, data_type in _tensors(ensemble.output).items():
        assert available.get(name) == data_type, f"ensemble output {name} is not produced"


def test_required_model_inputs_are_fed(rendered: dict[str, ModelConfig]) -> None:
    for step in rendered["ensemble"].ensemble_scheduling.step:
        required = {t.name for t in rendered[step.model_name].input if not t.optional}
        assert required <= set(step.input_map), f"{step.model_name} misses {required}"


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
