"""What a request may carry: the engine's tensor types and the size of free-form JSON.

Every integer of a request ends up in a tensor of the ensemble (``max_tokens``, ``top_k``,
``min_tokens`` and ``logit_bias`` ids as INT32, ``seed`` as UINT64): a value the tensor cannot
hold is refused here, by name, instead of failing inside Triton or being wrapped.

``tools``, ``response_format`` and the tool calls of messages are JSON the API serializes again
(orjson stops at 255 levels) and the chat template and the guided decoder walk recursively, so
their nesting depth and size are bounded too.
"""

from __future__ import annotations

from typing import Final

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
