"""What the launcher's model check asks its own server for."""

from __future__ import annotations

from pathlib import Path

from api.backend.probe import ProbeTarget
from api.settings import ModelKind
from launcher.probe import repository_targets


def test_targets_are_the_ensemble_and_the_embedding_model_that_exist(tmp_path: Path) -> None:
    common, llm = tmp_path / "common", tmp_path / "llm"
    for model in ("preprocessing", "ensemble", "postprocessing"):
        (common / model).mkdir(parents=True)
    (llm / "tensorrt_llm").mkdir(parents=True)
    assert repository_targets([common, llm]) == [ProbeTarget("ensemble", ModelKind.CHAT)]
    (common / "embedding").mkdir()
    assert repository_targets([common, llm]) == [
        ProbeTarget("ensemble", ModelKind.CHAT),
        ProbeTarget("embedding", ModelKind.EMBEDDING),
    ]
