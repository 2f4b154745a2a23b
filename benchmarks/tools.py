"""The benchmark's own tools, installed by the benchmark itself.

- A separate virtual environment (``.cache/bench-venv``): genai-perf 0.0.16 drives
  ``perf_analyzer``, which only the ``tritonclient[all]==2.51.0`` wheel ships. The API's venv
  keeps its newer tritonclient. matplotlib (plots) and py-spy (profiles) live there too.
- perf_analyzer needs ``libb64.so.0d`` and ``libcudart.so.12``; nvidia-pytriton bundles both
  under hashed names, so they are linked under their sonames into ``palibs/``.
- ``wrk`` (Debian package) is the load generator of the ceiling benchmark.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from launcher.server import TritonInstallation, without_api_grpc_settings
from launcher.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

DEFAULT_VENV = PROJECT_ROOT / ".cache" / "bench-venv"
REQUIREMENTS = (
    "tritonclient[all]==2.51.0",
    "genai-perf==0.0.16",
    "matplotlib>=3.8",
    "py-spy>=0.3.14",
)
# soname perf_analyzer asks for -> file-name prefix inside nvidia_pytriton.libs
PERF_ANALYZER_LIBS = {"libb64.so.0d": "libb64-", "libcudart.so.12": "libcudart-"}


@dataclass(frozen=True)
class BenchTools:
    venv: Path
    wrk: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def py_spy(self) -> Path:
        return self.bin / "py-spy"

    @property
    def lib_dir(self) -> Path:
        return self.venv / "palibs"

    def env(self) -> dict[str, str]:
        """Environment for genai-perf / perf_analyzer: the venv first, offline tokenizers, and
        grpc's defaults (the direct path's client is not tuned like the API's)."""
        env = without_api_grpc_settings(os.environ)
        env.pop("VIRTUAL_ENV", None)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        libs = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = f"{self.lib_dir}{os.pathsep}{libs}" if libs else str(self.lib_dir)
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
        return env


def ensure_tools(venv: Path = DEFAULT_VENV) -> BenchTools:
    """Install whatever is missing; fast when everything is already there."""
    ensure_venv(venv)
    link_perf_analyzer_libs(venv / "palibs")
    tools = BenchTools(venv=venv, wrk=ensure_wrk())
    check_perf_analyzer(tools)
    return tools


def ensure_venv(venv: Path) -> None:
    marker = venv / ".bench-requirements"
    wanted = "\n".join(REQUIREMENTS)
    if marker.exists() and marker.read_text() == wanted:
        return
    if not (venv / "bin" / "python").exists():
        logger.info("creating the benchmark venv %s", venv)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    logger.info("installing %s (a few minutes the first time)", ", ".join(REQUIREMENTS))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *REQUIREMENTS], check=True)
    marker.write_text(wanted)


def link_perf_analyzer_libs(lib_dir: Path) -> None:
    source = TritonInstallation.find().libs
    lib_dir.mkdir(parents=True, exist_ok=True)
    for soname, prefix in PERF_ANALYZER_LIBS.items():
        matches = sorted(source.glob(f"{prefix}*"))
        if not matches:
            raise FileNotFoundError(f"no {prefix}* in {source}: perf_analyzer needs {soname}")
        link = lib_dir / soname
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(matches[0].resolve())


def ensure_wrk() -> Path:
    found = shutil.which("wrk")
    if found:
        return Path(found)
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise RuntimeError("wrk is missing: install it (Debian/Ubuntu: apt-get install wrk)")
    logger.info("installing wrk with apt-get")
    if subprocess.run([apt, "install", "-y", "wrk"], capture_output=True).returncode != 0:
        subprocess.run([apt, "update"], check=True, capture_output=True)
        subprocess.run([apt, "install", "-y", "wrk"], check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get installed wrk but it is not on PATH")
    return Path(found)


def check_perf_analyzer(tools: BenchTools) -> None:
    """perf_analyzer starts (its shared libraries resolve)."""
    done = subprocess.run(
        ["perf_analyzer", "--version"], env=tools.env(), capture_output=True, text=True
    )
    if "error while loading shared libraries" in done.stderr:
        raise RuntimeError(f"perf_analyzer cannot start: {done.stderr.strip()}")
