"""Start and stop the `tritonserver` binary shipped inside the nvidia-pytriton wheel.

The wheel carries a complete Triton (binary, shared libraries, Python backend and one backend
stub per Python version), but the Python backend looks for `triton_python_backend_stub` next
to `libtriton_python.so`, so a backend directory is assembled in a cache folder with the stub
that matches the running interpreter.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from api import GRPC_EXPERIMENTS

logger = logging.getLogger(__name__)
triton_logger = logging.getLogger("tritonserver")

_LOG_TAIL_LINES = 60


class TritonStartError(RuntimeError):
    """Triton exited or did not become ready; the message ends with its last log lines."""


@dataclass(frozen=True)
class TritonInstallation:
    """Where the pieces of Triton live inside the installed nvidia-pytriton package."""

    binary: Path
    libs: Path
    python_backend: Path
    stub: Path
    # A complete backend directory (NVIDIA's images: python, tensorrtllm, ...), used as it is.
    backends: Path | None = None

    @classmethod
    def find(cls) -> TritonInstallation:
        """Locate Triton in the installed `pytriton` package, for the running Python."""
        import pytriton

        package = Path(pytriton.__file__).resolve().parent
        root = package / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        found = cls(
            binary=root / "bin" / "tritonserver",
            libs=package.parent / "nvidia_pytriton.libs",
            python_backend=root / "backends" / "python",
            stub=root / "python_backend_stubs" / version / "triton_python_backend_stub",
        )
        for path in (found.binary, found.libs, found.python_backend, found.stub):
            if not path.exists():
                raise FileNotFoundError(f"nvidia-pytriton is incomplete: {path} is missing")
        return found

    @classmethod
    def at(cls, server_dir: Path) -> TritonInstallation:
        """A complete Triton installation such as `/opt/tritonserver` in NVIDIA's images.

        Its `backends/` already holds every backend with its stub, the TensorRT-LLM one too.
        """
        backends = server_dir / "backends"
        found = cls(
            binary=server_dir / "bin" / "tritonserver",
            libs=server_dir / "lib",
            python_backend=backends / "python",
            stub=backends / "python" / "triton_python_backend_stub",
            backends=backends,
        )
        for path in (found.binary, found.python_backend, found.stub):
            if not path.exists():
                raise FileNotFoundError(f"{server_dir} is not a Triton installation: no {path}")
        return found

    def assemble_backends(self, cache_dir: Path) -> Path:
        """A backend directory whose `python/` holds the backend plus this Python's stub."""
        if self.backends is not None:
            return self.backends
        python_dir = cache_dir / "backends" / "python"
        python_dir.mkdir(parents=True, exist_ok=True)
        for source in (*sorted(self.python_backend.glob("*.*")), self.stub):
            target = python_dir / source.name
            # Copies, not symlinks: the backend resolves the stub path relative to itself.
            if not target.exists() or target.stat().st_size != source.stat().st_size:
                shutil.copy2(source, target)
        return python_dir.parent


def build_environment(base: Mapping[str, str], installation: TritonInstallation) -> dict[str, str]:
    """The environment of the Triton process (inherited by the Python-backend stubs).

    - The interpreter's own libpython goes first on LD_LIBRARY_PATH: the stub otherwise loads
      the system's libpython, which does not match this interpreter's stdlib.
    - This venv's `bin` goes first on PATH: the stub takes its packages from the first Python
      found there.
    - Models load tokenizers and weights from local directories only.
    - Triton's gRPC runs with its own defaults, not the API client's (api/__init__.py).
    """
    env = without_api_grpc_settings(base)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env["LD_LIBRARY_PATH"] = _join_paths(libdir, str(installation.libs), env.get("LD_LIBRARY_PATH"))
    env["PATH"] = _join_paths(str(Path(sys.executable).parent), env.get("PATH"))
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    return env


def _join_paths(*parts: str | None) -> str:
    return os.pathsep.join(p for p in parts if p)


@dataclass(frozen=True)
class ServerOptions:
    """Command-line options of one Triton run."""

    repositories: Sequence[Path]
    grpc_port: int = 8001
    http_port: int = 8000
    metrics_port: int = 8002
    log_verbose: int = 0
    exit_timeout_s: int = 5
    # "explicit" loads every model at start-up too, and lets operators (and the fault tests)
    # unload and load single models through the repository API.
    model_control_mode: str = "none"
    # The Python-backend stub runs isolated (PYTHONPATH is ignored) but keeps "" (the working
    # directory) on sys.path: starting Triton in the project root makes `import inference`
    # work in model.py files without installing the project.
    working_dir: Path | None = None
    # Triton's `--id`, which its `/v2` metadata reports as `name`: how the launcher tells its
    # own server from another one answering on the same port. None: Triton's default.
    server_id: str | None = None

    def ports(self) -> dict[str, int]:
        """The ports Triton will listen on, by endpoint (0: any free port)."""
        return {"gRPC": self.grpc_port, "HTTP": self.http_port, "metrics": self.metrics_port}

    def arguments(self, backend_dir: Path, shm_prefix: str | None = None) -> list[str]:
        """tritonserver's argv after the binary; ``shm_prefix`` names the Python backend's
        shared-memory regions (see ``TritonServer.start``)."""
        return [
            *(f"--model-repository={path}" for path in self.repositories),
            *([f"--id={self.server_id}"] if self.server_id is not None else []),
            f"--backend-directory={backend_dir}",
            *(
                [f"--backend-config=python,shm-region-prefix-name={shm_prefix}"]
                if shm_prefix
                else []
            ),
            f"--grpc-port={self.grpc_port}",
            f"--http-port={self.http_port}",
            f"--metrics-port={self.metrics_port}",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            f"--log-verbose={self.log_verbose}",
            *self._model_control(),
        ]

    def _model_control(self) -> list[str]:
        if self.model_control_mode == "none":
            return []
        return [f"--model-control-mode={self.model_control_mode}", "--load-model=*"]


class TritonServer:
    """One `tritonserver` subprocess; a context manager that stops it on exit.

    Triton's output is forwarded line by line to the `tritonserver` logger and its tail is kept
    for error messages.
    """

    def __init__(
        self,
        options: ServerOptions,
        cache_dir: Path,
        base_env: Mapping[str, str] | None = None,
        installation: TritonInstallation | None = None,
    ) -> None:
        if options.server_id is None:
            options = dataclasses.replace(options, server_id=f"launcher-{secrets.token_hex(8)}")
        self.options = options
        self._cache_dir = cache_dir
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._installation = installation
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)
        self._shm_prefix: str | None = None

    @property
    def http_url(self) -> str:
        """Base URL of Triton's HTTP endpoint."""
        return f"http://127.0.0.1:{self.options.http_port}"

    @property
    def grpc_url(self) -> str:
        """host:port of Triton's gRPC endpoint."""
        return f"127.0.0.1:{self.options.grpc_port}"

    def log_tail(self) -> str:
        """The last lines Triton printed."""
        return "\n".join(self._tail)

    def start(self) -> None:
        """Start the process (returns at once; see `wait_ready`)."""
        if self._process is not None:
            raise RuntimeError("tritonserver is already running")
        check_ports_free(self.options.ports())
        installation = self._installation or TritonInstallation.find()
        backend_dir = installation.assemble_backends(self._cache_dir)
        # Every Python backend names its shared-memory regions from one prefix; two Tritons on
        # a machine (replicas, tests) or a restart over a killed server's leftovers would share
        # the default names and break each other's stubs (TensorRT-LLM's multi-server launch
        # script sets a prefix per server for the same reason). A fresh one per start.
        self._shm_prefix = f"triton_{secrets.token_hex(6)}_"
        argv = [str(installation.binary), *self.options.arguments(backend_dir, self._shm_prefix)]
        logger.info("starting %s", " ".join(argv))
        self._process = subprocess.Popen(
            argv,
            env=build_environment(self._base_env, installation),
            cwd=self.options.working_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            # Own process group: a terminal's Ctrl-C reaches only the launcher, which shuts
            # Triton down in order, and a final SIGKILL also reaches the backend stubs.
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._forward_output, name="triton-log", daemon=True)
        self._reader.start()

    def _forward_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            line = line.rstrip("\n")
            self._tail.append(line)
            triton_logger.info("%s", line)

    def wait_ready(self, timeout_s: float, cancel: threading.Event | None = None) -> None:
        """Poll `/v2/health/ready` until it answers 200; fail fast if the process exits.

        Setting `cancel` (e.g. from a signal handler) abandons the wait with TritonStartError.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                raise TritonStartError("start-up cancelled")
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise TritonStartError(self._failure(f"tritonserver exited with code {code}"))
            if self._ready():
                logger.info("tritonserver is ready (%s, gRPC %s)", self.http_url, self.grpc_url)
                return
            time.sleep(0.25)
        raise TritonStartError(self._failure(f"tritonserver not ready after {timeout_s:.0f} s"))

    def _ready(self) -> bool:
        """Ready, and the server answering is the one this launcher started."""
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=2) as reply:
                if int(reply.status) != 200:
                    return False
            with urllib.request.urlopen(f"{self.http_url}/v2", timeout=2) as reply:
                name = json.loads(reply.read()).get("name")
        except (urllib.error.URLError, OSError, ValueError):
            return False
        if name != self.options.server_id:
            raise TritonStartError(
                self._failure(
                    f"another server ({name!r}) answers on HTTP port {self.options.http_port}, "
                    f"not the tritonserver this launcher started ({self.options.server_id!r})"
                )
            )
        return True

    def _failure(self, reason: str) -> str:
        if self._reader is not None:
            self._reader.join(timeout=1)  # let the last lines of a dead process arrive
        return f"{reason}; last log lines:\n{self.log_tail()}"

    def poll(self) -> int | None:
        """The exit code once the process has exited, else None."""
        if self._process is None:
            raise RuntimeError("tritonserver is not running")
        return self._process.poll()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if Triton has not exited within its exit timeout plus grace."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.options.exit_timeout_s + 10)
            except subprocess.TimeoutExpired:
                logger.warning("tritonserver ignored SIGTERM; killing its process group")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # The Python-backend stubs outlive a crashed tritonserver and keep its stdout open,
        # which would block the log reader (and closing the pipe under it) for ever.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if process.stdout is not None and not (self._reader and self._reader.is_alive()):
            process.stdout.close()
        remove_shared_memory(self._shm_prefix)
        logger.info("tritonserver stopped with code %s", process.returncode)

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def remove_shared_memory(prefix: str | None, root: Path = Path("/dev/shm")) -> None:
    """Unlink the shared-memory regions a stopped server's Python backend left behind (a
    killed server never unlinks them)."""
    if not prefix:
        return
    for region in root.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            region.unlink()


def check_ports_free(ports: Mapping[str, int], host: str = "0.0.0.0") -> None:
    """Raise TritonStartError naming each port another process listens on (or that two
    endpoints share): Triton would fail to bind it, or a readiness check would reach the other
    server. Triton listens on every interface, so the check binds there too."""
    problems: list[str] = []
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port == 0:  # any free port: Triton picks one
            continue
        if port in seen:
            problems.append(f"the {name} and {seen[port]} ports are both {port}")
            continue
        seen[port] = name
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As servers do: a port whose last connections linger in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                problems.append(f"{name} port {port} is in use ({exc.strerror})")
    if problems:
        raise TritonStartError(
            f"cannot start tritonserver: {'; '.join(problems)}. Is another Triton running? "
            "Stop it, or choose free ports (TRITON_GRPC_PORT, TRITON_HTTP_PORT, "
            "TRITON_METRICS_PORT)."
        )


def without_api_grpc_settings(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` without the grpc-core experiments the API sets for its own process when nobody
    set any (api/__init__.py): a client's tuning, not one for a server or a load generator."""
    env = dict(base)
    if env.get("GRPC_EXPERIMENTS") == GRPC_EXPERIMENTS:
        del env["GRPC_EXPERIMENTS"]
    return env
