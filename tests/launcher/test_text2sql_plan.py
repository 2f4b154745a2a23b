"""The text2sql model (models/tiny-sql) in the launcher's plan: its engine spec, the API entry
it yields and a CPU repository rendered for it through TRITON_LLM_MODEL_DIR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.config_check import check_repository
from launcher.engine_plan import served_models
from launcher.engine_spec import load_spec
from launcher.repository import render_repository
from launcher.settings import PROJECT_ROOT, LauncherSettings

MODEL_DIR = PROJECT_ROOT / "models" / "tiny-sql"
SPEC = PROJECT_ROOT / "engines" / "specs" / "tiny-sql.toml"


def test_the_spec_points_at_the_shipped_checkpoint() -> None:
    spec = load_spec(SPEC)
    assert spec.checkpoint == MODEL_DIR
    assert (MODEL_DIR / "model.safetensors").is_file()
    assert (MODEL_DIR / "tokenizer.json").is_file()
    # The window the API enforces fits the model's positions.
    config = json.loads((MODEL_DIR / "config.json").read_text())
    assert spec.limits.max_seq_len <= config["max_position_embeddings"]


def test_the_api_entry_is_a_chat_model_named_tiny_sql() -> None:
    [entry] = served_models(load_spec(SPEC))
    assert entry["id"] == "tiny-sql"
    assert entry["kind"] == "chat" and entry["triton_model"] == "ensemble"
    # The CPU twin decodes max_num_sequences (default: max_batch_size 8) at once.
    assert entry["engine_slots"] == LauncherSettings().max_batch_size


def test_the_launcher_serves_the_model_dir_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRITON_LLM_MODEL_DIR", "models/tiny-sql")
    settings = LauncherSettings()
    assert settings.llm_model_dir == MODEL_DIR
    assert settings.tokenizer_dir == MODEL_DIR  # the checkpoint ships its tokenizer
    roots = render_repository(
        settings.repository_dir, tmp_path, settings.roots, settings.template_values()
    )
    configs = check_repository(roots)
    assert configs["tensorrt_llm"].parameters["model_dir"].string_value == str(MODEL_DIR)
    for model in ("preprocessing", "postprocessing"):
        assert configs[model].parameters["tokenizer_dir"].string_value == str(MODEL_DIR)


def test_without_it_the_launcher_still_serves_tiny_chat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_LLM_MODEL_DIR", raising=False)
    assert LauncherSettings().llm_model_dir == PROJECT_ROOT / "models" / "tiny-chat"
