"""Locating Triton in nvidia-pytriton, its environment, and failing fast when it cannot start."""

from __future__ import annotations

import os
import socket
import sys
import sysconfig
import threading
from pathlib import Path

import pytest

from api import GRPC_EXPERIMENTS
from launcher.server import (
    ServerOptions,
    TritonInstallation,
    TritonServer,
    TritonStartError,
    build_environment,
    check_ports_free,
    remove_shared_memory,
)


@pytest.fixture(scope="module")
def installation() -> TritonInstallation:
    return TritonInstallation.find()


def test_stub_matches_the_running_python(installation: TritonInstallation) -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert installation.stub.parent.name == version
    assert os.access(installation.binary, os.X_OK)


def test_backend_dir_puts_the_stub_next_to_the_backend(
    installation: TritonInstallation, tmp_path: Path
) -> None:
    python_dir = installation.assemble_backends(tmp_path) / "python"
    names = {p.name for p in python_dir.iterdir()}
    assert {"libtriton_python.so", "triton_python_backend_stub"} <= names
    assert os.access(python_dir / "triton_python_backend_stub", os.X_OK)


def test_environment_order(installation: TritonInstallation) -> None:
    env = build_environment({"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/opt/lib"}, installation)
    libs = env["LD_LIBRARY_PATH"].split(os.pathsep)
    assert libs == [sysconfig.get_config_var("LIBDIR"), str(installation.libs), "/opt/lib"]
    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin"]
    assert (env["HF_HUB_OFFLINE"], env["TRANSFORMERS_OFFLINE"]) == ("1", "1")


def test_triton_gets_grpc_defaults_not_the_api_clients(installation: TritonInstallation) -> None:
    # Importing api sets the API's grpc client tuning for its process; Triton must not get it.
    api_tuned = build_environment({"GRPC_EXPERIMENTS": GRPC_EXPERIMENTS}, installation)
    assert "GRPC_EXPERIMENTS" not in api_tuned
    chosen = build_environment({"GRPC_EXPERIMENTS": "-some_experiment"}, installation)
    assert chosen["GRPC_EXPERIMENTS"] == "-some_experiment"


def test_arguments() -> None:
    options = ServerOptions(
        [Path("/a"), Path("/b")], grpc_port=1, http_port=2, metrics_port=3, server_id="ours"
    )
    assert options.arguments(Path("/backends")) == [
        "--model-repository=/a",
        "--model-repository=/b",
        "--id=ours",
        "--backend-directory=/backends",
        "--grpc-port=1",
        "--http-port=2",
        "--metrics-port=3",
        "--exit-timeout-secs=5",
        "--log-verbose=0",
    ]


def test_explicit_model_control_loads_every_model() -> None:
    options = ServerOptions([Path("/a")], model_control_mode="explicit")
    assert options.arguments(Path("/b"))[-2:] == ["--model-control-mode=explicit", "--load-model=*"]


def test_a_dead_server_fails_fast_with_its_log(tmp_path: Path) -> None:
    options = ServerOptions([tmp_path / "missing"], grpc_port=0, http_port=0, metrics_port=0)
    with (
        TritonServer(options, tmp_path / "cache") as server,
        pytest.raises(TritonStartError) as info,
    ):
        server.wait_ready(timeout_s=60)
    assert "exited with code" in str(info.value)
    assert "missing" in str(info.value)


def test_start_up_can_be_cancelled(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    options = ServerOptions([tmp_path / "missing"], grpc_port=0, http_port=0, metrics_port=0)
    with TritonServer(options, tmp_path / "cache") as server, pytest.raises(TritonStartError):
        server.wait_ready(timeout_s=60, cancel=cancel)


def _fake_installation(root: Path) -> Path:
    """The layout of /opt/tritonserver in NVIDIA's images (empty files stand in)."""
    for relative in ("bin/tritonserver", "backends/python/triton_python_backend_stub"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).touch()
    (root / "backends" / "tensorrtllm").mkdir()
    return root


def test_a_complete_installation_keeps_its_own_backends(tmp_path: Path) -> None:
    found = TritonInstallation.at(_fake_installation(tmp_path / "tritonserver"))
    assert found.binary == tmp_path / "tritonserver" / "bin" / "tritonserver"
    # Used as it is: the tensorrtllm backend next to python, no assembled copy.
    assert found.assemble_backends(tmp_path / "cache") == tmp_path / "tritonserver" / "backends"
    assert not (tmp_path / "cache").exists()


def test_a_directory_without_triton_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a Triton installation"):
        TritonInstallation.at(tmp_path)


def _listening() -> socket.socket:
    """A socket listening on a free port, as another server would."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.mark.parametrize("endpoint", ["grpc_port", "http_port", "metrics_port"])
def test_a_port_in_use_fails_before_tritonserver_starts(tmp_path: Path, endpoint: str) -> None:
    grpc, http, metrics = _free_ports(3)
    with _listening() as holder:
        port = holder.getsockname()[1]
        ports = {"grpc_port": grpc, "http_port": http, "metrics_port": metrics, endpoint: port}
        server = TritonServer(ServerOptions([tmp_path], **ports), tmp_path / "cache")
        with pytest.raises(TritonStartError, match=rf"port {port} is in use") as info:
            server.start()
    assert "another Triton" in str(info.value)
    with pytest.raises(RuntimeError, match="not running"):
        server.poll()  # nothing was started


def test_two_endpoints_on_one_port_are_refused() -> None:
    (port,) = _free_ports(1)
    with pytest.raises(TritonStartError, match=rf"ports are both {port}"):
        check_ports_free({"gRPC": port, "HTTP": port})


def test_free_ports_and_port_zero_pass() -> None:
    check_ports_free(
        {"gRPC": 0, "HTTP": 0, **dict(zip(("metrics", "x"), _free_ports(2), strict=True))}
    )


def test_the_server_id_is_passed_to_triton(tmp_path: Path) -> None:
    server = TritonServer(ServerOptions([tmp_path]), tmp_path / "cache")
    assert server.options.server_id is not None
    assert f"--id={server.options.server_id}" in server.options.arguments(Path("/b"))
    assert TritonServer(ServerOptions([tmp_path]), tmp_path).options.server_id != (
        server.options.server_id
    )


def test_a_second_launcher_never_reports_another_triton_as_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    grpc, http, metrics = _free_ports(3)
    ports = {"grpc_port": grpc, "http_port": http, "metrics_port": metrics}
    first = TritonServer(ServerOptions([tmp_path / "empty"], **ports), tmp_path / "cache")
    with first:
        first.wait_ready(timeout_s=60)
        second = TritonServer(ServerOptions([tmp_path / "empty"], **ports), tmp_path / "cache")
        with pytest.raises(TritonStartError, match=rf"gRPC port {grpc} is in use"):
            second.start()
        # Even when the port check is raced (another server binds after it), readiness is
        # confirmed against this launcher's own server, never the other one.
        monkeypatch.setattr("launcher.server.check_ports_free", lambda ports: None)
        with second, pytest.raises(TritonStartError, match=r"another server|exited with code"):
            second.wait_ready(timeout_s=60)
        assert first.poll() is None  # the first server is untouched


def test_each_python_backend_gets_its_own_shared_memory_prefix() -> None:
    options = ServerOptions([Path("/a")])
    argv = options.arguments(Path("/b"), shm_prefix="triton_abc_")
    assert "--backend-config=python,shm-region-prefix-name=triton_abc_" in argv
    assert not any(arg.startswith("--backend-config") for arg in options.arguments(Path("/b")))


def test_a_stopped_servers_regions_are_removed(tmp_path: Path) -> None:
    ours = [tmp_path / "triton_abc_1", tmp_path / "triton_abc_2"]
    other = tmp_path / "triton_def_1"
    for path in [*ours, other]:
        path.write_bytes(b"x")
    remove_shared_memory("triton_abc_", root=tmp_path)
    assert not any(path.exists() for path in ours)
    assert other.exists()
    remove_shared_memory(None, root=tmp_path)
    assert other.exists()
