"""The supervisor restarts a dead tritonserver with back-off and leaves none of its stubs behind.

A stand-in `tritonserver` (a small Python script in a fake installation) answers Triton's
readiness and metadata routes and starts a "stub" child, as Triton starts its Python-backend
stubs; the supervisor and `TritonServer` under test are the real ones.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from launcher.server import ServerOptions, TritonInstallation, TritonServer
from launcher.supervisor import ModelCheck, RestartPolicy, Supervisor
from tests.e2e.conftest import free_port

FAKE_TRITONSERVER = """#!{python}
import http.server, json, os, pathlib, subprocess, sys
args = dict(a.removeprefix("--").split("=", 1) for a in sys.argv[1:] if "=" in a)
if "{fail}" == "exit":
    sys.exit(3)
if "{fail}" == "abort-once" and not pathlib.Path("{pids}.crashed").exists():
    pathlib.Path("{pids}.crashed").touch()
    os.abort()  # as an uncaught C++ exception does, before the server is ready
# A Python-backend stub: a child in the same process group.
stub = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
with open("{pids}", "a") as pids:
    print(stub.pid, flush=True, file=pids)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"name": args["id"]}}).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass

http.server.HTTPServer(("127.0.0.1", int(args["http-port"])), Handler).serve_forever()
"""


def fake_installation(root: Path, fail: str = "") -> TritonInstallation:
    binary = root / "bin" / "tritonserver"
    binary.parent.mkdir(parents=True)
    stub = root / "backends" / "python" / "triton_python_backend_stub"
    stub.parent.mkdir(parents=True)
    stub.touch()
    script = FAKE_TRITONSERVER.format(python=sys.executable, fail=fail, pids=root / "stub-pids")
    binary.write_text(script)
    binary.chmod(0o755)
    return TritonInstallation.at(root)


class Run:
    """A supervisor on its own thread, over fake tritonservers on fixed free ports."""

    def __init__(self, tmp_path: Path, policy: RestartPolicy, fail: str = "") -> None:
        self.installation = fake_installation(tmp_path / "triton", fail)
        self.options = ServerOptions(
            [tmp_path / "repo"], grpc_port=free_port(), http_port=free_port(), metrics_port=0
        )
        self.cache = tmp_path / "cache"
        self.servers: list[TritonServer] = []
        self.ready = threading.Semaphore(0)
        self.stop = threading.Event()
        self.supervisor = Supervisor(
            self.make_server, 30, policy, self.stop, lambda _: self.ready.release(), poll_s=0.05
        )
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.supervisor.run()))

    def make_server(self) -> TritonServer:
        server = TritonServer(self.options, self.cache, {}, self.installation)
        self.servers.append(server)
        return server

    def stub_pids(self) -> list[int]:
        path = self.installation.binary.parent.parent / "stub-pids"
        return [int(line) for line in path.read_text().split()] if path.exists() else []

    def server_pid(self) -> int:
        process = self.servers[-1]._process  # the test kills it as a crash would
        assert process is not None
        return process.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def wait_for(condition: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, condition
        time.sleep(0.05)


def test_backoff_doubles_up_to_its_maximum() -> None:
    policy = RestartPolicy(backoff_s=1, max_backoff_s=5)
    assert [policy.delay(n) for n in range(5)] == [1, 2, 4, 5, 5]


def test_a_killed_server_is_restarted_and_its_stubs_are_reaped(tmp_path: Path) -> None:
    run = Run(tmp_path, RestartPolicy(backoff_s=0.1))
    run.thread.start()
    try:
        assert run.ready.acquire(timeout=30)
        (first_stub,) = run.stub_pids()
        killed_at = time.monotonic()
        os.kill(run.server_pid(), signal.SIGKILL)
        assert run.ready.acquire(timeout=30)  # ready again
        restart_s = time.monotonic() - killed_at
        assert run.supervisor.starts == 2
        assert not alive(first_stub)  # the dead server's stub went with it
        assert alive(run.stub_pids()[-1])
        assert restart_s < 10
    finally:
        run.stop.set()
        run.thread.join(timeout=30)
    assert run.result == [0]
    assert not any(alive(pid) for pid in run.stub_pids())


def test_without_restarts_the_exit_code_is_returned(tmp_path: Path) -> None:
    run = Run(tmp_path, RestartPolicy(max_restarts=0))
    run.thread.start()
    assert run.ready.acquire(timeout=30)
    os.kill(run.server_pid(), signal.SIGKILL)
    run.thread.join(timeout=30)
    assert run.result == [-signal.SIGKILL]
    assert run.supervisor.starts == 1
    assert not any(alive(pid) for pid in run.stub_pids())


def test_a_first_start_that_fails_is_not_retried(tmp_path: Path) -> None:
    run = Run(tmp_path, RestartPolicy(backoff_s=0.01), fail="exit")
    run.thread.start()
    run.thread.join(timeout=30)
    assert run.result == [3]
    assert run.supervisor.starts == 1


def test_a_first_start_that_crashes_is_tried_once_more(tmp_path: Path) -> None:
    # A server killed by a signal before it was ready (boost::interprocess::lock_exception,
    # seen on loaded hosts, aborts Triton) is no configuration error: one more start.
    run = Run(tmp_path, RestartPolicy(backoff_s=0.01), fail="abort-once")
    run.thread.start()
    try:
        assert run.ready.acquire(timeout=30)
        assert run.supervisor.starts == 2
    finally:
        run.stop.set()
        run.thread.join(timeout=30)
    assert run.result == [0]


@pytest.mark.parametrize("during", ["backoff", "serving"])
def test_stop_ends_the_supervisor_at_once(tmp_path: Path, during: str) -> None:
    run = Run(tmp_path, RestartPolicy(backoff_s=60))
    run.thread.start()
    assert run.ready.acquire(timeout=30)
    if during == "backoff":
        os.kill(run.server_pid(), signal.SIGKILL)
        wait_for(lambda: run.servers[-1]._process is None)  # stopped, now waiting 60 s
    run.stop.set()
    run.thread.join(timeout=10)
    assert run.result == [0]


def test_a_server_whose_models_stop_answering_is_restarted(tmp_path: Path) -> None:
    """The process lives on, its models do not answer: after the set number of failed checks
    in a row the server is restarted (its stubs reaped); a passing check resets the count."""
    answers = [True, False, True, False, False]  # then True for ever
    checks: list[int] = []

    def check(server: TritonServer) -> bool:
        checks.append(run.server_pid())
        return answers.pop(0) if answers else True

    run = Run(tmp_path, RestartPolicy(backoff_s=0.1))
    run.supervisor = Supervisor(
        run.make_server,
        30,
        RestartPolicy(backoff_s=0.1),
        run.stop,
        lambda _: run.ready.release(),
        poll_s=0.02,
        model_check=ModelCheck(check, every_s=0.05, failures=2),
    )
    run.thread = threading.Thread(target=lambda: run.result.append(run.supervisor.run()))
    run.thread.start()
    try:
        assert run.ready.acquire(timeout=30)
        (first_stub,) = run.stub_pids()
        assert run.ready.acquire(timeout=30)  # restarted after False, False in a row
        assert run.supervisor.starts == 2
        assert len(checks) >= 5
        wait_for(lambda: not alive(first_stub))
    finally:
        run.stop.set()
        run.thread.join(timeout=30)
    assert run.result == [0]
