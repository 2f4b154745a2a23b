"""Training sequences, a small Llama and the plain AdamW loop that trains it on CPU."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from tiny_models.tokenizer import Message, Tools, render_chat

logger = logging.getLogger(__name__)

MAX_SEQ_LEN = 256
IGNORE_INDEX = -100


@dataclass(frozen=True)
class Example:
    """One training sequence: token ids and labels (IGNORE_INDEX where no loss is taken)."""

    input_ids: list[int]
    labels: list[int]


def encode_dialogue(
    tokenizer: PreTrainedTokenizerFast,
    messages: list[Message],
    max_len: int = MAX_SEQ_LEN,
    tools: Tools | None = None,
    last_reply_only: bool = False,
) -> Example:
    """Tokenize a chat exactly as at inference; take the loss on assistant replies only.

    The reply spans (content plus <|im_end|>) are found by rendering the template on growing
    prefixes of the chat, then mapped to tokens through the offsets. ``last_reply_only`` keeps
    earlier replies as context only (e.g. a tool call written as a client sends it back).
    """
    text = render_chat(tokenizer, messages, tools=tools)
    spans = []
    replies = [i for i, message in enumerate(messages) if message["role"] == "assistant"]
    for i in replies[-1:] if last_reply_only else replies:
        start = len(render_chat(tokenizer, messages[:i], add_generation_prompt=True, tools=tools))
        end = len(render_chat(tokenizer, messages[: i + 1], tools=tools)) - 1  # drop final "\n"
        spans.append((start, end))
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = encoding["input_ids"]
    labels = [
        token if any(start <= offset[0] < end for start, end in spans) else IGNORE_INDEX
        for token, offset in zip(ids, encoding["offset_mapping"], strict=True)
    ]
    return Example(ids[:max_len], labels[:max_len])


def encode_document(tokenizer: PreTrainedTokenizerFast, text: str) -> Example:
    """Tokenize plain text followed by <|endoftext|>; the loss covers every token."""
    ids = [*tokenizer(text, add_special_tokens=False)["input_ids"][: MAX_SEQ_LEN - 1], 0]
    return Example(ids, list(ids))


@dataclass(frozen=True)
class ModelSize:
    """The shape of the Llama; the default is tiny-chat's (~3.4M parameters)."""

    hidden: int = 256
    intermediate: int = 688
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2


DEFAULT_SIZE = ModelSize()


def build_model(vocab_size: int, size: ModelSize = DEFAULT_SIZE) -> LlamaForCausalLM:
    """A small Llama with grouped-query attention and tied embeddings."""
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def batches(examples: list[Example], batch_size: int, rng: random.Random) -> Iterator[Batch]:
    """Endless right-padded batches; examples of similar length are grouped to save padding."""
    while True:
        order = rng.sample(examples, len(examples))
        pool = batch_size * 16
        groups = []
        for i in range(0, len(order) - batch_size + 1, pool):
            chunk = sorted(order[i : i + pool], key=lambda e: len(e.input_ids))
            groups += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
        rng.shuffle(groups)
        for group in groups:
            yield collate(group)


def collate(group: list[Example]) -> Batch:
    """Stack examples into (input_ids, attention_mask, labels), padded with id 0."""
    width = max(len(e.input_ids) for e in group)
    ids = torch.zeros(len(group), width, dtype=torch.long)
    mask = torch.zeros(len(group), width, dtype=torch.long)
    labels = torch.full((len(group), width), IGNORE_INDEX, dtype=torch.long)
    for row, example in enumerate(group):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(example.labels)
    return ids, mask, labels


def learning_rate(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


@dataclass(frozen=True)
class TrainResult:
    """What the model card reports about a training run."""

    steps: int
    seconds: float
    final_loss: float
    batch_size: int = 32


def train(
    model: LlamaForCausalLM, examples: list[Example], steps: int, seed: int, batch_size: int = 32
) -> TrainResult:
    """Plain AdamW loop over padded batches; logs the mean loss of the last 25 steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    stream = batches(examples, batch_size=batch_size, rng=random.Random(seed))
    model.train()
    started, recent = time.monotonic(), list[float]()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, peak=2e-3, warmup=min(50, steps // 10 + 1))
        ids, mask, labels = next(stream)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        recent = [*recent[-24:], loss.item()]
        if (step + 1) % 25 == 0 or step + 1 == steps:
            mean, elapsed = sum(recent) / len(recent), time.monotonic() - started
            logger.info("step %d/%d loss %.4f (%.0fs)", step + 1, steps, mean, elapsed)
    model.eval()  # type: ignore[no-untyped-call]
    return TrainResult(steps, time.monotonic() - started, sum(recent) / len(recent), batch_size)
