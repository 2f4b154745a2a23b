"""``python -m launcher.probe``: exit 0 only if every model answers a one-token request.

Triton's ``/v2/health/live`` and ``/v2/health/ready`` stay green when a model's Python-backend
stub dies (requests to it then hang), so the Helm chart's liveness probe of a Triton pod runs
this instead: each served model gets the API's own probe request (api/backend/probe.py: one
generated token, or one embedded word) over gRPC, within ``--timeout`` seconds. A model that
fails it fails the probe, and the kubelet restarts the container; but a generation that only
waits for a free engine slot while the engine streams to others (``--metrics-url``) is busy,
not dead: a saturated pod is not restarted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter

from api.backend.probe import ProbeTarget, ask
from api.backend.triton_grpc import TritonGrpcBackend
from api.settings import ModelKind, ServedModel, TritonSettings
from launcher.server import TritonServer

logger = logging.getLogger(__name__)

_MODELS = TypeAdapter(list[ServedModel])
_NO_ANSWER = "no answer in time"


@dataclass(frozen=True, slots=True)
class Progress:
    """Responses one model of the engine has produced, read from Triton's metrics endpoint.

    The ensemble's postprocessing runs once per streamed response, so its
    ``nv_inference_count`` grows while any generation streams.
    """

    metrics_url: str
    model: str

    def count(self) -> float | None:
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=5) as reply:
                text = reply.read().decode()
        except OSError:
            return None
        pattern = rf'^nv_inference_count\{{model="{re.escape(self.model)}",[^}}]*\}} (\S+)$'
        found = re.search(pattern, text, re.MULTILINE)
        return float(found.group(1)) if found else None


async def probe_all(
    url: str, targets: Sequence[ProbeTarget], timeout_s: float, progress: Progress | None = None
) -> list[str]:
    """The problems found, one line per model that did not answer (empty: all did).

    Generations that got no answer in time while ``progress`` grew are busy, not dead.
    """
    before = progress.count() if progress is not None else None
    backend = TritonGrpcBackend(TritonSettings(url=url, ready_timeout_s=timeout_s))
    try:
        results = await asyncio.gather(*(_probe(backend, target, timeout_s) for target in targets))
    finally:
        await backend.close()
    after = progress.count() if progress is not None else None
    busy = before is not None and after is not None and after > before
    return [
        problem
        for problem, target in results
        if problem
        and not (busy and problem.endswith(_NO_ANSWER) and target.kind is not ModelKind.EMBEDDING)
    ]


async def _probe(
    backend: TritonGrpcBackend, target: ProbeTarget, timeout_s: float
) -> tuple[str, ProbeTarget]:
    try:
        async with asyncio.timeout(timeout_s):
            await ask(backend, target)
    except TimeoutError:
        return f"{target.triton_model}: {_NO_ANSWER}", target
    except Exception as exc:
        return f"{target.triton_model}: {exc}", target
    return "", target


def repository_targets(roots: Sequence[Path]) -> list[ProbeTarget]:
    """What a launcher's own server answers for: the generation ensemble and the embedding
    model, where its rendered repository has them."""
    kinds = {"ensemble": ModelKind.CHAT, "embedding": ModelKind.EMBEDDING}
    present = {path.name for root in roots for path in root.iterdir() if path.is_dir()}
    return [ProbeTarget(name, kind) for name, kind in kinds.items() if name in present]


def models_answer(server: TritonServer, timeout_s: float) -> bool:
    """The supervisor's model check (launcher.supervisor.ModelCheck): every model of the
    server answers a one-token request, or the engine is busy streaming to others."""
    targets = repository_targets(server.options.repositories)
    metrics = f"http://127.0.0.1:{server.options.metrics_port}/metrics"
    progress = Progress(metrics, "postprocessing")
    problems = asyncio.run(probe_all(server.grpc_url, targets, timeout_s, progress))
    for problem in problems:
        logger.warning("model check failed: %s", problem)
    return not problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m launcher.probe",
        description="Send every served model a one-token request; exit 1 if one fails.",
    )
    parser.add_argument("--url", default="127.0.0.1:8001", help="Triton's gRPC host:port")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per model")
    parser.add_argument(
        "--models",
        required=True,
        help="the served models as JSON (API_MODELS: id, kind, triton_model, ...)",
    )
    parser.add_argument(
        "--metrics-url",
        help="Triton's metrics (http://127.0.0.1:8002/metrics): a generation that waits while "
        "--progress-model keeps producing (the engine is full) is busy, not dead",
    )
    parser.add_argument("--progress-model", default="postprocessing")
    args = parser.parse_args(argv)
    try:
        models = _MODELS.validate_python(json.loads(args.models))
    except ValueError as exc:
        parser.error(f"--models: {exc}")
    progress = Progress(args.metrics_url, args.progress_model) if args.metrics_url else None
    targets = ProbeTarget.of(models)
    problems = asyncio.run(probe_all(args.url, targets, args.timeout, progress))
    for problem in problems:
        print(f"model probe failed: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
