"""A byte-level BPE tokenizer trained on generated text, with ChatML special tokens."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]  # ids 0, 1, 2 (the trainer keeps this order)

# ChatML. Content may be a string or a list of OpenAI-style parts (only "text" parts render).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- elif message['content'] is iterable -%}"
    "{%- for part in message['content'] if part['type'] == 'text' -%}{{- part['text'] -}}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# The tools turn and tool calls (Hermes/Qwen style tags, this project's own wording): with
# ``tools`` a first system turn lists each function's JSON (name, description, parameters),
# one a line. An assistant message's ``tool_calls`` render as
# ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``, one a line after any text (OpenAI
# sends ``arguments`` as a JSON string, written unchanged; a dict is written as JSON); ``tool``
# messages are a ``tool`` turn. Without tools and tool calls it renders CHAT_TEMPLATE's ChatML.
TOOLS_CHAT_TEMPLATE = (
    "{%- if tools -%}"
    "{{- '<|im_start|>system\\nYou can call these tools:\\n' -}}"
    "{%- for tool in tools -%}"
    "{{- (tool['function'] if tool['function'] is defined else tool) | tojson + '\\n' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- set text = message['content'] if message['content'] is string else '' -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- elif message['content'] is iterable -%}"
    "{%- for part in message['content'] if part['type'] == 'text' -%}{{- part['text'] -}}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- if message['tool_calls'] is defined and message['tool_calls'] -%}"
    "{%- for call in message['tool_calls'] -%}"
    "{%- set function = call['function'] if call['function'] is defined else call -%}"
    "{%- if text or not loop.first -%}{{- '\\n' -}}{%- endif -%}"
    "{{- '<tool_call>{\"name\": ' + function['name'] | tojson + ', \"arguments\": ' -}}"
    "{%- set arguments = function['arguments'] if function['arguments'] is defined else {} -%}"
    "{%- if arguments is string -%}{{- arguments -}}{%- else -%}{{- arguments | tojson -}}"
    "{%- endif -%}"
    "{{- '}</tool_call>' -}}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

Message = dict[str, Any]
Tools = list[dict[str, Any]]


def byte_level_symbols() -> dict[int, str]:
    """GPT-2's byte -> printable-character table used by the ByteLevel pre-tokenizer."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table: dict[int, str] = {}
    extra = 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, chat_template: str = CHAT_TEMPLATE
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it for transformers.

    Bytes >= 0x80 are isolated after the byte-level mapping, so BPE never merges the bytes of
    a multi-byte character: every non-ASCII character is split across several tokens, which
    is what the incremental-detokenization tests need.
    """
    symbols = byte_level_symbols()
    high_bytes = "[" + "".join(symbols[b] for b in range(0x80, 0x100)) + "]"
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            pre_tokenizers.Split(Regex(high_bytes), behavior="isolated"),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    return wrap_tokenizer(backend, chat_template)


def wrap_tokenizer(
    backend: Tokenizer, chat_template: str = CHAT_TEMPLATE
) -> PreTrainedTokenizerFast:
    """The transformers tokenizer: a ChatML template, eos <|im_end|>, pad <|endoftext|>."""
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
        chat_template=chat_template,
    )
    ids = tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS)
    if ids != [0, 1, 2]:
        raise RuntimeError(f"special tokens got ids {ids}, expected [0, 1, 2]")
    return tokenizer


def render_chat(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[Message],
    add_generation_prompt: bool = False,
    tools: Tools | None = None,
) -> str:
    """The chat as text, through the tokenizer's own chat template."""
    text = tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    if not isinstance(text, str):
        raise TypeError(f"chat template rendered {type(text).__name__}, expected str")
    return text


def make_tokenizer_config_portable(path: Path) -> None:
    """Rewrite the transformers 5 tokenizer config so that 4.x releases load it the same way.

    4.x knows neither the ``TokenizersBackend`` class name nor a list under
    ``extra_special_tokens``; both releases read ``PreTrainedTokenizerFast`` and
    ``additional_special_tokens``. The chat template stays inline (``chat_template``) because
    4.x before 4.49 does not read chat_template.jinja.
    """
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.pop("extra_special_tokens", None)
    config["additional_special_tokens"] = [IM_START, IM_END]
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
