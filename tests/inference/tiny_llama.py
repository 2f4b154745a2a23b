"""A tiny randomly initialised Llama checkpoint for engine tests (no trained model needed)."""

from __future__ import annotations

import queue
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from inference.generation import GenerationEngine
from inference.request import GenerationOutput, GenerationRequest

VOCAB_SIZE = 300
MAX_POSITIONS = 128


def save_tiny_llama(directory: Path, vocab_size: int = VOCAB_SIZE) -> Path:
    """Save a 2-layer Llama (hidden 64, vocab 300) with fixed random weights to ``directory``.

    A test that needs a real tokenizer (guided decoding) passes that tokenizer's size.
    """
    torch.manual_seed(1234)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=None,
        eos_token_id=2,
        pad_token_id=0,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def collect(
    engine: GenerationEngine, request: GenerationRequest, timeout_s: float = 30.0
) -> list[GenerationOutput]:
    """Submit ``request`` and wait for all its outputs, the final one last."""
    outputs: queue.Queue[GenerationOutput] = queue.Queue()
    engine.submit(request, outputs.put)
    return drain(outputs, timeout_s)


def drain(
    outputs: queue.Queue[GenerationOutput], timeout_s: float = 30.0
) -> list[GenerationOutput]:
    """Read a request's outputs from its queue up to and including the final one."""
    received = [outputs.get(timeout=timeout_s)]
    while not received[-1].finished:
        received.append(outputs.get(timeout=timeout_s))
    return received


def tokens_of(outputs: list[GenerationOutput]) -> list[int]:
    """All token ids delivered, in order."""
    return [token for output in outputs for token in output.token_ids]
