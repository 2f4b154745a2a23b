"""Hugging Face checkpoint directories on disk: what they declare, and copying them whole.

An llmapi deployment serves a Hugging Face checkpoint from its own output tree (`<name>/model`),
so the directory mounted into the Triton pods is self-contained. Copies use hard links where
source and destination share a file system (instant, no space) and fall back to copying.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# ModelOpt's Hugging Face export writes this next to config.json (and also puts a
# quantization_config into config.json); checkpoints quantized by other tools carry only the
# latter.
MODELOPT_QUANT_CONFIG = "hf_quant_config.json"
_PROGRESS_BYTES = 2 << 30


def checkpoint_quantization(checkpoint: Path) -> str | None:
    """The quantization a checkpoint declares (e.g. "FP8"), or None when it declares none."""
    modelopt = checkpoint / MODELOPT_QUANT_CONFIG
    if modelopt.is_file():
        quantization = _json(modelopt).get("quantization", {})
        algo = quantization.get("quant_algo") if isinstance(quantization, dict) else None
        return str(algo or "modelopt")
    config = _json(checkpoint / "config.json").get("quantization_config")
    if isinstance(config, dict):
        return str(config.get("quant_algo") or config.get("quant_method") or "quantized")
    return None


def _json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def tree_fingerprint(source: Path) -> str:
    """Names, sizes and modification times of every file under `source` (cheap to compute)."""
    digest = hashlib.sha256(str(source).encode())
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(source)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def copy_checkpoint(source: Path, destination: Path, label: str = "") -> Path:
    """Copy a checkpoint directory (hard links when possible), logging progress every 2 GiB.

    Assembled next to `destination` and swapped in when complete, so an interrupted copy never
    looks like a checkpoint.
    """
    files = sorted(p for p in source.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    staging = destination.with_name(destination.name + ".copying")
    shutil.rmtree(staging, ignore_errors=True)
    done, reported, linked = 0, 0, 0
    for path in files:
        target = staging / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        linked += _link_or_copy(path, target)
        done += path.stat().st_size
        if done - reported >= _PROGRESS_BYTES:
            logger.info("%s copied %.1f of %.1f GiB", label, done / 2**30, total / 2**30)
            reported = done
    shutil.rmtree(destination, ignore_errors=True)
    staging.rename(destination)
    logger.info(
        "%s %d files, %.1f GiB (%d hard-linked) -> %s",
        label,
        len(files),
        total / 2**30,
        linked,
        destination,
    )
    return destination


def _link_or_copy(source: Path, target: Path) -> int:
    try:
        os.link(source, target)
        return 1
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source, target)
        return 0
