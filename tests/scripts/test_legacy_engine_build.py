"""scripts/build_engines.py's legacy TensorRT-engine path: xgrammar tokenizer info, the engine's
vocabulary and generation logits for top_logprobs."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import xgrammar
from transformers import AutoTokenizer

from launcher.config_check import load_repository
from launcher.engine_plan import (
    XGRAMMAR_TOKENIZER_INFO,
    Layout,
    Tools,
    build_step,
    padded_vocab_size,
    served_models,
)
from launcher.engine_spec import Backend, load_spec
from tests.scripts.test_build_engines import ROOT, SPECS, build_engines

__all__ = ["build_engines"]
TINY_CHAT = ROOT / "models" / "tiny-chat"


def test_xgrammar_tokenizer_info_matches_the_tokenizer(
    build_engines: ModuleType, tmp_path: Path
) -> None:
    path = build_engines.write_xgrammar_tokenizer_info(TINY_CHAT, tmp_path / "info.json")
    info = json.loads(path.read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(TINY_CHAT)
    assert set(info) == {"encoded_vocab", "tokenizer_str", "stop_token_ids"}
    assert len(info["encoded_vocab"]) == len(tokenizer.get_vocab())
    assert info["encoded_vocab"][tokenizer.eos_token_id] == tokenizer.eos_token
    assert info["stop_token_ids"] == [tokenizer.eos_token_id]
    # xgrammar accepts the vocabulary as the backend hands it over and compiles a grammar.
    tokenizer_info = xgrammar.TokenizerInfo(
        info["encoded_vocab"], stop_token_ids=info["stop_token_ids"]
    )
    compiler = xgrammar.GrammarCompiler(tokenizer_info)
    assert compiler.compile_builtin_json_grammar() is not None


def test_the_rendered_config_points_at_the_tokenizer_info(
    build_engines: ModuleType, tmp_path: Path
) -> None:
    spec = load_spec(SPECS / "tiny-chat.toml", Backend.TRTLLM)
    layout = Layout.for_spec(spec, tmp_path / "out", Path("/models"))
    rendered = build_engines.write_repository(
        spec, layout, ROOT / "model_repository", tmp_path / "repo"
    )
    configs = load_repository([rendered])
    llm = {k: v.string_value for k, v in configs["tensorrt_llm"].parameters.items()}
    assert llm["guided_decoding_backend"] == "xgrammar"
    assert llm["xgrammar_tokenizer_info_path"] == (
        f"/models/tiny-chat/tokenizer/{XGRAMMAR_TOKENIZER_INFO}"
    )
    preprocessing = configs["preprocessing"].parameters
    vocab = json.loads((TINY_CHAT / "config.json").read_text())["vocab_size"]
    assert preprocessing["vocab_size"].string_value == str(vocab)


def test_engine_vocabulary_is_padded_to_the_tensor_parallel_size() -> None:
    assert padded_vocab_size(32000, 1) == 32000
    assert padded_vocab_size(32001, 2) == 32002
    assert padded_vocab_size(151665, 4) == 151668


def test_top_logprobs_builds_generation_logits_and_reaches_api_models(tmp_path: Path) -> None:
    tools = Tools(python="python3", examples_dir=Path("/opt/examples"))
    offers = load_spec(SPECS / "tiny-chat.toml")
    none = load_spec(SPECS / "qwen2.5-7b-instruct.toml")
    assert offers.serving.max_top_logprobs == 20
    assert none.serving.max_top_logprobs == 0
    for spec, gathers in ((offers, True), (none, False)):
        layout = Layout.for_spec(spec, tmp_path, None)
        argv = build_step(spec, layout, tools).argv
        assert ("--gather_generation_logits" in argv) is gathers
        assert served_models(spec)[0]["max_top_logprobs"] == spec.serving.max_top_logprobs
