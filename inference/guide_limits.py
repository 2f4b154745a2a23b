"""How large and how complex a guide may be before the engine compiles it.

xgrammar's compile time grows with the guide: with the number of object properties (optional
ones cost more than linearly), of ``anyOf``/``oneOf``/``allOf`` branches and type lists, and of
``enum``/``const`` values. A ~1 MB tool schema compiled for over 22 minutes. These checks are
cheap (one walk of the parsed schema, never a compile) and run before a guide is queued for
compilation; the compile's time budget (:mod:`inference.guided`) catches what they cannot
predict. The API checks the same limits first, with the same counting
(``api/schemas/bounds.py``, stdlib only, so the Triton image imports it too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from api.schemas.bounds import (
    MAX_GUIDE_BYTES,
    MAX_SCHEMA_ALTERNATIVES,
    MAX_SCHEMA_ENUM_VALUES,
    MAX_SCHEMA_PROPERTIES,
    first_excess,
    schema_counts,
)
from inference.request import GUIDED_ERROR_PREFIX, GuidedDecoding, GuideType


@dataclass(frozen=True)
class GuideLimits:
    """The largest guide the engine compiles (defaults equal the API's, bounds.py)."""

    # UTF-8 bytes of the guide text (a schema, a regular expression or a grammar).
    max_bytes: int = MAX_GUIDE_BYTES
    # Entries of every ``properties`` object of a schema, together.
    max_properties: int = MAX_SCHEMA_PROPERTIES
    # ``anyOf``/``oneOf``/``allOf`` branches plus the entries of ``type`` lists, together.
    max_alternatives: int = MAX_SCHEMA_ALTERNATIVES
    # ``enum`` values plus ``const`` keywords, together (OpenAI allows 1,000 enum values).
    max_enum_values: int = MAX_SCHEMA_ENUM_VALUES

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
        excess = first_excess(
            schema_counts(schema), self.max_properties, self.max_alternatives, self.max_enum_values
        )
        if excess is not None:
            name, count, limit = excess
            raise ValueError(
                f"{GUIDED_ERROR_PREFIX} the json_schema guide has {count} {name}, more than "
                f"the {limit} this model compiles"
            )
