"""Saving a tiny model as a Hugging Face checkpoint, loading it back and greedy replies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    GenerationMixin,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from tiny_models.tokenizer import Message, Tools, make_tokenizer_config_portable, render_chat
from tiny_models.training import TrainResult


def save_checkpoint(
    model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, output: Path
) -> None:
    """Write float16 safetensors, config, generation config and tokenizer to ``output``.

    Generation stops on <|im_end|> (chat) or <|endoftext|> (raw completions).
    """
    model.generation_config = GenerationConfig(bos_token_id=0, eos_token_id=[2, 0], pad_token_id=0)  # type: ignore[no-untyped-call]
    model.half().save_pretrained(output)  # type: ignore[no-untyped-call]
    model.float()  # type: ignore[no-untyped-call]
    tokenizer.save_pretrained(output, save_jinja_files=False)
    make_tokenizer_config_portable(output / "tokenizer_config.json")


def load_checkpoint(path: Path) -> tuple[Any, Any]:
    """(model, tokenizer) of a saved checkpoint, the model in float32 for CPU inference."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model, tokenizer


def greedy_continuation(
    model: GenerationMixin, tokenizer: PreTrainedTokenizerBase, text: str, max_new_tokens: int
) -> str:
    """Greedy continuation of raw text, special tokens kept."""
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new_tokens = output[0, inputs["input_ids"].shape[1] :].tolist()
    return str(tokenizer.decode(new_tokens, skip_special_tokens=False))


def greedy_chat_reply(
    model: GenerationMixin,
    tokenizer: PreTrainedTokenizerBase,
    messages: list[Message],
    max_new_tokens: int = 80,
    tools: Tools | None = None,
) -> str:
    """The assistant's greedy reply to a chat, ending with <|im_end|> if it stopped."""
    prompt = render_chat(tokenizer, messages, add_generation_prompt=True, tools=tools)
    return greedy_continuation(model, tokenizer, prompt, max_new_tokens)


def directory_size(path: Path) -> int:
    """Total size in bytes of the files directly inside ``path``."""
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def card_facts(model: LlamaForCausalLM, result: TrainResult, output: Path) -> dict[str, Any]:
    """Architecture, training and size figures that every model card states."""
    config = model.config
    return {
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "heads": config.num_attention_heads,
        "kv_heads": config.num_key_value_heads,
        "intermediate": config.intermediate_size,
        "max_pos": config.max_position_embeddings,
        "params": model.num_parameters(),
        "vocab": config.vocab_size,
        "steps": result.steps,
        "batch": result.batch_size,
        "seconds": result.seconds,
        "loss": result.final_loss,
        "size_mb": directory_size(output) / 1e6,
    }
