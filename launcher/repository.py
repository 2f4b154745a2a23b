"""Render the model repository templates into a copy Triton can load.

`config.pbtxt` files carry `${name}` placeholders in the style of TensorRT-LLM's
`fill_template.py`. Rendering copies each repository root and fills the placeholders; a
placeholder without a value is an error, so a typo never reaches Triton as literal text.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
CONFIG_NAME = "config.pbtxt"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


class TemplateError(ValueError):
    """A template names a placeholder that has no value."""


def fill_template(text: str, values: Mapping[str, str], source: str = "<template>") -> str:
    """Replace every `${name}` in `text`; raise `TemplateError` naming any unknown one."""
    missing = sorted({m.group(1) for m in PLACEHOLDER.finditer(text)} - values.keys())
    if missing:
        names = ", ".join("${" + name + "}" for name in missing)
        raise TemplateError(f"{source}: no value for placeholder(s) {names}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def render_root(source: Path, destination: Path, values: Mapping[str, str]) -> Path:
    """Copy one repository root to `destination` with every config.pbtxt filled in.

    The copy is assembled next to `destination` and swapped in only once complete, so a failed
    render leaves the previous rendering untouched.
    """
    if not source.is_dir():
        raise FileNotFoundError(f"repository root {source} does not exist")
    return _render(destination, values, {source: Path()})


def render_models(models: Iterable[Path], destination: Path, values: Mapping[str, str]) -> Path:
    """Assemble one root at `destination` from model directories taken from any roots.

    Used for a self-contained repository of one deployment (e.g. `common/preprocessing` next to
    `llm_trtllm/tensorrt_llm`); filled in and swapped in like `render_root`.
    """
    sources: dict[Path, Path] = {}
    for model in models:
        if not (model / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"{model} is not a model directory (no {CONFIG_NAME})")
        if Path(model.name) in sources.values():
            raise ValueError(f"two models named {model.name!r}")
        sources[model] = Path(model.name)
    return _render(destination, values, sources)


def _render(destination: Path, values: Mapping[str, str], sources: Mapping[Path, Path]) -> Path:
    """Copy each source to its place under a staging copy, fill it, then swap it in."""
    staging = destination.with_name(destination.name + ".rendering")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for source, relative in sources.items():
            shutil.copytree(source, staging / relative, ignore=_IGNORED, dirs_exist_ok=True)
        for source, relative in sources.items():
            for config in sorted((staging / relative).rglob(CONFIG_NAME)):
                label = str(source / config.relative_to(staging / relative))
                config.write_text(
                    fill_template(config.read_text(encoding="utf-8"), values, label),
                    encoding="utf-8",
                )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(destination, ignore_errors=True)
    staging.rename(destination)
    return destination


def render_repository(
    source_dir: Path, rendered_dir: Path, roots: Iterable[str], values: Mapping[str, str]
) -> list[Path]:
    """Render each named root of `source_dir` into `rendered_dir`; returns the rendered roots."""
    names = list(roots)
    rendered_dir.mkdir(parents=True, exist_ok=True)
    rendered = [render_root(source_dir / root, rendered_dir / root, values) for root in names]
    logger.info("rendered model repository roots %s into %s", names, rendered_dir)
    return rendered
