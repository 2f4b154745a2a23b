"""``--help`` prints usage and exits 0 without starting anything; unknown arguments exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from api.__main__ import main as api_main
from launcher.__main__ import main as launcher_main
from launcher.stack import main as stack_main

MAINS = {"python -m launcher": launcher_main, "python -m launcher.stack": stack_main}


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("prog", list(MAINS))
def test_help_prints_usage_and_exits_0(
    prog: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        MAINS[prog]([flag])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {prog}")
    assert "TRITON_GRPC_PORT" in out and "default: 8001" in out


@pytest.mark.parametrize("prog", list(MAINS))
@pytest.mark.parametrize("argv", [["--bogus"], ["serve"], ["-x", "1"]])
def test_unknown_arguments_exit_2(
    prog: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        MAINS[prog](argv)
    assert exited.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_api_help_lists_serve_and_the_admin_commands(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        api_main([flag])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m api") and "keys" in out
    with pytest.raises(SystemExit) as refused:
        api_main(["--bogus"])
    assert refused.value.code == 2


@pytest.mark.parametrize("module", ["launcher", "launcher.stack", "api"])
def test_the_modules_answer_help_at_once(module: str) -> None:
    # As a user runs them: the stack must not start (it would bind ports and run for ever).
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m {module}")
    assert "Triton ready" not in done.stderr and "starting" not in done.stderr
