"""What a request may carry: the engine's tensor types and the size of free-form JSON.

Every integer of a request ends up in a tensor of the ensemble (``max_tokens``, ``top_k``,
``min_tokens`` and ``logit_bias`` ids as INT32, ``seed`` as UINT64): a value the tensor cannot
hold is refused here, by name, instead of failing inside Triton or being wrapped.

``tools``, ``response_format`` and the tool calls of messages are JSON the API serializes again
(orjson stops at 255 levels) and the chat template and the guided decoder walk recursively, so
their nesting depth and size are bounded too.

A schema guided decoding compiles (``response_format`` json_schema, or the call ``tools`` force
with ``tool_choice`` "required" or a named function) costs compile time in the engine that grows
with its size, its object properties (optional ones more than linearly), its alternatives and
its enum values: a ~1 MB tool schema compiled for 22 minutes. The defaults below bound that
(each is a per-model setting, ``ServedModel.guided_decoding``, and a parameter of the engine,
which checks them again); the engine's compile budget catches what they cannot predict.

A prompt is refused before it is tokenized when it has more UTF-8 bytes than any prompt that
fits the context could: ``context_length`` x ``MAX_PROMPT_BYTES_PER_TOKEN`` unless the model sets
``max_prompt_bytes``. The preprocessing model applies the exact bound of its tokenizer too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

_BRANCHES: Final = ("anyOf", "oneOf", "allOf")

INT32_MAX: Final = 2**31 - 1
UINT64_MAX: Final = 2**64 - 1
# The largest finite float32: a penalty past it would reach the engine as infinity.
FLOAT32_MAX: Final = 3.4028234663852886e38
# Far deeper than any real schema (OpenAI's structured outputs allow 10 levels), far below
# the serializer's limit of 255 and Python's recursion limit.
MAX_JSON_DEPTH: Final = 64
# Values (objects, arrays and scalars) in one such field; a schema of 128 detailed tools
# stays well below it.
MAX_JSON_VALUES: Final = 50_000
# The serialized schema guided decoding compiles, in UTF-8 bytes: 128 detailed tools fit.
MAX_GUIDE_BYTES: Final = 128 * 1024
# Entries of all ``properties`` objects of the schema together (OpenAI allows 5,000; compile
# time grows faster than that on a CPU: 2,000 optional properties take up to ~10 s).
MAX_SCHEMA_PROPERTIES: Final = 2_000
# ``anyOf``/``oneOf``/``allOf`` branches plus ``type`` list entries: 128 forced tools need 128.
MAX_SCHEMA_ALTERNATIVES: Final = 256
# ``enum`` values plus ``const`` keywords (OpenAI's limit for enum values).
MAX_SCHEMA_ENUM_VALUES: Final = 1_000
# No tokenizer served here averages more bytes per token over a prompt: English runs at ~4.
MAX_PROMPT_BYTES_PER_TOKEN: Final = 32


def check_json_bounds(value: object) -> None:
    """Raise ``ValueError`` if ``value`` nests deeper than ``MAX_JSON_DEPTH`` containers or
    holds more than ``MAX_JSON_VALUES`` values. Iterative: it never recurses itself."""
    pending: list[tuple[object, int]] = [(value, 0)]
    count = 0
    while pending:
        item, depth = pending.pop()
        count += 1
        if count > MAX_JSON_VALUES:
            raise ValueError(f"it holds more than {MAX_JSON_VALUES} JSON values")
        if isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise ValueError(f"it is nested deeper than {MAX_JSON_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


@dataclass(frozen=True)
class SchemaCounts:
    """What drives a JSON Schema's compile time, counted over the whole schema."""

    properties: int
    alternatives: int
    enum_values: int


def schema_counts(schema: object) -> SchemaCounts:
    """Count ``properties`` entries, alternatives and enum/const values over every sub-schema.

    Iterative; every object is read as a schema, so something that merely looks like one is
    counted too: never fewer than the engine (inference/guide_limits.py) counts.
    """
    properties = alternatives = enum_values = 0
    pending: list[object] = [schema]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        if isinstance(found := item.get("properties"), dict):
            properties += len(found)
        for keyword in _BRANCHES:
            if isinstance(found := item.get(keyword), list):
                alternatives += len(found)
        if isinstance(found := item.get("type"), list):
            alternatives += len(found)
        if isinstance(found := item.get("enum"), list):
            enum_values += len(found)
        if "const" in item:
            enum_values += 1
        pending.extend(item.values())
    return SchemaCounts(properties, alternatives, enum_values)


def first_excess(
    counts: SchemaCounts, max_properties: int, max_alternatives: int, max_enum_values: int
) -> tuple[str, int, int] | None:
    """The first count past its limit, as (what it counts, count, limit); None if none is.
    The API and the engine (inference/guide_limits.py) refuse a schema with the same words."""
    for name, count, limit in (
        ("object properties", counts.properties, max_properties),
        (
            "alternatives (anyOf/oneOf/allOf branches and type-list entries)",
            counts.alternatives,
            max_alternatives,
        ),
        ("enum and const values", counts.enum_values, max_enum_values),
    ):
        if count > limit:
            return name, count, limit
    return None


def text_bytes(value: object) -> int:
    """UTF-8 bytes of every string in ``value`` (a prompt, messages, tools), as tokenized.

    Iterative: a deep value never recurses.
    """
    pending: list[object] = [value]
    total = 0
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item.encode("utf-8", "surrogatepass"))
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return total
