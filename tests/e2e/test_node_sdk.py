"""The official openai Node SDK against the real Triton-backed server.

tests/node/sdk_check.mjs drives the API with the SDK (openai 6.49.0 from npm, pinned in
tests/node/package-lock.json, installed by scripts/setup.sh) and prints what it saw as JSON; the
assertions live here. Without node or the installed SDK these tests skip; in CI (CI=true) they
fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.conftest import ROOT, Stack

pytestmark = pytest.mark.e2e

NODE_DIR = ROOT / "tests" / "node"
SCRIPT = NODE_DIR / "sdk_check.mjs"
CHAT_MODEL = "tiny-chat"
EMBEDDING_MODEL = "all-minilm-l6-v2"


def pinned_sdk_version() -> str:
    package = json.loads((NODE_DIR / "package.json").read_text())
    return str(package["dependencies"]["openai"])


def node_binary() -> Path:
    """node, with the SDK that scripts/setup.sh installs in tests/node/node_modules."""
    node = shutil.which("node")
    installed = NODE_DIR / "node_modules" / "openai" / "package.json"
    if node is not None and installed.is_file():
        return Path(node)
    missing = (
        "node is not on PATH"
        if node is None
        else f"the openai Node SDK is not installed ({installed}): run scripts/setup.sh"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(missing)
    pytest.skip(f"{missing} (in CI this fails)")


@pytest.fixture(scope="session")
def node() -> Path:
    # Session scope, so that it is set up before the session stack: a skip costs no startup.
    return node_binary()


@pytest.fixture(scope="module")
def seen(node: Path, stack: Stack) -> dict[str, Any]:
    """What the Node SDK saw, from one run of the script against the session's stack."""
    env = {
        **os.environ,
        "OPENAI_BASE_URL": f"{stack.api_url}/v1",
        "OPENAI_API_KEY": stack.api_key,
    }
    done = subprocess.run(
        [str(node), str(SCRIPT)],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"node exited {done.returncode}:\n{done.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def no_error(section: Any) -> Any:
    """The section's result; a section the SDK raised on fails with the whole error in view."""
    assert isinstance(section, dict), section
    if "error" in section:
        pytest.fail(f"the Node SDK raised: {json.dumps(section['error'])}")
    return section


def test_the_pinned_sdk_ran(seen: dict[str, Any]) -> None:
    assert seen["sdk_version"] == pinned_sdk_version()
    assert seen["node_version"].startswith("v")


def test_chat_answers_with_usage(seen: dict[str, Any]) -> None:
    paris = no_error(seen["chat"][0])
    assert paris["question"] == "What is the capital of France?"
    chat = paris["chat"]
    assert chat["object"] == "chat.completion"
    assert chat["role"] == "assistant"
    assert "Paris" in chat["content"]
    assert chat["finish_reason"] == "stop"
    usage = chat["usage"]
    assert usage["prompt_tokens"] > 5
    assert 0 < usage["completion_tokens"] < 64
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_streamed_deltas_equal_the_non_streamed_reply(seen: dict[str, Any], index: int) -> None:
    pair = no_error(seen["chat"][index])
    stream, chat = pair["stream"], pair["chat"]
    assert stream["text"] == chat["content"], pair["question"]
    assert stream["finish_reasons"] == ["stop"]
    assert len(stream["ids"]) == 1  # every chunk of one stream carries the same id
    assert stream["chunks"] > 2
    # include_usage: the last chunk counts the same tokens as the non-streamed reply.
    assert stream["usage"] == chat["usage"]


def test_non_ascii_survives_the_stream(seen: dict[str, Any]) -> None:
    pair = no_error(seen["chat"][2])
    assert "🚀" in pair["question"]
    assert "\ufffd" not in pair["stream"]["text"]


def test_legacy_completions(seen: dict[str, Any]) -> None:
    completions = no_error(seen["completions"])
    assert completions["object"] == "text_completion"
    assert completions["text"]
    assert completions["finish_reason"] in {"stop", "length"}
    assert 0 < completions["usage"]["completion_tokens"] <= 16
    assert completions["stream"]["text"] == completions["text"]
    assert completions["stream"]["finish_reasons"] == [completions["finish_reason"]]


def test_embeddings_base64_default_decodes_to_unit_vectors(seen: dict[str, Any]) -> None:
    embeddings = no_error(seen["embeddings"])
    assert embeddings["object"] == "list"
    assert embeddings["model"] == EMBEDDING_MODEL
    assert embeddings["indexes"] == [0, 1, 2]
    vectors = np.array(embeddings["vectors"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert float(vectors[0] @ vectors[1]) == pytest.approx(1.0, abs=1e-5)
    assert float(vectors[0] @ vectors[2]) < 0.5
    # The SDK's default (base64, decoded as float32) and encoding_format=float agree.
    assert np.allclose(embeddings["float_vector"], vectors[0], atol=1e-6)
    assert embeddings["usage"]["prompt_tokens"] > 0


def test_models_listed(seen: dict[str, Any]) -> None:
    listed = no_error(seen["models"])["models"]
    assert {CHAT_MODEL, EMBEDDING_MODEL} <= {model["id"] for model in listed}
    assert {model["object"] for model in listed} == {"model"}


def test_bad_key_is_authentication_error_401(seen: dict[str, Any]) -> None:
    refused = no_error(seen["errors"])["bad_key"]
    assert refused["raised"], refused
    assert refused["class"] == "AuthenticationError"
    assert refused["status"] == 401


def test_bad_parameter_is_bad_request_400_naming_it(seen: dict[str, Any]) -> None:
    refused = no_error(seen["errors"])["bad_parameter"]
    assert refused["raised"], refused
    assert refused["class"] == "BadRequestError"
    assert refused["status"] == 400
    assert refused["type"] == "invalid_request_error"
    assert refused["param"] == "max_tokens"


def test_unknown_model_is_not_found_404(seen: dict[str, Any]) -> None:
    refused = no_error(seen["errors"])["unknown_model"]
    assert refused["raised"], refused
    assert refused["class"] == "NotFoundError"
    assert refused["status"] == 404
