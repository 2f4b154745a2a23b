"""The protobuf and ensemble-wiring checks, on small repositories broken one way at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.config_check import (
    ConfigCheckError,
    check_repository,
    dims_compatible,
    load_repository,
    main,
    repository_problems,
)

STEP_A = """
name: "a"
backend: "python"
max_batch_size: 8
input [ { name: "IN", data_type: TYPE_STRING, dims: [ 1 ] },
        { name: "OPT", data_type: TYPE_INT32, dims: [ 1 ], optional: true } ]
output [ { name: "IDS", data_type: TYPE_INT32, dims: [ -1 ] } ]
"""
STEP_B = """
name: "b"
backend: "python"
max_batch_size: 8
input [ { name: "IDS", data_type: TYPE_INT32, dims: [ -1 ] } ]
output [ { name: "TEXT", data_type: TYPE_STRING, dims: [ -1 ] } ]
"""
ENSEMBLE = """
name: "ens"
platform: "ensemble"
max_batch_size: 8
input [ { name: "text", data_type: TYPE_STRING, dims: [ 1 ] } ]
output [ { name: "out", data_type: TYPE_STRING, dims: [ -1 ] } ]
ensemble_scheduling { step [
  { model_name: "a" model_version: -1
    input_map { key: "IN" value: "text" } output_map { key: "IDS" value: "_ids" } },
  { model_name: "b" model_version: -1
    input_map { key: "IDS" value: "_ids" } output_map { key: "TEXT" value: "out" } }
] }
"""


def _repository(tmp_path: Path, **replace: tuple[str, str]) -> Path:
    """A valid three-model root; `replace[model] = (old, new)` breaks one config."""
    root = tmp_path / "root"
    for name, text in {"a": STEP_A, "b": STEP_B, "ens": ENSEMBLE}.items():
        if name in replace:
            old, new = replace[name]
            assert old in text
            text = text.replace(old, new)
        (root / name).mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(text)
    return root


def _problems(root: Path) -> list[str]:
    return repository_problems(load_repository([root]))


def test_a_consistent_repository_passes(tmp_path: Path) -> None:
    assert set(check_repository([_repository(tmp_path)])) == {"a", "b", "ens"}


@pytest.mark.parametrize(
    ("model", "old", "new", "expected"),
    [
        (
            "b",
            "TYPE_INT32, dims: [ -1 ] } ]\noutput",
            "TYPE_INT64, dims: [ -1 ] } ]\noutput",
            "b.IDS is TYPE_INT64 [-1] but _ids (a.IDS) is TYPE_INT32 [-1]",
        ),
        (
            "b",
            'name: "IDS", data_type: TYPE_INT32, dims: [ -1 ]',
            'name: "IDS", data_type: TYPE_INT32, dims: [ 2, -1 ]',
            "b.IDS is TYPE_INT32 [2, -1]",
        ),
        (
            "ens",
            'key: "IDS" value: "_ids" } output_map { key: "TEXT"',
            'key: "IDS" value: "_idz" } output_map { key: "TEXT"',
            "b.IDS <- unknown tensor _idz",
        ),
        (
            "ens",
            'input_map { key: "IN" value: "text" }',
            'input_map { key: "INN" value: "text" }',
            "a has no input INN",
        ),
        (
            "ens",
            'output_map { key: "TEXT" value: "out" }',
            'output_map { key: "TXT" value: "out" }',
            "b has no output TXT",
        ),
        (
            "ens",
            'output_map { key: "TEXT" value: "out" }',
            'output_map { key: "TEXT" value: "o" }',
            "output out is not produced by any step",
        ),
        ("ens", 'model_name: "b"', 'model_name: "c"', "step model(s) ['c'] are not in"),
        ("a", "max_batch_size: 8", "max_batch_size: 4", "a max_batch_size 4 is below"),
    ],
)
def test_each_wiring_mistake_is_named(
    tmp_path: Path, model: str, old: str, new: str, expected: str
) -> None:
    problems = _problems(_repository(tmp_path, **{model: (old, new)}))
    assert any(expected in p for p in problems), problems


def test_an_unfed_required_input_is_named(tmp_path: Path) -> None:
    root = _repository(tmp_path, a=("dims: [ 1 ], optional: true", "dims: [ 1 ]"))
    assert _problems(root) == ["ens: required input(s) ['OPT'] of a are not fed"]


def test_a_tensor_produced_twice_is_named(tmp_path: Path) -> None:
    root = _repository(
        tmp_path,
        ens=('output_map { key: "TEXT" value: "out" }', 'output_map { key: "TEXT" value: "_ids" }'),
    )
    assert "ens: tensor _ids is produced twice" in _problems(root)


def test_steps_feeding_each_other_are_a_cycle(tmp_path: Path) -> None:
    # a also takes b's output: neither step can ever run first.
    root = _repository(
        tmp_path,
        a=(
            "optional: true }",
            'optional: true }, { name: "T", data_type: TYPE_STRING, dims: [ -1 ] }',
        ),
        ens=(
            'input_map { key: "IN" value: "text" }',
            'input_map { key: "IN" value: "text" } input_map { key: "T" value: "out" }',
        ),
    )
    assert _problems(root) == ["ens: steps ['a', 'b'] depend on each other"]


def test_a_config_that_does_not_parse_names_its_file(tmp_path: Path) -> None:
    root = _repository(tmp_path, b=("max_batch_size: 8", "max_batch_size: eight"))
    with pytest.raises(ConfigCheckError, match=r"b/config.pbtxt: not a valid ModelConfig"):
        load_repository([root])


def test_a_name_that_differs_from_its_directory_is_an_error(tmp_path: Path) -> None:
    root = _repository(tmp_path, b=('name: "b"', 'name: "bb"'))
    with pytest.raises(ConfigCheckError, match="name 'bb' differs from its directory"):
        load_repository([root])


def test_a_model_in_two_roots_is_an_error(tmp_path: Path) -> None:
    root = _repository(tmp_path)
    other = tmp_path / "other" / "a"
    other.mkdir(parents=True)
    (other / "config.pbtxt").write_text(STEP_A)
    with pytest.raises(ConfigCheckError, match="model 'a' is defined twice"):
        load_repository([root, other.parent])


def test_dims_compatibility() -> None:
    assert dims_compatible([-1, 2], [3, 2])
    assert not dims_compatible([1], [1, 1])
    assert not dims_compatible([2, -1], [3, -1])


def test_cli_exit_codes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert main([str(_repository(tmp_path / "good"))]) == 0
    broken = _repository(tmp_path / "bad", ens=('model_name: "b"', 'model_name: "c"'))
    assert main([str(broken)]) == 1
    assert "not in the repository" in caplog.text
