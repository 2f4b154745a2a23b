"""Usage records of background responses.

A background response outlives the request that created it, so the usage middleware records
that request without its tokens and the runner records them here when the response ends
(endpoint ``/v1/responses``), priced and counted like any request's.
"""

from __future__ import annotations

from api.chat.run import ChatRun
from api.gateway import Gateway
from api.ids import unique_hex
from api.storage.responses import ResponseRecord
from api.storage.time import utcnow
from api.usage.pricing import cost_nanos
from api.usage.records import UsageRecord

ENDPOINT = "/v1/responses"


def background_usage(
    gateway: Gateway, request_id: str, record: ResponseRecord, run: ChatRun
) -> None:
    state = run.states[0]
    prompt, completion = state.prompt_tokens, state.completion_tokens
    model = run.model.id
    ended = record.completed_at or utcnow()
    gateway.recorder.record(
        UsageRecord(
            id=unique_hex(),
            request_id=request_id,
            created_at=ended,
            key_id=record.key_id,
            org_id=record.org_id,
            model=model,
            endpoint=ENDPOINT,
            status=200 if record.status != "failed" else 500,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=0,
            latency_ms=(ended - record.created_at).total_seconds() * 1000,
            cost_nanos=cost_nanos(gateway.settings.usage.prices, model, prompt, completion, 0),
        )
    )
    gateway.metrics.tokens(model, prompt, completion)
