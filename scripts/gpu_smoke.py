"""The smoke checks of scripts/gpu_check.sh, through the API as a client sees it.

Each check is one request (or two) against a running API and Triton: stream, stop, seed,
json_schema, logprobs, usage and cancellation (a stream closed after its first chunk must leave
no request active in the engine, read from Triton's nv_trt_llm_request_metrics, which both the
C++ backend and our Python-backend adapter export). Prints one JSON line per check and exits 1
naming every check that failed.

Usage: python scripts/gpu_smoke.py API_URL API_KEY MODEL TRITON_METRICS_URL
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Callable

import openai

PROMPT = [{"role": "user", "content": "Write three short sentences about the sea."}]
SCHEMA = {
    "type": "object",
    # Bounded, so that even a tiny model closes the object within max_tokens.
    "properties": {
        "city": {"type": "string", "maxLength": 12},
        "population": {"type": "integer", "minimum": 0, "maximum": 99999999},
    },
    "required": ["city", "population"],
    "additionalProperties": False,
}


class Smoke:
    """The checks, sharing one client."""

    def __init__(self, client: openai.OpenAI, model: str, metrics_url: str) -> None:
        self.client, self.model, self.metrics_url = client, model, metrics_url

    def stream(self) -> str:
        chunks = self.client.chat.completions.create(
            model=self.model, messages=PROMPT, max_tokens=24, temperature=0, stream=True
        )
        deltas = [
            c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
        ]
        assert len(deltas) > 1, f"{len(deltas)} content chunks: not streamed"
        return f"{len(deltas)} chunks"

    def stop(self) -> str:
        free = self._text(max_tokens=24)
        assert len(free) > 2, f"too short to cut: {free!r}"
        word = free[1:3]
        reply = self.client.chat.completions.create(
            model=self.model, messages=PROMPT, max_tokens=24, temperature=0, stop=[word]
        )
        choice = reply.choices[0]
        assert choice.finish_reason == "stop", choice.finish_reason
        assert word not in (choice.message.content or ""), choice.message.content
        return f"cut at {word!r}"

    def seed(self) -> str:
        first, second = (self._text(max_tokens=24, temperature=1.0, seed=1234) for _ in range(2))
        assert first == second, f"same seed, different text: {first!r} / {second!r}"
        return "same seed, same text"

    def json_schema(self) -> str:
        text = self._text(
            max_tokens=128,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": SCHEMA, "strict": True},
            },
        )
        value = json.loads(text)
        assert set(value) == {"city", "population"}, value
        assert isinstance(value["population"], int), value
        return text

    def logprobs(self) -> str:
        reply = self.client.chat.completions.create(
            model=self.model,
            messages=PROMPT,
            max_tokens=8,
            temperature=0,
            logprobs=True,
            top_logprobs=2,
        )
        entries = reply.choices[0].logprobs.content if reply.choices[0].logprobs else None
        assert entries, "no logprobs"
        assert all(e.logprob <= 0 and len(e.top_logprobs) == 2 for e in entries), entries[0]
        return f"{len(entries)} tokens"

    def usage(self) -> str:
        reply = self.client.chat.completions.create(
            model=self.model, messages=PROMPT, max_tokens=8, temperature=0
        )
        usage = reply.usage
        assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0, usage
        return f"{usage.prompt_tokens} in, {usage.completion_tokens} out"

    def cancellation(self) -> str:
        chunks = self.client.chat.completions.create(
            model=self.model, messages=PROMPT, max_tokens=512, temperature=0, stream=True
        )
        next(iter(chunks))
        chunks.close()
        deadline = time.monotonic() + 15
        while (active := self._active()) > 0:
            assert time.monotonic() < deadline, f"{active} request(s) still active after 15 s"
            time.sleep(0.25)
        return "engine idle after the client left"

    def _text(self, **kwargs: object) -> str:
        reply = self.client.chat.completions.create(
            model=self.model,
            messages=PROMPT,
            **{"temperature": 0, **kwargs},
        )
        return reply.choices[0].message.content or ""

    def _active(self) -> float:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            text = response.read().decode()
        rows = [
            line
            for line in text.splitlines()
            if line.startswith("nv_trt_llm_request_metrics") and 'request_type="active"' in line
        ]
        assert rows, "no nv_trt_llm_request_metrics active gauge"
        return sum(float(line.rsplit(" ", 1)[1]) for line in rows)


def main(argv: list[str]) -> int:
    url, key, model, metrics_url = argv
    smoke = Smoke(openai.OpenAI(base_url=url, api_key=key, timeout=120), model, metrics_url)
    checks: dict[str, Callable[[], str]] = {
        "stream": smoke.stream,
        "stop": smoke.stop,
        "seed": smoke.seed,
        "json_schema": smoke.json_schema,
        "logprobs": smoke.logprobs,
        "usage": smoke.usage,
        "cancellation": smoke.cancellation,
    }
    failed = []
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            result, ok = check(), True
        except Exception as exc:  # every check reports; the exit code sums them up
            result, ok = f"{type(exc).__name__}: {exc}", False
            failed.append(name)
        seconds = round(time.perf_counter() - started, 2)
        print(json.dumps({"check": name, "ok": ok, "s": seconds, "result": result}), flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
