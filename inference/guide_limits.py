"""How large and how complex a guide may be before the engine compiles it.

xgrammar's compile time grows with the guide: with the number of object properties (optional
ones cost more than linearly), of ``anyOf``/``oneOf``/``allOf`` branches and type lists, and of
``enum``/``const`` values. A ~1 MB tool schema compiled for over 22 minutes. These checks are
cheap (one walk of the parsed schema, never a compile) and run before a guide is queued for
compilation; the compile's time budget (:mod:`inference.guided`) catches what they cannot
predict. The API checks the same limits first (``api/schemas/bounds.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from inference.request import GUIDED_ERROR_PREFIX, GuidedDecoding, GuideType

_BRANCHES = ("anyOf", "oneOf", "allOf")


@dataclass(frozen=True)
class GuideLimits:
    """The largest guide the engine compiles (defaults equal the API's, bounds.py)."""

    # UTF-8 bytes of the guide text (a schema, a regular expression or a grammar).
    max_bytes: int = 128 * 1024
    # Entries of every ``properties`` object of a schema, together.
    max_properties: int = 2_000
    # ``anyOf``/``oneOf``/``allOf`` branches plus the entries of ``type`` lists, together.
    max_alternatives: int = 256
    # ``enum`` values plus ``const`` keywords, together (OpenAI allows 1,000 enum values).
    max_enum_values: int = 1_000

    def check(self, guided: GuidedDecoding) -> None:
        """Raise ``ValueError`` (``invalid_guided_decoding:``) for a guide past a limit."""
        size = len(guided.guide.encode("utf-8"))
        if size > self.max_bytes:
            raise ValueError(
                f"{GUIDED_ERROR_PREFIX} the {guided.guide_type.value} guide is {size} bytes, "
                f"more than the {self.max_bytes} this model compiles"
            )
        if guided.guide_type is not GuideType.JSON_SCHEMA:
            return
        try:
            schema = json.loads(guided.guide)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{GUIDED_ERROR_PREFIX} the json_schema guide does not compile: it is not JSON "
                f"({error})"
            ) from error
        counts = schema_counts(schema)
        for name, count, limit in (
            ("object properties", counts.properties, self.max_properties),
            (
                "alternatives (anyOf/oneOf/allOf branches and type lists)",
                counts.alternatives,
                self.max_alternatives,
            ),
            ("enum and const values", counts.enum_values, self.max_enum_values),
        ):
            if count > limit:
                raise ValueError(
                    f"{GUIDED_ERROR_PREFIX} the json_schema guide has {count} {name}, more than "
                    f"the {limit} this model compiles"
                )


@dataclass(frozen=True)
class SchemaCounts:
    """What drives a JSON Schema's compile time, counted over the whole schema."""

    properties: int
    alternatives: int
    enum_values: int


def schema_counts(schema: object) -> SchemaCounts:
    """Count properties, alternatives and enum values over every sub-schema.

    Iterative (never recurses); every object is read as a schema, so a value that merely looks
    like one (an ``enum`` member that is an object) may be counted too: never fewer.
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
