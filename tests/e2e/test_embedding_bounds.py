"""Embedding inputs longer than the model reads, or with ids outside its vocabulary, are
refused (400 on ``input``) by the API and by the Triton model itself; truncation is opt-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import numpy as np
import openai
import pytest
import tritonclient.grpc as grpcclient

from api.backend.triton_grpc import TritonGrpcBackend
from api.errors import InvalidRequestError
from api.settings import TritonSettings
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

MODEL = "all-minilm-l6-v2"
LONG_TEXT = "word " * 300  # 302 tokens with [CLS] and [SEP]; the model reads 256
WINDOW = "word " * 254  # exactly 256 tokens


@pytest.fixture
def sdk(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=stack.api_key, base_url=f"{stack.api_url}/v1") as client:
        yield client


@pytest.fixture
async def triton(stack: Stack) -> AsyncIterator[TritonGrpcBackend]:
    backend = TritonGrpcBackend(TritonSettings(url=stack.triton_grpc))
    yield backend
    await backend.close()


@pytest.mark.parametrize(
    "value",
    [LONG_TEXT, ["fine", LONG_TEXT], [101, *[2773] * 300, 102], [[101, 40000, 102]], [[1, -1]]],
)
def test_the_api_refuses_with_400_on_input(sdk: openai.OpenAI, value: object) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.embeddings.create(model=MODEL, input=value)  # type: ignore[arg-type]
    assert refused.value.param == "input"


def test_the_length_error_names_the_limit_and_the_option(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.embeddings.create(model=MODEL, input=["fine", LONG_TEXT], encoding_format="float")
    assert "302 tokens" in refused.value.message and "256" in refused.value.message
    assert '"truncate": true' in refused.value.message


def test_truncate_is_an_explicit_option(sdk: openai.OpenAI) -> None:
    cut = sdk.embeddings.create(
        model=MODEL, input=[LONG_TEXT], encoding_format="float", extra_body={"truncate": True}
    )
    window = sdk.embeddings.create(model=MODEL, input=[WINDOW], encoding_format="float")
    assert cut.usage.prompt_tokens == window.usage.prompt_tokens == 256
    assert np.dot(cut.data[0].embedding, window.data[0].embedding) > 0.9999
    ids = sdk.embeddings.create(
        model=MODEL, input=[[101, *[2773] * 300, 102]], extra_body={"truncate": True}
    )
    assert ids.usage.prompt_tokens == 256


@pytest.mark.parametrize(
    "inputs",
    [["word " * 300], [[101, *[2773] * 300, 102]], [[101, 40000, 102]], [[101, -5, 102]]],
    ids=["long-text", "long-ids", "id-past-vocab", "negative-id"],
)
async def test_the_triton_model_refuses_what_the_api_would(
    triton: TritonGrpcBackend, inputs: list[str] | list[list[int]]
) -> None:
    with pytest.raises(InvalidRequestError):
        await triton.embed("embedding", inputs, "bounds")
    # The model is still serving.
    result = await triton.embed("embedding", ["still here"], "bounds-after")
    assert result.vectors.shape == (1, 384)


async def test_the_triton_model_cuts_only_when_asked(triton: TritonGrpcBackend) -> None:
    texts = await triton.embed("embedding", [LONG_TEXT], "cut", truncate=True)
    ids = await triton.embed("embedding", [[101, *[2773] * 300, 102]], "cut", truncate=True)
    assert texts.token_counts == ids.token_counts == [256]


def test_a_request_without_inputs_gets_an_error_response(stack: Stack) -> None:
    client = grpcclient.InferenceServerClient(stack.triton_grpc)
    flag = grpcclient.InferInput("TRUNCATE", [1, 1], "BOOL")
    flag.set_data_from_numpy(np.array([[True]]))
    with pytest.raises(grpcclient.InferenceServerException, match="invalid_request:"):
        client.infer("embedding", [flag])
    text = grpcclient.InferInput("INPUT_TEXT", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[b"still serving"]], dtype=object))
    assert client.infer("embedding", [text]).as_numpy("EMBEDDING").shape == (1, 384)
