"""LiteLLM's proxy as a peer gateway in front of the same Triton, set up by the benchmark.

LiteLLM goes into its own virtual environment (``.cache/litellm-venv``), never the project's.
Its ``triton/`` provider (``litellm/llms/triton/completion/transformation.py`` in the pinned
release) posts ``{"text_input": <prompt>, "parameters": {"max_tokens": ..., **params},
"stream": bool}`` to the deployment's ``api_base`` (Triton's ``/v2/models/<m>/generate``) and
to ``generate_stream`` when the client streams, reading ``text_output`` of each SSE event.
The prompt is ``prompt_factory(model, messages)``: for a model name it does not know it tries
the Hugging Face hub for a chat template and falls back to joining the message contents. The
benchmark therefore sends LiteLLM the prompt already rendered through the chat template (the
direct path's prompt file), which that fallback passes on unchanged, with the hub offline.

Keys and limits: LiteLLM's virtual keys (each with its own rpm/tpm) live in PostgreSQL through
Prisma, whose query-engine binary Prisma downloads from its own host at ``prisma generate``
time; this machine reaches package registries only, so that step fails (see ``prisma_ready``).
Without it the proxy runs with its master key checked on every request and the deployment's
own ``rpm``/``tpm`` limits, which its router counts per request (``enable_pre_call_checks``),
plus a global parallel-request limit: the same kinds of checks ours does per request, minus
the per-key database lookup (cached after the first request in LiteLLM as in ours).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.procs import free_port, running, wait_ok
from launcher.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

LITELLM_VENV = PROJECT_ROOT / ".cache" / "litellm-venv"
# The release this benchmark was written and measured against (its triton provider is read
# above); a newer one may change the provider's payload.
LITELLM_REQUIREMENT = "litellm[proxy]==1.108.7"
MODEL_NAME = "tiny-chat"
# Limits that do their bookkeeping on every request and never refuse the benchmark.
RPM = 1_000_000_000
TPM = 1_000_000_000_000
MAX_PARALLEL = 100_000


@dataclass(frozen=True)
class Peer:
    url: str
    key: str
    pid: int
    version: str
    keys_in_database: bool

    @property
    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def ensure_litellm(venv: Path = LITELLM_VENV) -> Path:
    """Install LiteLLM's proxy into its own venv (fast when it is there); its python."""
    marker = venv / ".bench-requirements"
    python = venv / "bin" / "python"
    if marker.exists() and marker.read_text() == LITELLM_REQUIREMENT:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    logger.info("installing %s into %s", LITELLM_REQUIREMENT, venv)
    pip = [str(python), "-m", "pip", "install", "--quiet", LITELLM_REQUIREMENT]
    subprocess.run(pip, check=True)
    marker.write_text(LITELLM_REQUIREMENT)
    return python


def installed_version(python: Path) -> str:
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def proxy_config(triton_http: str, ensemble: str, master_key: str) -> dict[str, Any]:
    """The proxy's config: one deployment on Triton's generate endpoint, limits on."""
    return {
        "model_list": [
            {
                "model_name": MODEL_NAME,
                "litellm_params": {
                    "model": f"triton/{ensemble}",
                    "api_base": f"{triton_http.rstrip('/')}/v2/models/{ensemble}/generate",
                    "rpm": RPM,
                    "tpm": TPM,
                },
            }
        ],
        "router_settings": {"enable_pre_call_checks": True},
        "litellm_settings": {
            # temperature is not among the triton provider's OpenAI params: dropped, not 400.
            "drop_params": True,
        },
        "general_settings": {
            "master_key": master_key,
            "global_max_parallel_requests": MAX_PARALLEL,
        },
    }


def proxy_environment(base: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ("VIRTUAL_ENV", "DATABASE_URL")}
    env.update(
        {
            # prompt_factory's hub lookup for an unknown model fails fast instead of timing out.
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_SCHEMA_UPDATE": "true",
        }
    )
    return env


@contextlib.contextmanager
def litellm_process(
    triton_http: str, workdir: Path, ensemble: str = "ensemble", workers: int = 1
) -> Iterator[Peer]:
    """``litellm --config ...`` in front of ``triton_http``; stopped on exit."""
    python = ensure_litellm()
    version = installed_version(python)
    port, key = free_port(), f"sk-litellm-{secrets.token_hex(16)}"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "litellm.yaml"
    # YAML is a superset of JSON: no YAML writer needed in the project's venv.
    config.write_bytes(orjson.dumps(proxy_config(triton_http, ensemble, key)))
    argv = [str(python.parent / "litellm"), "--config", str(config)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--num_workers", str(workers)]
    log = workdir / "litellm.log"
    env = proxy_environment(os.environ)
    with running(argv, env, log, workdir) as process:
        wait_ok(f"http://127.0.0.1:{port}/health/liveliness", process, log, timeout_s=240)
        yield Peer(f"http://127.0.0.1:{port}", key, process.pid, version, keys_in_database=False)
